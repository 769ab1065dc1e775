//! Never banned, never idle: the weight budget, retries and bans against the strict simulator.

mod common;

use std::time::{Duration, Instant};

use binance_sim::{Clock, FaultConfig, SimConfig, WeightLimit};
use binance_spec::{Interval, Market};
use common::*;

const NOW: &str = "2024-03-01T00:00:30Z";

fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("SYM{i}USDT")).collect()
}

/// Weight a sync of `rows` 1m candles costs on USD-M with the tool's page sizes: full pages
/// of 499 rows (weight 2), and a last page of the remainder plus one row.
fn weight_of(rows: u64) -> u64 {
    let full = rows / 499;
    let rest = rows % 499;
    let mut w = full * 2;
    if rest > 0 {
        w += u64::from(Market::UsdM.klines_weight((rest + 1).min(499) as u32));
    }
    w
}

/// 20 symbols under a small weight window: no 429 at all, nothing spent twice, and the
/// budget used up to its ceiling. (Wall time against the minimum the budget allows is a
/// benchmark figure, not a timed test: `bx-bench e2e --workload rate-limited`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_symbols_use_the_budget_without_a_single_429() {
    let names = symbols(20);
    let (limit, window) = (100u64, Duration::from_secs(1));
    let sim = start_sim(SimConfig {
        symbols: names.clone(),
        clock: Clock::Fixed(t(NOW)),
        weight_limit: WeightLimit::PerWindow(limit as u32),
        weight_window: window,
        ..SimConfig::default()
    })
    .await;
    let db = TempDb::new();
    let since = "2024-02-24T00:00:00Z";
    let rows_per_symbol = (t("2024-03-01") - t(since)) as u64 / 60_000;
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_ENABLED", "false").args([
        "sync",
        "--period",
        "1m",
        "--since",
        since,
        "--workers",
        "8",
        "--symbols",
        &names.join(","),
    ]);
    let started = Instant::now();
    let out = run(cmd).await;
    let wall = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stats = sim.stats();
    assert_eq!(stats.rate_limited_429, 0, "not one 429");
    assert_eq!(stats.banned_418, 0);
    assert!(
        stats.max_weight_in_any_window.usdm <= limit,
        "{:?}",
        stats.max_weight_in_any_window
    );
    for name in &names {
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            name,
            Interval::M1,
            t(since),
            t("2024-03-01"),
        ));
        assert_eq!(want.len() as u64, rows_per_symbol);
        assert_eq!(
            stored_rows(&db.path(), Market::UsdM, name, Interval::M1).await,
            want,
            "{name}"
        );
    }
    // Not one request more than the rows need, each at the cheapest page size.
    let spent: u64 = stats
        .klines_log
        .iter()
        .map(|e| u64::from(Market::UsdM.klines_weight(e.limit.unwrap())))
        .sum();
    assert_eq!(spent, weight_of(rows_per_symbol) * names.len() as u64);
    // Never idle while there was budget: some window got at least the 90 % ceiling (our
    // windows and Binance's need not be aligned, so one may see a little more — never over
    // the limit, checked above).
    let busiest = stats.max_weight_in_any_window.usdm;
    assert!(busiest >= limit * 9 / 10, "busiest window {busiest} of {limit}");
    eprintln!(
        "wall {wall:?} for {spent} weight at {} per {window:?}",
        limit * 9 / 10
    );
    sim.shutdown().await;
}

/// 5 % server errors, connection resets and truncated bodies: the stored data is still
/// exactly the simulator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_and_the_data_stays_exact() {
    let sim = start_sim(SimConfig {
        clock: Clock::Fixed(t(NOW)),
        weight_limit: WeightLimit::Unlimited,
        seed: 7,
        faults: FaultConfig {
            fail_rate: 0.05,
            reset_rate: 0.05,
            truncate_rate: 0.05,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let db = TempDb::new();
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_ENABLED", "false").args([
        "sync",
        "--period",
        "5m",
        "--since",
        "2024-01-01",
        "--symbols",
        "BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let faults = sim.stats().faults;
    assert!(
        faults.fail > 0 && faults.reset > 0 && faults.truncate > 0,
        "{faults:?}"
    );
    for symbol in ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"] {
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            symbol,
            Interval::M5,
            t("2024-01-01"),
            t("2024-03-01"),
        ));
        assert_eq!(
            stored_rows(&db.path(), Market::UsdM, symbol, Interval::M5).await,
            want,
            "{symbol}"
        );
    }
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
    sim.shutdown().await;
}

/// Spends weight from this test (same IP as the extractor) with exchangeInfo requests until
/// the simulator answers 418. (This client ignores the budget on purpose.)
async fn get_banned(base: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    loop {
        let r = client
            .get(format!("{base}/fapi/v1/exchangeInfo"))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 418 {
            assert!(r.headers().contains_key("retry-after"), "418 carries Retry-After");
            return;
        }
    }
}

/// A 418 ban during a run pauses every worker until it ends, then the run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_pauses_every_worker_until_it_ends() {
    let ban = Duration::from_secs(3);
    let sim = start_sim(SimConfig {
        clock: Clock::Fixed(t(NOW)),
        weight_limit: WeightLimit::PerWindow(400),
        weight_window: Duration::from_secs(1),
        ban,
        faults: FaultConfig {
            slow_rate: 1.0,
            slow: Duration::from_millis(40),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let db = TempDb::new();
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_ENABLED", "false").args([
        "sync",
        "--period",
        "1m",
        "--since",
        "2024-02-25",
        "--workers",
        "4",
        "--symbols",
        "BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT",
    ]);
    let child = cmd.spawn().unwrap();
    // Let the run get going, then spend the IP's weight from here until Binance bans it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sim.stats().klines_requests < 8 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    get_banned(&sim.base_url()).await;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("every request waits until"), "{stderr}");

    let log = sim.stats().klines_log;
    let first_refusal = log
        .iter()
        .find(|e| e.status == 418 || e.status == 429)
        .expect("the run was refused");
    let first_ban = log
        .iter()
        .find(|e| e.status == 418)
        .expect("the run itself met the ban");
    // Requests already in flight when the ban came may be refused too; after that, nothing
    // until the ban is over.
    let quiet_from = first_ban.at_ms + 200;
    let quiet_to = first_ban.at_ms + ban.as_millis() as u64 - 200;
    let during: Vec<_> = log
        .iter()
        .filter(|e| e.at_ms > quiet_from && e.at_ms < quiet_to)
        .collect();
    assert!(during.is_empty(), "klines requests during the ban: {during:#?}");
    let refused = log.iter().filter(|e| e.status == 418 || e.status == 429).count();
    assert!(
        refused <= 8,
        "at most a 429 and a 418 per worker in flight, got {refused} (first at {} ms)",
        first_refusal.at_ms
    );
    for symbol in ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"] {
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            symbol,
            Interval::M1,
            t("2024-02-25"),
            t("2024-03-01"),
        ));
        assert_eq!(
            stored_rows(&db.path(), Market::UsdM, symbol, Interval::M1).await,
            want,
            "{symbol}"
        );
    }
    sim.shutdown().await;
}
