//! Shared by the end-to-end tests: a simulator on an ephemeral port, the real NATS server,
//! the binary run as a user would run it, and readers of what it stored and announced.
//!
//! Databases: [`TestDb`] is a fresh database of any backend — a SQLite file, or a new
//! database on the PostgreSQL (`TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) or MySQL/MariaDB (`TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`) test server, dropped afterwards; [`on_each_backend!`]
//! turns one scenario into three tests. [`TempDb`] and the path-taking readers are the older,
//! SQLite-only helpers.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

pub use binance_extractor::store::Backend;
use binance_extractor::store::{DatabaseUrl, scratch::ScratchDatabase};
use binance_sim::{SimConfig, SimHandle};
use binance_spec::{Decimal, Interval, Kline, Market};
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

/// The PostgreSQL server the tests make their databases on.
pub fn postgres_server() -> DatabaseUrl {
    env_url("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// The MySQL/MariaDB server the tests make their databases on.
pub fn mysql_server() -> DatabaseUrl {
    env_url("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

fn env_url(var: &str, default: &str) -> DatabaseUrl {
    let raw = std::env::var(var).unwrap_or_else(|_| default.to_string());
    raw.parse().unwrap_or_else(|e| panic!("{var}: {e}"))
}

/// Defines, for each named `async fn(Backend)`, a module of three tests — `sqlite`, `postgres`
/// and `mysql` — that run it with that backend (so a failure names its backend, and the
/// three run in parallel).
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::common::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$name(Backend::MySql).await
            }
        }
    )*};
}

/// A fresh, empty database of one backend, for one test: a file in a temporary folder for
/// SQLite (not created until the binary creates it), a new `bx_<random>` database on the
/// test server for PostgreSQL and MySQL — dropped when this value is, also when the test
/// panics. A server that cannot be reached fails the test: nothing is skipped.
///
/// Reads what the binary stored with SQL of the test's own, in each backend's dialect.
pub struct TestDb {
    backend: Backend,
    url: DatabaseUrl,
    /// SQLite: the folder holding the file.
    dir: Option<tempfile::TempDir>,
    /// PostgreSQL/MySQL: the database to drop.
    scratch: Option<ScratchDatabase>,
}

/// A gap ledger row: symbol, gap_start, gap_end, state, attempts.
pub type LedgerRow = (String, i64, i64, String, i64);

impl TestDb {
    /// A fresh database of `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = sqlite_url(&dir.path().join("klines.db"));
                TestDb {
                    backend,
                    url,
                    dir: Some(dir),
                    scratch: None,
                }
            }
            Backend::Postgres | Backend::MySql => {
                let server = match backend {
                    Backend::Postgres => postgres_server(),
                    _ => mysql_server(),
                };
                let scratch = ScratchDatabase::create(&server).await.unwrap_or_else(|e| {
                    panic!(
                        "the {} test server ({server}) must be reachable: {e}",
                        backend.as_str()
                    )
                });
                TestDb {
                    backend,
                    url: scratch.url().clone(),
                    dir: None,
                    scratch: Some(scratch),
                }
            }
        }
    }

    /// Which engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `DATABASE_URL` to hand to the binary.
    pub fn url(&self) -> String {
        self.url.expose_secret().to_string()
    }

    /// The SQLite file (SQLite only).
    pub fn path(&self) -> PathBuf {
        assert_eq!(self.backend, Backend::Sqlite, "only SQLite has a file");
        PathBuf::from(self.url.database_name())
    }

    /// Every stored row of a series, as text, ascending (decimals as the database renders
    /// them: byte for byte what was written on SQLite and PostgreSQL, DECIMAL(38,12) on MySQL;
    /// compare with [`TestDb::assert_rows`]).
    pub async fn stored_rows(&self, market: Market, symbol: &str, interval: Interval) -> Vec<TextRow> {
        read_rows(&self.url, market, symbol, interval).await
    }

    /// Asserts that `got` (read from this database) holds the rows `want` (from [`as_text`]):
    /// byte for byte on SQLite and PostgreSQL, the same numbers on MySQL (whose DECIMAL(38,12)
    /// pads with zeros). Reports the first differing row, not megabytes of text.
    pub fn assert_rows(&self, got: &[TextRow], want: &[TextRow], what: &str) {
        assert_same_rows(self.backend, got, want, what)
    }

    /// Reads the series and asserts it holds exactly `want`.
    pub async fn assert_stored(
        &self,
        market: Market,
        symbol: &str,
        interval: Interval,
        want: &[TextRow],
        what: &str,
    ) {
        let got = self.stored_rows(market, symbol, interval).await;
        self.assert_rows(&got, want, what);
    }

    /// How many klines are stored.
    pub async fn count(&self) -> i64 {
        count_klines(&self.url).await.expect("count klines")
    }

    /// How many klines are stored, or 0 when there is no database or table to count in.
    pub async fn try_count(&self) -> i64 {
        count_klines(&self.url).await.unwrap_or(0)
    }

    /// A whole-table dump of the klines, for "nothing changed" comparisons on this database.
    pub async fn dump(&self) -> String {
        dump_klines(&self.url).await
    }

    /// Runs statements of the test's own (deletions).
    pub async fn execute(&self, sql: &str) {
        execute(&self.url, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The gap ledger: (symbol, gap_start, gap_end, state, attempts), by symbol and start.
    pub async fn ledger(&self) -> Vec<LedgerRow> {
        let t = |c: &str| text_sql(self.backend, c);
        let sql = format!(
            "SELECT {}, {}, {}, {}, {} FROM gap_ledger ORDER BY symbol, gap_start",
            t("symbol"),
            t("gap_start"),
            t("gap_end"),
            t("state"),
            t("attempts")
        );
        let int = |s: &str| s.parse::<i64>().unwrap_or_else(|e| panic!("{s}: {e}"));
        query_strings(&self.url, sql)
            .await
            .expect("read the gap ledger")
            .into_iter()
            .map(|r| (r[0].clone(), int(&r[1]), int(&r[2]), r[3].clone(), int(&r[4])))
            .collect()
    }

    /// Whether nothing was created: no SQLite file, or not one table in the server's database.
    pub async fn created_nothing(&self) -> bool {
        let sql = match self.backend {
            Backend::Sqlite => return !self.path().exists(),
            Backend::Postgres => {
                "SELECT COUNT(*)::text FROM information_schema.tables WHERE table_schema = 'public'"
            }
            Backend::MySql => {
                "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.tables \
                 WHERE table_schema = DATABASE()"
            }
        };
        let rows = query_strings(&self.url, sql.to_string())
            .await
            .expect("list the tables");
        rows[0][0] == "0"
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(scratch) = self.scratch.take() else {
            return;
        };
        // Drop runs outside any async context we could await in (and also while a failed
        // test unwinds): drop the database from a thread of its own, and wait for it.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(scratch.drop_database())
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the dropping thread panicked".into()));
        if let Err(e) = dropped {
            if std::thread::panicking() {
                eprintln!("could not drop the test database: {e}");
            } else {
                panic!("could not drop the test database: {e}");
            }
        }
    }
}

/// A stored row as text, exactly as the database holds it.
pub type TextRow = [String; 13];

/// The columns of a [`TextRow`] that hold decimals.
const DECIMAL_COLUMNS: [usize; 8] = [1, 2, 3, 4, 5, 7, 9, 10];

/// Every stored row of a series in a SQLite file, as text, ascending.
pub async fn stored_rows(db_path: &Path, market: Market, symbol: &str, interval: Interval) -> Vec<TextRow> {
    read_rows(&sqlite_url(db_path), market, symbol, interval).await
}

/// The URL of a SQLite file.
fn sqlite_url(path: &Path) -> DatabaseUrl {
    format!("sqlite://{}", path.display())
        .parse()
        .expect("a SQLite URL")
}

/// `expr` rendered as text by the database itself.
fn text_sql(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Sqlite => format!("CAST({expr} AS TEXT)"),
        Backend::Postgres => format!("({expr})::text"),
        Backend::MySql => format!("CAST({expr} AS CHAR)"),
    }
}

/// The `interval` column, quoted for the dialect (a reserved word in MySQL).
pub fn interval_column(backend: Backend) -> &'static str {
    match backend {
        Backend::MySql => "`interval`",
        Backend::Sqlite | Backend::Postgres => "\"interval\"",
    }
}

async fn read_rows(url: &DatabaseUrl, market: Market, symbol: &str, interval: Interval) -> Vec<TextRow> {
    let backend = url.backend();
    let columns = [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
        "trades",
        "taker_buy_base_volume",
        "taker_buy_quote_volume",
    ]
    .map(|c| text_sql(backend, c))
    .join(", ");
    // How the prices are stored: text on SQLite, numeric on PostgreSQL, never floating point.
    // (MySQL has no per-value type; its columns are DECIMAL(38,12).)
    let (types, want_type) = match backend {
        Backend::Sqlite => ("typeof(open), typeof(volume)", "text"),
        Backend::Postgres => ("pg_typeof(open)::text, pg_typeof(volume)::text", "numeric"),
        Backend::MySql => ("'-', '-'", "-"),
    };
    let sql = format!(
        "SELECT {columns}, {types} FROM klines WHERE market = '{}' AND symbol = '{symbol}' AND {} = '{}' \
         ORDER BY open_time",
        market.as_str(),
        interval_column(backend),
        interval.as_str()
    );
    assert!(symbol.chars().all(|c| c.is_ascii_alphanumeric()), "{symbol}");
    query_strings(url, sql)
        .await
        .expect("read klines")
        .into_iter()
        .map(|r| {
            assert_eq!(r[11], want_type, "open is stored as {want_type}");
            assert_eq!(r[12], want_type, "volume is stored as {want_type}");
            let mut row: TextRow = Default::default();
            for (i, v) in r.into_iter().take(11).enumerate() {
                row[i] = v;
            }
            row
        })
        .collect()
}

/// Asserts that `got` holds the rows `want` as `backend` stores them: byte for byte on SQLite
/// and PostgreSQL, the same numbers on MySQL (both sides parsed as exact decimals, whose
/// equality ignores trailing zeros). Reports the first differing row.
pub fn assert_same_rows(backend: Backend, got: &[TextRow], want: &[TextRow], what: &str) {
    let (got, want) = (comparable(backend, got), comparable(backend, want));
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{what} ({}): {} rows stored, {} expected; first difference at row {i}:\n got  {:?}\n want {:?}",
            backend.as_str(),
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

fn comparable(backend: Backend, rows: &[TextRow]) -> Vec<TextRow> {
    let mut rows = rows.to_vec();
    if backend == Backend::MySql {
        for row in &mut rows {
            for i in DECIMAL_COLUMNS {
                let d = Decimal::from_str_exact(&row[i]).unwrap_or_else(|e| panic!("{}: {e}", row[i]));
                row[i] = d.normalize().to_string();
            }
        }
    }
    rows
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

/// Counts the rows in a SQLite file.
pub async fn count_rows(db_path: &Path) -> i64 {
    count_klines(&sqlite_url(db_path)).await.expect("count")
}

async fn count_klines(url: &DatabaseUrl) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT {} FROM klines", text_sql(url.backend(), "COUNT(*)"));
    let rows = query_strings(url, sql).await?;
    Ok(rows[0][0].parse().expect("a count"))
}

/// A whole-table dump of a SQLite file, for "nothing changed" comparisons.
pub async fn dump(db_path: &Path) -> String {
    dump_klines(&sqlite_url(db_path)).await
}

/// Every kline, one `|`-separated line each, in key order, as the database renders it.
async fn dump_klines(url: &DatabaseUrl) -> String {
    let backend = url.backend();
    let interval = interval_column(backend);
    let columns = [
        "market",
        "symbol",
        interval,
        "open_time",
        "close_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trades",
        "taker_buy_base_volume",
        "taker_buy_quote_volume",
    ];
    let line = match backend {
        Backend::Sqlite => columns.join(" || '|' || "),
        Backend::Postgres => format!("concat_ws('|', {})", columns.join(", ")),
        Backend::MySql => format!("CAST(CONCAT_WS('|', {}) AS CHAR)", columns.join(", ")),
    };
    let sql = format!("SELECT {line} FROM klines ORDER BY market, symbol, {interval}, open_time");
    query_strings(url, sql)
        .await
        .expect("dump")
        .into_iter()
        .map(|mut r| r.swap_remove(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `$body` with `$c` a fresh connection to `$url`, whichever backend it is, then closes it.
macro_rules! with_connection {
    ($url:expr, $c:ident => $body:expr) => {{
        use sqlx::Connection as _;
        let url: &DatabaseUrl = $url;
        match url.backend() {
            Backend::Sqlite => {
                let mut $c = sqlx::SqliteConnection::connect(url.expose_secret()).await?;
                let result = $body;
                $c.close().await?;
                result
            }
            Backend::Postgres => {
                let mut $c = sqlx::PgConnection::connect(url.expose_secret()).await?;
                let result = $body;
                $c.close().await?;
                result
            }
            Backend::MySql => {
                let mut $c = sqlx::MySqlConnection::connect(url.expose_secret()).await?;
                let result = $body;
                $c.close().await?;
                result
            }
        }
    }};
}

/// Runs a query whose columns are all text, returning its rows.
async fn query_strings(url: &DatabaseUrl, sql: String) -> Result<Vec<Vec<String>>, sqlx::Error> {
    fn texts<R: Row>(rows: Vec<R>) -> Vec<Vec<String>>
    where
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        rows.iter()
            .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
            .collect()
    }
    let sql = sqlx::AssertSqlSafe(sql);
    Ok(with_connection!(url, c => texts(sqlx::query(sql).fetch_all(&mut c).await?)))
}

/// Runs statements that return nothing of interest.
async fn execute(url: &DatabaseUrl, sql: &str) -> Result<(), sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    with_connection!(url, c => {
        sqlx::raw_sql(sql).execute(&mut c).await?;
    });
    Ok(())
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
