//! Shared by the end-to-end tests: a simulator on an ephemeral port, the real NATS server,
//! the binary run as a user would run it, and readers of what it stored and announced.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use binance_sim::{SimConfig, SimHandle};
use binance_spec::{Interval, Kline, Market};
use futures_util::StreamExt;
use serde_json::Value;
use sqlx::Row;

/// The NATS server the tests talk to.
pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A subject prefix no other test uses.
pub fn unique_prefix(test: &str) -> String {
    format!(
        "t{}{}.binance.extraction",
        test.replace(['-', '_', '.'], ""),
        fastrand::u64(..)
    )
}

/// Starts a simulator with `config`.
pub async fn start_sim(config: SimConfig) -> SimHandle {
    binance_sim::spawn(config).await.expect("simulator starts")
}

/// A temporary folder with a SQLite database URL in it.
pub struct TempDb {
    pub dir: tempfile::TempDir,
}

impl TempDb {
    pub fn new() -> Self {
        TempDb {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("klines.db")
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }
}

/// The binary with a clean environment pointing at `api` and `db`.
pub fn extractor(api: &str, db: &str, prefix: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_binance-extractor"));
    for var in [
        "DATABASE_URL",
        "BINANCE_MARKET",
        "BINANCE_API_URL",
        "BINANCE_MAX_WEIGHT",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "RUST_LOG",
        "NATS_URL",
        "NATS_ENABLED",
        "NATS_SUBJECT_PREFIX",
        "DEFAULT_SYMBOLS",
        "DEFAULT_START_DATE",
        "MAX_WORKERS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DATABASE_URL", db)
        .env("BINANCE_API_URL", api)
        .env("NATS_URL", nats_url())
        .env("NATS_SUBJECT_PREFIX", prefix)
        .env("NATS_FLUSH_TIMEOUT_SECS", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to the end (two minutes at most).
pub async fn run(mut cmd: tokio::process::Command) -> Output {
    let child = cmd.spawn().expect("binary starts");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the run ends within two minutes")
        .expect("output readable");
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if std::env::var_os("TEST_SHOW_OUTPUT").is_some() {
        eprintln!(
            "--- exit {}\n--- stdout\n{}\n--- stderr\n{}",
            o.code, o.stdout, o.stderr
        );
    }
    o
}

/// A subscriber on the real NATS server, listening before the run starts.
pub struct Subscriber {
    _client: async_nats::Client,
    sub: async_nats::Subscriber,
}

/// One received event.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    pub body: Value,
    pub headers: BTreeMap<String, String>,
}

impl Subscriber {
    /// Subscribes to `{prefix}.>`.
    pub async fn new(prefix: &str) -> Self {
        let client = async_nats::connect(nats_url())
            .await
            .expect("the test NATS server is reachable");
        let sub = client.subscribe(format!("{prefix}.>")).await.expect("subscribe");
        client.flush().await.expect("flush");
        Subscriber { _client: client, sub }
    }

    /// Receives until a batch message arrives, then whatever follows within a short grace
    /// period (nothing should), or until `timeout`.
    pub async fn until_batch(&mut self, timeout: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, self.sub.next()).await {
            let event = to_event(msg);
            let batch = event.body["event_type"] == "batch_extraction_completed";
            events.push(event);
            if batch {
                events.extend(self.drain(Duration::from_millis(300)).await);
                break;
            }
        }
        events
    }

    /// The next event, if one arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        match tokio::time::timeout(timeout, self.sub.next()).await {
            Ok(Some(msg)) => Some(to_event(msg)),
            _ => None,
        }
    }

    /// Whatever arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, self.sub.next()).await {
            events.push(to_event(msg));
        }
        events
    }
}

fn to_event(msg: async_nats::Message) -> Event {
    let headers = msg
        .headers
        .as_ref()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(","),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Event {
        subject: msg.subject.to_string(),
        body: serde_json::from_slice(&msg.payload).expect("every message is JSON"),
        headers,
    }
}

/// The contract every message must satisfy.
pub fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/extraction-events.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("schema JSON");
    jsonschema::draft202012::new(&schema).expect("valid schema")
}

/// Asserts that every event validates against the contract.
pub fn assert_schema_valid(events: &[Event]) {
    let validator = schema();
    for e in events {
        let errors: Vec<String> = validator
            .iter_errors(&e.body)
            .map(|err| err.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not validate: {errors:?}\n{}",
            e.subject,
            e.body
        );
    }
}

/// A stored row as text, exactly as the database holds it.
pub type TextRow = [String; 13];

/// Every stored row of a series, as text, ascending.
pub async fn stored_rows(db_path: &Path, market: Market, symbol: &str, interval: Interval) -> Vec<TextRow> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("open the database");
    let rows = sqlx::query(
        "SELECT open_time, open, high, low, close, volume, close_time, quote_volume, trades, \
                taker_buy_base_volume, taker_buy_quote_volume, typeof(open), typeof(volume) \
         FROM klines WHERE market = ? AND symbol = ? AND \"interval\" = ? ORDER BY open_time",
    )
    .bind(market.as_str())
    .bind(symbol)
    .bind(interval.as_str())
    .fetch_all(&pool)
    .await
    .expect("read klines");
    pool.close().await;
    rows.iter()
        .map(|r| {
            // Prices must be stored as text, never as floating point.
            assert_eq!(r.get::<String, _>(11), "text");
            assert_eq!(r.get::<String, _>(12), "text");
            [
                r.get::<i64, _>(0).to_string(),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get::<i64, _>(6).to_string(),
                r.get(7),
                r.get::<i64, _>(8).to_string(),
                r.get(9),
                r.get(10),
                String::new(),
                String::new(),
            ]
        })
        .collect()
}

/// The same text for klines the simulator serves.
pub fn as_text(klines: &[Kline]) -> Vec<TextRow> {
    klines
        .iter()
        .map(|k| {
            [
                k.open_time.to_string(),
                k.open.to_string(),
                k.high.to_string(),
                k.low.to_string(),
                k.close.to_string(),
                k.volume.to_string(),
                k.close_time.to_string(),
                k.quote_volume.to_string(),
                k.trades.to_string(),
                k.taker_buy_base_volume.to_string(),
                k.taker_buy_quote_volume.to_string(),
                String::new(),
                String::new(),
            ]
        })
        .collect()
}

/// Closed klines the simulator serves for open times in `[start, end)`.
pub fn served(
    sim: &SimHandle,
    market: Market,
    symbol: &str,
    interval: Interval,
    start: i64,
    end: i64,
) -> Vec<Kline> {
    let now = sim.dataset().now_ms();
    sim.dataset()
        .klines(market, symbol, interval, start, end - 1)
        .into_iter()
        .filter(|k| k.close_time < now)
        .collect()
}

/// Counts rows per (symbol) in the database.
pub async fn count_rows(db_path: &Path) -> i64 {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("open the database");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM klines")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

/// A whole-table dump (klines then ledger states), for "nothing changed" comparisons.
pub async fn dump(db_path: &Path) -> String {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("open the database");
    let rows = sqlx::query(
        "SELECT market || '|' || symbol || '|' || \"interval\" || '|' || open_time || '|' || close_time || '|' || open \
         || '|' || high || '|' || low || '|' || close || '|' || volume || '|' || quote_volume || '|' || trades \
         || '|' || taker_buy_base_volume || '|' || taker_buy_quote_volume FROM klines \
         ORDER BY market, symbol, \"interval\", open_time",
    )
    .fetch_all(&pool)
    .await
    .expect("dump");
    pool.close().await;
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Epoch ms of a date or RFC 3339 time.
pub fn t(s: &str) -> i64 {
    binance_spec::time::parse_timestamp(s).expect("valid time")
}
