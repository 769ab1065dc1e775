//! `sync`, `fill-gaps` and `gaps` end to end, through the binary, against a simulator with
//! outage windows and a symbol listed mid-range, and against replayed real rows — each
//! scenario once per backend (`<scenario>::sqlite`, `::postgres`, `::mysql`), each in a fresh
//! database (see `common::TestDb`).

mod common;

use std::time::Duration;

use binance_sim::{Clock, Outage, SimConfig, SimHandle};
use binance_spec::{Interval, Market};
use common::*;
use serde_json::Value;

on_each_backend!(
    sync_from_empty_then_resume,
    fill_gaps_restores_deleted_rows_and_skips_known_outages,
    fill_gaps_from_start_finds_a_hole_straddling_it,
    sigkill_then_rerun_equals_uninterrupted,
    dry_run_writes_and_publishes_nothing,
    sigterm_finishes_the_page_flushes_events_and_exits_143,
    real_rows_give_no_false_holes,
);

const SYMBOLS: &str = "BTCUSDT,ETHUSDT,SOLUSDT";
const SINCE: &str = "2024-01-01";
/// The simulator's "now": the 2024-03-01 00:00 candle is forming.
const NOW: &str = "2024-03-01T00:07:00Z";
const OUTAGE: (&str, &str) = ("2024-01-10T00:00:00Z", "2024-01-10T06:00:00Z");

fn sim_config() -> SimConfig {
    let mut config = SimConfig {
        clock: Clock::Fixed(t(NOW)),
        ..SimConfig::default()
    };
    config.listed.insert("SOLUSDT".into(), t("2024-02-01"));
    config.outages.push(Outage {
        symbol: None,
        start_ms: t(OUTAGE.0),
        end_ms: t(OUTAGE.1),
    });
    config
}

fn sync_cmd(sim: &SimHandle, db: &TestDb, prefix: &str) -> tokio::process::Command {
    let mut cmd = extractor(&sim.base_url(), &db.url(), prefix);
    cmd.args(["sync", "--period", "15m", "--symbols", SYMBOLS, "--since", SINCE]);
    cmd
}

async fn assert_store_equals_sim(sim: &SimHandle, db: &TestDb) {
    for symbol in SYMBOLS.split(',') {
        let want = as_text(&served(
            sim,
            Market::UsdM,
            symbol,
            Interval::M15,
            t(SINCE),
            t("2024-03-01"),
        ));
        let got = db.stored_rows(Market::UsdM, symbol, Interval::M15).await;
        assert_eq!(got.len(), want.len(), "{symbol}: row count");
        db.assert_rows(&got, &want, &format!("{symbol}: rows"));
    }
}

/// Deletes `symbol`'s candles opening at `from`, or in `[from, to)`.
async fn delete_klines(db: &TestDb, symbol: &str, from: &str, to: Option<&str>) {
    let upto = to.map_or(String::new(), |to| format!(" AND open_time < {}", t(to)));
    let op = if to.is_some() { ">=" } else { "=" };
    db.execute(&format!(
        "DELETE FROM klines WHERE symbol = '{symbol}' AND open_time {op} {}{upto}",
        t(from)
    ))
    .await;
}

fn by_symbol<'a>(events: &'a [Event], symbol: &str) -> &'a Value {
    &events
        .iter()
        .find(|e| e.body["symbol"] == symbol)
        .unwrap_or_else(|| panic!("a message for {symbol}"))
        .body
}

/// From an empty store, `sync` gives exactly the simulator's rows; the symbol listed
/// mid-range starts at its listing, the outage is a hole recorded as `exchange_empty`.
/// A second run is a no-op.
async fn sync_from_empty_then_resume(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("sync");
    let mut sub = Subscriber::new(&prefix).await;
    let out = run(sync_cmd(&sim, &db, &prefix)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_store_equals_sim(&sim, &db).await;
    let sol = db.stored_rows(Market::UsdM, "SOLUSDT", Interval::M15).await;
    assert_eq!(
        sol[0][0],
        t("2024-02-01").to_string(),
        "SOLUSDT starts at its listing"
    );

    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_schema_valid(&events);
    assert_eq!(events.len(), 4);
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let e = by_symbol(&events, symbol);
        assert_eq!(e["extraction_type"], "klines");
        assert_eq!(e["metrics"]["records_fetched"], 60 * 96 - 24, "{symbol}");
        assert_eq!(e["metrics"]["gaps_found"], 1, "{symbol}: the outage");
    }
    assert_eq!(
        by_symbol(&events, "SOLUSDT")["metrics"]["gaps_found"],
        0,
        "nothing before listing is missing"
    );
    let outage = (t(OUTAGE.0) - 15 * 60_000 + 1, t(OUTAGE.1));
    assert_eq!(
        db.ledger().await,
        [
            ("BTCUSDT".into(), outage.0, outage.1, "exchange_empty".into(), 1),
            ("ETHUSDT".into(), outage.0, outage.1, "exchange_empty".into(), 1)
        ]
    );

    // Nothing new at the exchange: the next run fetches nothing and changes nothing.
    let before = db.dump().await;
    let requests = sim.stats().klines_requests;
    let out = run(sync_cmd(&sim, &db, &prefix)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(db.dump().await, before);
    assert_eq!(
        sim.stats().klines_requests,
        requests,
        "up to date: no klines request"
    );

    // Time passes at the exchange: the next run continues exactly where the store ends.
    sim.advance(3 * 3_600_000);
    let out = run(sync_cmd(&sim, &db, &prefix)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    for symbol in SYMBOLS.split(',') {
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            symbol,
            Interval::M15,
            t(SINCE),
            t("2024-03-01T03:00:00Z"),
        ));
        db.assert_stored(Market::UsdM, symbol, Interval::M15, &want, symbol)
            .await;
    }
    sim.shutdown().await;
}

/// Holes made by deleting rows are found, fetched and restored exactly; the outage stays
/// `exchange_empty` and is never asked for again.
async fn fill_gaps_restores_deleted_rows_and_skips_known_outages(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("fill");
    let out = run(sync_cmd(&sim, &db, &prefix)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let complete = db.dump().await;

    // Four holes: a single row and a range in BTCUSDT, two days in ETHUSDT, and the row just
    // after the outage in SOLUSDT's neighbour ETHUSDT (merging with the known outage).
    delete_klines(&db, "BTCUSDT", "2024-01-05T10:00:00Z", None).await;
    delete_klines(&db, "BTCUSDT", "2024-01-20", Some("2024-01-20T06:00:00Z")).await;
    delete_klines(&db, "ETHUSDT", "2024-02-10", Some("2024-02-12")).await;
    delete_klines(&db, "ETHUSDT", OUTAGE.1, None).await;
    assert_ne!(db.dump().await, complete);

    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["fill-gaps", "--period", "15m", "--symbols", SYMBOLS]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(db.dump().await, complete, "every deleted row is back, exactly");

    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_schema_valid(&events);
    assert_eq!(events.len(), 4, "one per symbol (holes or not) and the batch");
    let metrics = |symbol: &str| {
        let m = &by_symbol(&events, symbol)["metrics"];
        (
            m["gaps_found"].as_u64().unwrap(),
            m["gaps_filled"].as_u64().unwrap(),
            m["records_written"].as_u64().unwrap(),
        )
    };
    assert_eq!(metrics("BTCUSDT"), (2, 2, 1 + 24));
    assert_eq!(metrics("ETHUSDT"), (2, 2, 2 * 96 + 1));
    assert_eq!(metrics("SOLUSDT"), (0, 0, 0));
    for e in &events {
        assert_eq!(e.body["extraction_type"], "klines_gap_filling");
        assert!(
            e.subject.starts_with(&format!("{prefix}.klines_gap_filling.")),
            "{}",
            e.subject
        );
    }
    let batch = events.last().unwrap();
    assert_eq!(batch.body["metrics"]["total_gaps_found"], 4);
    assert_eq!(batch.body["metrics"]["total_gaps_filled"], 4);

    // The outage is exchange_empty for both symbols; everything else filled.
    let states = db.ledger().await;
    let outage = (t(OUTAGE.0) - 15 * 60_000 + 1, t(OUTAGE.1));
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        assert!(
            states
                .iter()
                .any(|(s, a, b, st, _)| s == symbol && (*a, *b) == outage && st == "exchange_empty"),
            "{symbol}: {states:?}"
        );
    }
    assert_eq!(states.iter().filter(|r| r.3 == "filled").count(), 4, "{states:?}");

    // Again: no holes to fill, and not one klines request for the known outages.
    let requests = sim.stats().klines_requests;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["fill-gaps", "--period", "15m", "--symbols", SYMBOLS]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sim.stats().klines_requests, requests, "no klines request at all");
    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_eq!(events.last().unwrap().body["metrics"]["total_gaps_found"], 0);

    // --recheck asks again, and the exchange still has nothing.
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "fill-gaps",
        "--period",
        "15m",
        "--symbols",
        "BTCUSDT",
        "--recheck",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = sim.stats().klines_log;
    let asked: Vec<_> = log.iter().skip(log.len() - 1).collect();
    assert_eq!(asked[0].start_time, Some(outage.0));
    assert_eq!(asked[0].end_time, Some(outage.1 - 1));
    let after = db.ledger().await;
    let entry = after
        .iter()
        .find(|r| r.0 == "BTCUSDT" && (r.1, r.2) == outage)
        .unwrap();
    assert_eq!(
        (entry.3.as_str(), entry.4),
        ("exchange_empty", 2),
        "attempted twice, still empty"
    );

    // `gaps` shows it to people and programs.
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["gaps", "--period", "15m", "--symbols", SYMBOLS, "--json"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report[0]["symbol"], "BTCUSDT");
    assert_eq!(report[0]["holes"].as_array().unwrap().len(), 1);
    assert_eq!(report[0]["holes"][0]["state"], "exchange_empty");
    assert_eq!(report[0]["holes"][0]["missing"], 24);
    assert_eq!(report[2]["holes"].as_array().unwrap().len(), 0);
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["gaps", "--period", "15m", "--symbols", "BTCUSDT"]);
    let out = run(cmd).await;
    assert!(
        out.stdout.contains("exchange_empty") && out.stdout.contains("2024-01-09T23:45:00.001Z"),
        "{}",
        out.stdout
    );
    sim.shutdown().await;
}

/// A `sync` killed with SIGKILL mid-run and run again ends identical to an uninterrupted one.
async fn sigkill_then_rerun_equals_uninterrupted(backend: Backend) {
    let mut config = sim_config();
    config.weight_limit = binance_sim::WeightLimit::Unlimited;
    let sim = start_sim(config).await;
    let args = ["sync", "--period", "1m", "--symbols", SYMBOLS, "--since", SINCE];
    let sync = |db: &TestDb| {
        let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
        // The simulator is unlimited, and so is the client: otherwise a run would start under
        // Binance's default limit, see the weight earlier runs used in the simulator's answer
        // headers, and wait a minute before it reads the (huge) announced limit — while the
        // simulator's frozen clock, as the run extrapolates it, passes the forming candle.
        cmd.env("NATS_ENABLED", "false")
            .env("BINANCE_MAX_WEIGHT", "1000000000")
            .args(args);
        cmd
    };

    let reference = TestDb::new(backend).await;
    let out = run(sync(&reference)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let total = reference.count().await;
    let uninterrupted = reference.dump().await;

    for cut in [total / 5, total / 2, total * 4 / 5] {
        let db = TestDb::new(backend).await;
        let mut cmd = sync(&db);
        // Nobody reads this run's output: do not let a full pipe stall it.
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let served_before = sim.stats().rows_served;
        let mut child = cmd.spawn().unwrap();
        // Wait until part of the history went out (watching the simulator's counters, so that
        // nothing touches the database under the writer), then kill at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while sim.stats().rows_served - served_before < cut as u64 {
            assert!(tokio::time::Instant::now() < deadline, "the run made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.start_kill().unwrap(); // SIGKILL
        let status = child.wait().await.unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        let partial = db.count().await;
        assert!(partial < total, "killed before the end ({partial} of {total})");
        assert!(partial > 0, "killed after something was stored");

        let out = run(sync(&db)).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_same_dump(&db.dump().await, &uninterrupted, partial);
    }
    sim.shutdown().await;
}

/// Compares two dumps line by line, reporting the first difference (not megabytes of text).
fn assert_same_dump(got: &str, want: &str, killed_at: i64) {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    if let Some(i) = (0..g.len().max(w.len())).find(|&i| g.get(i) != w.get(i)) {
        panic!(
            "killed at {killed_at} rows: {} rows vs {} uninterrupted; first difference at line {i}:\n got  {:?}\n want {:?}",
            g.len(),
            w.len(),
            g.get(i),
            w.get(i)
        );
    }
}

/// `--dry-run` fetches and reports, but writes no kline and publishes nothing.
async fn dry_run_writes_and_publishes_nothing(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("dry");
    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = sync_cmd(&sim, &db, &prefix);
    cmd.arg("--dry-run");
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(sim.stats().klines_requests > 0, "it did fetch");
    assert!(out.stdout.contains("dry run"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("{}", 60 * 96 - 24)),
        "reports what it fetched: {}",
        out.stdout
    );
    assert_eq!(db.try_count().await, 0, "no kline written");
    assert!(db.ledger().await.is_empty(), "no ledger entry written");
    assert!(
        sub.drain(Duration::from_millis(500)).await.is_empty(),
        "nothing published"
    );
    sim.shutdown().await;
}

/// SIGTERM: the current page is finished, events are flushed, exit 143; what is stored has
/// no hole, and the next run completes it.
async fn sigterm_finishes_the_page_flushes_events_and_exits_143(backend: Backend) {
    let mut config = sim_config();
    config.faults.slow_rate = 1.0;
    config.faults.slow = Duration::from_millis(150);
    let sim = start_sim(config).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("term");
    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "sync",
        "--period",
        "1m",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--since",
        SINCE,
    ]);
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap() as i32;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sim.stats().klines_requests < 4 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY-free: send SIGTERM with the kill command.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");

    let events = sub.until_batch(Duration::from_secs(10)).await;
    assert_schema_valid(&events);
    assert_eq!(
        events.len(),
        3,
        "both symbols and the batch were flushed: {events:#?}"
    );
    for e in &events[..2] {
        assert_eq!(e.body["success"], false);
        assert!(
            e.body["errors"][0]
                .as_str()
                .unwrap()
                .contains("stopped by a signal"),
            "{}",
            e.body
        );
    }
    // What is stored is a prefix of the history: no hole.
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let got = db.stored_rows(Market::UsdM, symbol, Interval::M1).await;
        let want = as_text(&served(
            &sim,
            Market::UsdM,
            symbol,
            Interval::M1,
            t(SINCE),
            t("2024-03-01"),
        ));
        assert!(
            !got.is_empty() && got.len() < want.len(),
            "{symbol}: partial ({})",
            got.len()
        );
        db.assert_rows(&got, &want[..got.len()], &format!("{symbol}: a prefix"));
    }
    sim.shutdown().await;
}

/// Replayed real rows: no false holes, and the two real outages found and recorded.
async fn real_rows_give_no_false_holes(backend: Backend) {
    let sim = start_sim(SimConfig {
        clock: Clock::Fixed(t("2021-04-01T00:30:00Z")),
        data_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/realdata/data").into()),
        ..SimConfig::default()
    })
    .await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("real");
    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "--market",
        "spot",
        "sync",
        "--period",
        "1h",
        "--symbols",
        "BTCUSDT",
        "--since",
        "2021-01-01",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = sub.until_batch(Duration::from_secs(20)).await;
    assert_eq!(by_symbol(&events, "BTCUSDT")["metrics"]["records_fetched"], 2158);
    assert_eq!(by_symbol(&events, "BTCUSDT")["metrics"]["gaps_found"], 2);

    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "--market",
        "spot",
        "gaps",
        "--period",
        "1h",
        "--symbols",
        "BTCUSDT",
        "--json",
    ]);
    let out = run(cmd).await;
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let holes: Vec<(i64, i64, String)> = report[0]["holes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from_ms"].as_i64().unwrap(),
                h["to_ms"].as_i64().unwrap(),
                h["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        holes,
        [
            (1_613_012_400_001, 1_613_019_600_000, "exchange_empty".into()),
            (1_614_992_400_001, 1_614_999_600_000, "exchange_empty".into())
        ]
    );

    // fill-gaps on the same store: nothing to do, not one request.
    let requests = sim.stats().klines_requests;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "--market",
        "spot",
        "fill-gaps",
        "--period",
        "1h",
        "--symbols",
        "BTCUSDT",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sim.stats().klines_requests, requests);
    sim.shutdown().await;
}

/// `fill-gaps --start` inside a hole fetches that hole whole; holes before it are left alone.
async fn fill_gaps_from_start_finds_a_hole_straddling_it(backend: Backend) {
    let sim = start_sim(sim_config()).await;
    let db = TestDb::new(backend).await;
    let prefix = unique_prefix("straddle");
    let out = run(sync_cmd(&sim, &db, &prefix)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let complete = db.dump().await;
    let ms = |s: &str| t(s).to_string();
    // One hole well before --start, one that --start falls into.
    delete_klines(&db, "BTCUSDT", "2024-01-03T10:00:00Z", None).await;
    delete_klines(
        &db,
        "BTCUSDT",
        "2024-02-14T22:00:00Z",
        Some("2024-02-15T02:00:00Z"),
    )
    .await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.env("NATS_ENABLED", "false").args([
        "fill-gaps",
        "--period",
        "15m",
        "--symbols",
        "BTCUSDT",
        "--start",
        "2024-02-15",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("BTCUSDT") && out.stdout.contains(" 16 "),
        "16 rows written: {}",
        out.stdout
    );
    let mut want = complete.lines().collect::<Vec<_>>();
    let early = format!("|BTCUSDT|15m|{}|", ms("2024-01-03T10:00:00Z"));
    want.retain(|l| !l.contains(&early));
    let got = db.dump().await;
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        want,
        "the straddling hole is filled, the early one is not"
    );
    sim.shutdown().await;
}
