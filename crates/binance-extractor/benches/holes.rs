//! The gap finders: `cargo bench -p binance-extractor --bench holes`.
//!
//! - `stream`: [`HoleFinder`], which the pipeline feeds every page it fetches — a year of 1m
//!   open times (527,040 candles, 100 holes) in pages of 499.
//! - `store`: `Store::holes` on SQLite, the query `fill-gaps` and `gaps` run over what is
//!   stored — the same year, stored (a window function over the primary key).

use std::hint::black_box;

use binance_extractor::{
    pipeline::holes::HoleFinder,
    series::{SeriesKey, Symbol, TimeRange},
    store::{Store, scratch::ScratchDatabase},
};
use binance_spec::{Decimal, Interval, Kline, Market, time::parse_timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Every 1m open time of 2024 but 100 holes of 1 to 100 minutes, spread over the year.
fn open_times() -> Vec<i64> {
    let start = parse_timestamp("2024-01-01").expect("a date");
    let minutes = Interval::M1.count_opens(start, parse_timestamp("2025-01-01").expect("a date")) as i64;
    let step = minutes / 100;
    (0..minutes)
        .filter(|m| {
            let into = m % step;
            !(step / 2..step / 2 + 1 + m / step).contains(&into)
        })
        .map(|m| start + m * 60_000)
        .collect()
}

fn stream(c: &mut Criterion, opens: &[i64]) {
    let mut group = c.benchmark_group("holes");
    group.throughput(Throughput::Elements(opens.len() as u64));
    group.bench_function("stream: a year of 1m in 499-row pages", |b| {
        b.iter(|| {
            let mut finder = HoleFinder::new(Interval::M1, None);
            for page in black_box(opens).chunks(499) {
                finder.feed(page.iter().copied());
            }
            assert_eq!(finder.holes().len(), 100);
            finder.into_holes()
        })
    });
    group.finish();
}

fn store(c: &mut Criterion, opens: &[i64]) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = format!("sqlite://{}", dir.path().join("server.db").display())
        .parse()
        .expect("a SQLite URL");
    let key = SeriesKey {
        market: Market::UsdM,
        symbol: "BTCUSDT".parse::<Symbol>().expect("a symbol"),
        interval: Interval::M1,
    };
    let (db, store) = runtime.block_on(async {
        let db = ScratchDatabase::create(&server).await.expect("a database");
        let store = Store::connect(db.url()).await.expect("connects");
        let price = Decimal::new(3_000_000, 2);
        let rows: Vec<Kline> = opens
            .iter()
            .map(|&open_time| Kline {
                open_time,
                open: price,
                high: price,
                low: price,
                close: price,
                volume: Decimal::new(1_234, 3),
                close_time: open_time + 59_999,
                quote_volume: Decimal::new(3_702_000, 2),
                trades: 42,
                taker_buy_base_volume: Decimal::new(617, 3),
                taker_buy_quote_volume: Decimal::new(1_851_000, 2),
                ignore: Decimal::ZERO,
            })
            .collect();
        for batch in rows.chunks(store.batch_rows()) {
            store.write_klines(&key, batch).await.expect("written");
        }
        (db, store)
    });
    let year = TimeRange::new(opens[0], opens[opens.len() - 1] + 1);
    let mut group = c.benchmark_group("holes");
    group.throughput(Throughput::Elements(opens.len() as u64));
    group.sample_size(20);
    group.bench_function("store: Store::holes over a stored year of 1m (SQLite)", |b| {
        b.iter(|| {
            let holes = runtime
                .block_on(store.holes(&key, black_box(year)))
                .expect("holes");
            assert_eq!(holes.len(), 100);
            holes
        })
    });
    group.finish();
    runtime.block_on(async {
        store.close().await;
        db.drop_database().await.expect("dropped");
    });
}

fn holes(c: &mut Criterion) {
    let opens = open_times();
    stream(c, &opens);
    store(c, &opens);
}

criterion_group!(benches, holes);
criterion_main!(benches);
