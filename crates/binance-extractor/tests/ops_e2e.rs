//! What an operator relies on: metrics while a job runs and pushed at its end, `check`, and
//! a recorded ban that a later process honours.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use binance_sim::{Clock, FaultConfig, SimConfig, WeightLimit};
use common::*;

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `--metrics-listen` serves every listed metric during the run (scraped while it runs), and
/// `--metrics-push` delivers the final values to a Pushgateway-like receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_during_the_run_and_pushed_at_the_end() {
    let sim = start_sim(SimConfig {
        clock: Clock::Fixed(t("2024-03-01T00:07:00Z")),
        faults: FaultConfig {
            slow_rate: 1.0,
            slow: Duration::from_millis(60),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    let db = TempDb::new();
    let prefix = unique_prefix("metrics");

    // A Pushgateway stand-in: remembers what was PUT where.
    let pushed: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let store = pushed.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let store = store.clone();
        async move {
            store.lock().unwrap().push((uri.path().to_string(), body));
            axum::http::StatusCode::OK
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let port = closed_port();
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args([
        "--metrics-listen",
        &format!("127.0.0.1:{port}"),
        "--metrics-push",
        &gateway,
        "sync",
        "--period",
        "1m",
        "--since",
        "2024-02-25",
        "--symbols",
        "BTCUSDT,ETHUSDT",
    ]);
    let mut child = cmd.spawn().unwrap();
    let client = http();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let scraped = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no metrics during the run"
        );
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            let text = r.text().await.unwrap();
            if value(&text, "binance_extractor_klines_fetched_total") > 0.0 {
                break text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "scraped while the job was still running"
    );
    for name in [
        "binance_extractor_klines_fetched_total",
        "binance_extractor_klines_written_total",
        "binance_extractor_requests_total",
        "binance_extractor_request_weight_total",
        "binance_extractor_refusals_total",
        "binance_extractor_retries_total",
        "binance_extractor_events_published_total",
        "binance_extractor_events_failed_total",
        "binance_extractor_outbox_backlog",
        "binance_extractor_last_closed_candle_open_time_seconds",
    ] {
        assert!(
            scraped.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{scraped}"
        );
    }
    assert!(
        scraped.contains(r#"status="418""#) && scraped.contains(r#"command="sync""#),
        "{scraped}"
    );
    assert!(value(&scraped, "binance_extractor_requests_total") >= 1.0);

    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    let (path, body) = &pushed[0];
    assert_eq!(
        path,
        "/metrics/job/binance_extractor/command/sync/market/usdm/period/1m"
    );
    let rows = 2.0 * (5.0 * 1440.0 + 7.0); // 2024-02-25 .. 2024-03-01T00:07Z, 1m
    assert_eq!(value(body, "binance_extractor_klines_fetched_total"), rows);
    assert_eq!(value(body, "binance_extractor_klines_written_total"), rows);
    assert_eq!(value(body, "binance_extractor_events_published_total"), 3.0);
    assert_eq!(value(body, "binance_extractor_run_success"), 1.0);
    assert!(
        body.contains(r#"symbol="ETHUSDT"} 1709251560"#),
        "the newest closed candle (2024-03-01T00:06Z):\n{body}"
    );
    sim.shutdown().await;
}

/// The value of the first sample of `name` in Prometheus text (0 when absent).
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `check` passes when everything answers, and names each failing dependency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_dependency() {
    let sim = start_sim(SimConfig::default()).await;
    let db = TempDb::new();
    let run_check = |api: String, db: String, extra: Vec<(&'static str, String)>| async move {
        let mut cmd = extractor(&api, &db, "binance.extraction");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.arg("check");
        run(cmd).await
    };
    let ok = run_check(sim.base_url(), db.url(), vec![]).await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    for name in ["database", "binance", "nats"] {
        assert!(
            ok.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.contains(" ok ")),
            "{name}: {}",
            ok.stdout
        );
    }

    let nats_down = run_check(
        sim.base_url(),
        db.url(),
        vec![("NATS_URL", format!("nats://127.0.0.1:{}", closed_port()))],
    )
    .await;
    assert_eq!(nats_down.code, 1);
    assert!(
        nats_down
            .stdout
            .lines()
            .any(|l| l.starts_with("nats") && l.contains("FAILED")),
        "{}",
        nats_down.stdout
    );

    let mysql = std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let wrong = mysql.replacen("://root@", "://root:n0t-the-password@", 1);
    let bad_db = run_check(sim.base_url(), wrong, vec![]).await;
    assert_eq!(bad_db.code, 1);
    let line = bad_db
        .stdout
        .lines()
        .find(|l| l.starts_with("database"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("FAILED") && line.contains("refused the login"),
        "{line}"
    );
    assert!(line.contains("database 'test' on 127.0.0.1:3306"), "{line}");
    assert!(!bad_db.stdout.contains("n0t-the-password") && !bad_db.stderr.contains("n0t-the-password"));

    let dead = run_check(format!("http://127.0.0.1:{}", closed_port()), db.url(), vec![]).await;
    assert_eq!(dead.code, 1);
    assert!(
        dead.stdout
            .lines()
            .any(|l| l.starts_with("binance") && l.contains("FAILED")),
        "{}",
        dead.stdout
    );
    sim.shutdown().await;
}

/// A process that met a ban records it; a process started during the ban sends nothing
/// before it ends, then does its work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_waits_out_a_recorded_ban() {
    let sim = start_sim(SimConfig {
        clock: Clock::Fixed(t("2024-03-01T00:07:00Z")),
        weight_limit: WeightLimit::PerWindow(20),
        weight_window: Duration::from_secs(1),
        ban: Duration::from_secs(4),
        ..SimConfig::default()
    })
    .await;
    let db = TempDb::new();
    // Get this IP banned, from the test itself.
    let client = http();
    loop {
        let r = client
            .get(format!("{}/fapi/v1/ping", sim.base_url()))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 418 {
            break;
        }
    }
    let args = [
        "sync",
        "--period",
        "1h",
        "--since",
        "2024-02-20",
        "--symbols",
        "BTCUSDT",
    ];
    // The first process meets the ban, records it, and waits; it is killed while waiting.
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_ENABLED", "false")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = cmd.spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let until = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ban was never recorded"
        );
        if let Some(until) = recorded_ban(&db).await {
            break until;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    let requests = sim.stats().requests;
    let mut cmd = extractor(&sim.base_url(), &db.url(), "binance.extraction");
    cmd.env("NATS_ENABLED", "false").args(args);
    let second = cmd.spawn().unwrap();
    while binance_extractor::clock::system_now_ms() < until - 300 {
        assert_eq!(
            sim.stats().requests,
            requests,
            "the second process sent a request during the ban"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(30), second.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("recorded by an earlier run"), "{stderr}");
    assert_eq!(count_rows(&db.path()).await, 10 * 24);
    sim.shutdown().await;
}

async fn recorded_ban(db: &TempDb) -> Option<i64> {
    if !db.path().exists() {
        return None;
    }
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .ok()?;
    let until = sqlx::query_scalar::<_, i64>("SELECT until_ms FROM exchange_bans WHERE market = 'usdm'")
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
    pool.close().await;
    until
}
