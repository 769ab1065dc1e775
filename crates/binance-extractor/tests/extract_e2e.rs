//! `extract` end to end, through the binary, against the simulator and the real NATS server —
//! each scenario once per backend (`<scenario>::sqlite`, `::postgres`, `::mysql`), each in a
//! fresh database (see `common::TestDb`).

mod common;

use std::time::Duration;

use binance_sim::{Clock, SimConfig};
use binance_spec::{Interval, Market};
use common::*;

on_each_backend!(
    eight_symbols_ninety_days_exactly_once,
    nats_down_still_stores_everything,
    nats_disabled_attempts_no_connection,
    nats_dying_mid_run_loses_no_klines,
    unknown_symbol_fails_only_itself,
    usage_errors_exit_two_before_any_request,
    the_forming_candle_is_never_stored,
);

const EIGHT: [&str; 8] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT", "SOLUSDT", "LINKUSDT", "LTCUSDT", "XRPUSDT",
];

fn sim_config() -> SimConfig {
    SimConfig {
        clock: Clock::Fixed(t("2024-06-01T12:07:00Z")),
        ..SimConfig::default()
    }
}

/// The default eight symbols × 15m × 90 days: the store holds exactly the simulator's rows,
/// the subscriber gets eight single messages and one batch, all valid; a second run adds and
/// changes nothing.
async fn eight_symbols_ninety_days_exactly_once(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("extract8");
    let (start, end) = (t("2024-01-01"), t("2024-03-31"));
    let mut sub = Subscriber::new(&prefix).await;

    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "extract",
        "--period",
        "15m",
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-31T00:00:00Z",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Connected to NATS server at nats://127.0.0.1:4222"),
        "{}",
        out.stderr
    );

    let mut total = 0;
    for symbol in EIGHT {
        let want = as_text(&served(&sim, Market::UsdM, symbol, Interval::M15, start, end));
        assert_eq!(want.len(), 90 * 96, "{symbol}: the simulator serves every candle");
        let got = db.stored_rows(Market::UsdM, symbol, Interval::M15).await;
        db.assert_rows(
            &got,
            &want,
            &format!("{symbol}: stored rows equal served rows, byte for byte (numerically on MySQL)"),
        );
        total += got.len();
        assert!(
            out.stderr
                .contains(&format!("Published extraction completion message for {symbol}"))
        );
    }

    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_schema_valid(&events);
    assert_eq!(
        events.len(),
        9,
        "eight single messages and one batch: {events:#?}"
    );
    for symbol in EIGHT {
        let single: Vec<_> = events.iter().filter(|e| e.body["symbol"] == symbol).collect();
        assert_eq!(single.len(), 1, "{symbol}");
        let e = single[0];
        assert_eq!(e.subject, format!("{prefix}.klines.{symbol}.15m"));
        assert_eq!(e.body["event_type"], "extraction_completed");
        assert_eq!(e.body["extraction_type"], "klines");
        assert_eq!(e.body["period"], "15m");
        assert_eq!(e.body["success"], true);
        assert_eq!(e.body["metrics"]["records_fetched"], 8640);
        assert_eq!(e.body["metrics"]["records_written"], 8640);
        assert_eq!(e.body["metrics"]["gaps_found"], 0);
        assert_eq!(e.body["errors"], serde_json::json!([]));
        assert_eq!(
            e.headers.get("Content-Type").map(String::as_str),
            Some("application/json")
        );
    }
    let batch = events.last().unwrap();
    assert_eq!(batch.subject, format!("{prefix}.klines.batch.15m"));
    assert_eq!(batch.body["event_type"], "batch_extraction_completed");
    assert_eq!(batch.body["success"], true);
    assert_eq!(batch.body["symbols"], serde_json::json!(EIGHT));
    assert_eq!(batch.body["metrics"]["symbols_processed"], 8);
    assert_eq!(batch.body["metrics"]["total_records_fetched"], total);
    assert_eq!(batch.body["metrics"]["total_records_written"], total);

    // Again: nothing added, nothing changed, and the messages say so.
    let before = db.dump().await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "extract",
        "--period",
        "15m",
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-31",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(db.dump().await, before);
    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_schema_valid(&events);
    assert_eq!(events.len(), 9);
    assert_eq!(events.last().unwrap().body["metrics"]["total_records_written"], 0);
    assert_eq!(
        events.last().unwrap().body["metrics"]["total_records_fetched"],
        total
    );
    sim.shutdown().await;
}

/// NATS unreachable: everything is still stored, the run exits 0, and the problem is a warning.
async fn nats_down_still_stores_everything(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_URL", format!("nats://127.0.0.1:{}", closed_port()))
        .args([
            "extract",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--start",
            "2024-05-01",
            "--end",
            "2024-05-08",
        ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Failed to connect to NATS server"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Failed to send NATS message for BTCUSDT"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("WARN"),
        "a warning, not an error: {}",
        out.stderr
    );
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            symbol,
            Interval::M15,
            t("2024-05-01"),
            t("2024-05-08"),
        ));
        db.assert_stored(Market::UsdM, symbol, Interval::M15, &want, symbol)
            .await;
    }
    sim.shutdown().await;
}

/// NATS_ENABLED=false: no connection is even attempted.
async fn nats_disabled_attempts_no_connection(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let watch = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_URL", format!("nats://{}", watch.local_addr().unwrap()))
        .env("NATS_ENABLED", "false")
        .args([
            "extract",
            "--symbols",
            "BTCUSDT",
            "--start",
            "2024-05-01",
            "--end",
            "2024-05-02",
        ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let attempt = tokio::time::timeout(Duration::from_millis(200), watch.accept()).await;
    assert!(attempt.is_err(), "nothing connected to the NATS address");
    assert!(
        !out.stderr.contains("Failed to send NATS message"),
        "{}",
        out.stderr
    );
    assert_eq!(db.count().await, 96);
    sim.shutdown().await;
}

/// NATS dying mid-run: the extraction stores everything and exits as it would have.
async fn nats_dying_mid_run_loses_no_klines(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("natsdies");
    let mut sub = Subscriber::new(&prefix).await;
    let proxy = Proxy::start("127.0.0.1:4222").await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.env("NATS_URL", format!("nats://{}", proxy.addr)).args([
        "extract",
        "--workers",
        "1",
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-01",
    ]);
    let child = cmd.spawn().unwrap();
    // Kill NATS (as the extractor sees it) as soon as the first message went through.
    let first = sub
        .next(Duration::from_secs(60))
        .await
        .expect("the first symbol's message arrives");
    // (Which symbol: with one worker the symbols still race for it, in no fixed order.)
    assert_eq!(first.body["event_type"], "extraction_completed", "{first:#?}");
    // One worker: symbols run in the order given.
    assert_eq!(first.body["symbol"], "BTCUSDT", "{first:#?}");
    proxy.kill();
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for symbol in EIGHT {
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            symbol,
            Interval::M15,
            t("2024-01-01"),
            t("2024-03-01"),
        ));
        db.assert_stored(Market::UsdM, symbol, Interval::M15, &want, symbol)
            .await;
    }
    sim.shutdown().await;
}

/// An unknown symbol fails alone, with Binance's message; the others complete.
async fn unknown_symbol_fails_only_itself(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("unknown");
    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "extract",
        "--symbols",
        "BTCUSDT,BTCXYZ,ETHUSDT",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-03",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("BTCXYZ: Binance says -1121 Invalid symbol."),
        "{}",
        out.stderr
    );
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        assert_eq!(
            db.stored_rows(Market::UsdM, symbol, Interval::M15).await.len(),
            192,
            "{symbol}"
        );
    }
    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_schema_valid(&events);
    let bad = events
        .iter()
        .find(|e| e.body["symbol"] == "BTCXYZ")
        .expect("a message for the failed symbol");
    assert_eq!(bad.body["success"], false);
    assert_eq!(
        bad.body["errors"],
        serde_json::json!(["BTCXYZ: Binance says -1121 Invalid symbol."])
    );
    let batch = events
        .iter()
        .find(|e| e.body["event_type"] == "batch_extraction_completed")
        .unwrap();
    assert_eq!(batch.body["success"], false);
    assert_eq!(
        batch.body["errors"],
        serde_json::json!(["BTCXYZ: Binance says -1121 Invalid symbol."])
    );
    assert_eq!(batch.body["metrics"]["symbols_processed"], 3);
    sim.shutdown().await;
}

/// Usage errors exit 2 with one clear line, before any request.
async fn usage_errors_exit_two_before_any_request(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["extract", "--period", "7m", "--start", "2024-01-01"],
            "valid periods are 1s, 1m, 3m",
        ),
        (
            &["extract", "--symbols", "BTC.USDT", "--start", "2024-01-01"],
            "invalid symbol 'BTC.USDT'",
        ),
        (
            &["extract", "--symbols", "BTC*", "--start", "2024-01-01"],
            "invalid symbol 'BTC*'",
        ),
        (
            &["extract", "--symbols", "BTCUSDT,", "--start", "2024-01-01"],
            "empty symbol",
        ),
        (
            &["extract", "--start", "yesterday"],
            "invalid date/time 'yesterday'",
        ),
        (
            &["extract", "--start", "2024-02-01", "--end", "2024-01-01"],
            "--end must be after --start",
        ),
        (
            &["--market", "coinm", "extract", "--start", "2024-01-01"],
            "use 'usdm'",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
        cmd.args(*args);
        let out = run(cmd).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
    assert_eq!(sim.stats().requests, 0, "no request reached the exchange");
    assert!(
        db.created_nothing().await,
        "no database (SQLite) or table (servers) was created"
    );
    sim.shutdown().await;
}

/// Without --end, the run stops before the candle still forming at the exchange's "now".
async fn the_forming_candle_is_never_stored(backend: Backend) {
    let sim = start_sim(sim_config()).await; // now = 2024-06-01T12:07Z
    let db = TestDb::new(backend).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_ENABLED", "false").args([
        "extract",
        "--symbols",
        "BTCUSDT",
        "--period",
        "1h",
        "--start",
        "2024-06-01",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = db.stored_rows(Market::UsdM, "BTCUSDT", Interval::H1).await;
    assert_eq!(rows.len(), 12, "00:00 .. 11:00 closed; 12:00 still forming");
    assert_eq!(rows.last().unwrap()[0], t("2024-06-01T11:00:00Z").to_string());
    // The simulator did serve the forming candle when asked for everything.
    let all = sim.dataset().klines(
        Market::UsdM,
        "BTCUSDT",
        Interval::H1,
        t("2024-06-01"),
        t("2024-06-02"),
    );
    assert_eq!(all.len(), 13);
    sim.shutdown().await;
}

/// A TCP proxy in front of the real NATS server, which the test can kill.
struct Proxy {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &'static str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { addr, task }
    }

    /// Closes the listener and every connection (aborting the task drops them all).
    fn kill(&self) {
        self.task.abort();
    }
}
