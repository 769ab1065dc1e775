//! Table tests of the paging loop (`pipeline::fetch_into_store`) against the simulator:
//! every case compares the stored rows with what the simulator serves, and counts the
//! requests it took.

mod common;

use std::{sync::Arc, time::Duration};

use binance_extractor::{
    binance::{BinanceClient, ClientConfig, RetryPolicy, WeightBudget},
    clock::Clock,
    pipeline::{Context, fetch_into_store},
    series::{SeriesKey, TimeRange},
    store::Store,
};
use binance_sim::{Outage, SimConfig, SimHandle};
use binance_spec::{Interval, Market};
use common::*;
use tokio_util::sync::CancellationToken;

const NOW: &str = "2024-06-01T12:07:00Z";

struct Case {
    name: &'static str,
    market: Market,
    symbol: &'static str,
    interval: Interval,
    start: &'static str,
    end: &'static str,
    /// Rows expected (checked against the simulator's own answer too).
    rows: usize,
    /// Klines requests expected.
    requests: usize,
    /// Holes expected between received candles.
    holes: usize,
}

fn sim_config() -> SimConfig {
    let mut config = SimConfig {
        clock: binance_sim::Clock::Fixed(t(NOW)),
        ..SimConfig::default()
    };
    config.listed.insert("SOLUSDT".into(), t("2024-01-10"));
    config.outages.push(Outage {
        symbol: Some("ADAUSDT".into()),
        start_ms: t("2024-01-01T03:00:00Z"),
        end_ms: t("2024-01-01T05:00:00Z"),
    });
    config.data_dir = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/realdata/data").into());
    config
}

async fn context(sim: &SimHandle, db: &TempDb, market: Market, interval: Interval) -> Context {
    let budget = Arc::new(WeightBudget::new(
        market.default_weight_limit(),
        Duration::from_secs(60),
        0.9,
    ));
    let client = BinanceClient::new(
        ClientConfig {
            base_url: sim.base_url().parse().unwrap(),
            market,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        },
        budget,
    )
    .unwrap();
    Context {
        client,
        store: Store::connect(&db.url().parse().unwrap()).await.unwrap(),
        clock: Clock::fixed(sim.dataset().now_ms()),
        market,
        interval,
        cancel: CancellationToken::new(),
        dry_run: false,
        progress: binance_extractor::progress::Progress::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_edge_cases() {
    let cases = [
        Case {
            name: "range shorter than a page",
            market: Market::UsdM,
            symbol: "LTCUSDT",
            interval: Interval::M15,
            start: "2024-01-01",
            end: "2024-01-02",
            rows: 96,
            requests: 1,
            holes: 0,
        },
        Case {
            name: "exact multiple of the page size (2 × 499), no extra request",
            market: Market::UsdM,
            symbol: "ETHUSDT",
            interval: Interval::M1,
            start: "2024-01-01T00:00:00Z",
            end: "2024-01-01T16:38:00Z",
            rows: 998,
            requests: 2,
            holes: 0,
        },
        Case {
            name: "spot pages of 1000, three full pages",
            market: Market::Spot,
            symbol: "BNBUSDT",
            interval: Interval::M1,
            start: "2024-01-01T00:00:00Z",
            end: "2024-01-03T02:00:00Z",
            rows: 3000,
            requests: 3,
            holes: 0,
        },
        Case {
            name: "outage inside a page",
            market: Market::UsdM,
            symbol: "ADAUSDT",
            interval: Interval::M15,
            start: "2024-01-01",
            end: "2024-01-02",
            rows: 96 - 8,
            requests: 1,
            holes: 1,
        },
        Case {
            name: "listing after the start",
            market: Market::UsdM,
            symbol: "SOLUSDT",
            interval: Interval::H1,
            start: "2024-01-01",
            end: "2024-01-15",
            rows: 5 * 24,
            requests: 1,
            holes: 0,
        },
        Case {
            name: "forming candle excluded",
            market: Market::UsdM,
            symbol: "LINKUSDT",
            interval: Interval::H1,
            start: "2024-06-01",
            end: "2024-06-03",
            rows: 12,
            requests: 1,
            holes: 0,
        },
        Case {
            name: "1M calendar months",
            market: Market::Spot,
            symbol: "XRPUSDT",
            interval: Interval::Mo1,
            start: "2021-01-01",
            end: "2024-01-01",
            rows: 36,
            requests: 1,
            holes: 0,
        },
        Case {
            name: "replayed real spot rows: outages, halted zero-volume candle",
            market: Market::Spot,
            symbol: "BTCUSDT",
            interval: Interval::H1,
            start: "2021-01-01",
            end: "2021-04-01",
            rows: 2158,
            requests: 3,
            holes: 2,
        },
        Case {
            name: "replayed real USD-M rows, 1m, one day",
            market: Market::UsdM,
            symbol: "BTCUSDT",
            interval: Interval::M1,
            start: "2023-04-15",
            end: "2023-04-16",
            rows: 1440,
            requests: 3,
            holes: 0,
        },
    ];
    let sim = start_sim(sim_config()).await;
    for case in cases {
        let db = TempDb::new();
        let ctx = context(&sim, &db, case.market, case.interval).await;
        let key = SeriesKey {
            market: case.market,
            symbol: case.symbol.parse().unwrap(),
            interval: case.interval,
        };
        let range = TimeRange::new(t(case.start), t(case.end));
        let log_before = sim.stats().klines_log.len();
        let outcome = fetch_into_store(&ctx, &key, range, None).await;
        assert!(outcome.error.is_none(), "{}: {:?}", case.name, outcome.error);

        let served = served(
            &sim,
            case.market,
            case.symbol,
            case.interval,
            range.start,
            range.end,
        );
        assert_eq!(
            served.len(),
            case.rows,
            "{}: the simulator's own count",
            case.name
        );
        let stored = stored_rows(&db.path(), case.market, case.symbol, case.interval).await;
        assert_eq!(stored, as_text(&served), "{}: stored rows", case.name);
        assert_eq!(outcome.fetched as usize, case.rows, "{}", case.name);
        assert_eq!(outcome.written as usize, case.rows, "{}", case.name);
        assert_eq!(
            outcome.holes.len(),
            case.holes,
            "{}: holes {:?}",
            case.name,
            outcome.holes
        );

        let log = &sim.stats().klines_log[log_before..];
        assert_eq!(log.len(), case.requests, "{}: requests {log:#?}", case.name);
        for entry in log {
            assert!(
                entry.limit.unwrap() <= case.market.cheapest_full_page(),
                "{}: never the expensive tiers",
                case.name
            );
            assert_eq!(entry.status, 200, "{}", case.name);
        }
        ctx.store.close().await;
    }
    sim.shutdown().await;
}

/// Real archive quirks are stored as they are: the halted zero-volume row keeps its short
/// close time, and the two outage hours are the holes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_rows_keep_their_quirks() {
    let sim = start_sim(sim_config()).await;
    let db = TempDb::new();
    let ctx = context(&sim, &db, Market::Spot, Interval::H1).await;
    let key = SeriesKey {
        market: Market::Spot,
        symbol: "BTCUSDT".parse().unwrap(),
        interval: Interval::H1,
    };
    let outcome = fetch_into_store(&ctx, &key, TimeRange::new(t("2021-01-01"), t("2021-04-01")), None).await;
    assert!(outcome.error.is_none());
    let rows = stored_rows(&db.path(), Market::Spot, "BTCUSDT", Interval::H1).await;
    let halted = rows
        .iter()
        .find(|r| r[0] == "1613012400000")
        .expect("the halted row");
    assert_eq!(halted[6], "1613014854773", "close time cut short at the halt");
    assert_eq!(halted[5], "0.00000000", "zero volume, text kept exactly");
    let holes: Vec<(i64, i64)> = outcome.holes.iter().map(|h| (h.start, h.end)).collect();
    assert_eq!(
        holes,
        [
            (1_613_012_400_001, 1_613_019_600_000),
            (1_614_992_400_001, 1_614_999_600_000)
        ],
        "the two real outages, and nothing else"
    );
    // The store finds the same holes in what it holds.
    let found = ctx
        .store
        .holes(&key, TimeRange::new(t("2021-01-01"), t("2021-04-01")))
        .await
        .unwrap();
    assert_eq!(found, outcome.holes);
    sim.shutdown().await;
}
