//! The klines decoder on real pages: `cargo bench -p binance-extractor --bench decode`.
//!
//! Each page is the exact body the simulator sends — replayed rows of the repository's
//! copy of data.binance.vision (`testdata/realdata`: USD-M BTCUSDT 1m of 2023-04-15, spot
//! BTCUSDT 1h of 2021-01..03), and synthetic rows of the standard workload (USD-M 15m) —
//! at the page sizes the extractor asks for: 499 rows on USD-M (weight 2), 1000 on spot.

use std::hint::black_box;

use binance_extractor::binance::decode::decode_klines;
use binance_sim::{Clock, Dataset, SimClock, SimConfig};
use binance_spec::{Interval, Market, time::parse_timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn ms(date: &str) -> i64 {
    parse_timestamp(date).expect("a valid date")
}

/// The simulator's data: the real archive rows plus synthetic symbols, "now" after all of it.
fn dataset() -> Dataset {
    let config = SimConfig {
        data_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/realdata/data").into()),
        clock: Clock::Fixed(ms("2025-01-01")),
        ..SimConfig::default()
    };
    Dataset::new(&config, SimClock::new(config.clock)).expect("the repository's real data loads")
}

/// The body of `GET klines` for these parameters, checked to hold `limit` rows.
fn page(
    data: &Dataset,
    market: Market,
    symbol: &str,
    interval: Interval,
    start: &str,
    limit: u32,
) -> Vec<u8> {
    let mut body = Vec::new();
    let rows = data.write_page_json(market, symbol, interval, Some(ms(start)), None, limit, &mut body);
    assert_eq!(rows, limit as usize, "{market} {symbol} {interval} from {start}");
    body
}

fn decoder(c: &mut Criterion) {
    let data = dataset();
    let pages = [
        (
            "usdm BTCUSDT 1m real, 499 rows",
            page(&data, Market::UsdM, "BTCUSDT", Interval::M1, "2023-04-15", 499),
        ),
        (
            "usdm BTCUSDT 1m real, 1000 rows",
            page(&data, Market::UsdM, "BTCUSDT", Interval::M1, "2023-04-15", 1000),
        ),
        (
            "spot BTCUSDT 1h real, 1000 rows",
            page(&data, Market::Spot, "BTCUSDT", Interval::H1, "2021-01-01", 1000),
        ),
        (
            "usdm ETHUSDT 15m synthetic, 499 rows",
            page(&data, Market::UsdM, "ETHUSDT", Interval::M15, "2024-01-01", 499),
        ),
    ];
    let mut group = c.benchmark_group("decode_klines");
    for (name, body) in &pages {
        let rows = decode_klines(body).expect("a valid page").len();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(*name, |b| b.iter(|| decode_klines(black_box(body))));
    }
    group.finish();
}

criterion_group!(benches, decoder);
criterion_main!(benches);
