//! The embedded default: SQLite through sqlx.
//!
//! WAL journal (readers never block the writer; a killed process loses nothing committed),
//! multi-row prepared upserts of 500 rows inside one transaction per batch, and the hole
//! query as a window function over the primary key (shared with the other backends). Prices
//! are TEXT holding Binance's exact decimal string. Measured against `sqlite3 .import` of
//! the same rows this path runs at about nine tenths of its speed (docs/BENCHMARKS.md).

use std::{str::FromStr, sync::LazyLock, time::Duration};

use binance_spec::Kline;
use sqlx::{
    Sqlite,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{
    DatabaseUrl, StoreError,
    sql::{self, Dialect, MultiRowUpsert, SharedQueries, Statements},
};
use crate::series::SeriesKey;

static SQL: LazyLock<Statements> = LazyLock::new(|| Statements::new(Dialect::Sqlite));

/// Upserts of 500 rows per statement: 14 parameters each, well under SQLite's 32,766 limit.
/// Rewriting an identical candle touches nothing (the WHERE clause), so `rows_affected`
/// counts only new and corrected candles.
static UPSERT: LazyLock<MultiRowUpsert> =
    LazyLock::new(|| MultiRowUpsert::new(Dialect::Sqlite, std::env::var("BX_STMT").ok().and_then(|v| v.parse().ok()).unwrap_or(500), sql::kline_conflict_clause(Dialect::Sqlite)));

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: SharedQueries<Sqlite>,
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating when absent) the file of `url` and applies the migrations.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let target = url.target();
        let options = SqliteConnectOptions::from_str(url.expose_secret())
            .map_err(|e| StoreError::from_connect(target, e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(60))
            .foreign_keys(false);
        let in_memory = url.expose_secret().contains(":memory:");
        if !in_memory {
            let path = options.get_filename();
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                    target: target.to_string(),
                    detail: format!("cannot create the folder {}: {e}", parent.display()),
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            // Each in-memory connection would be its own database.
            .max_connections(if in_memory { 1 } else { 4 })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::from_connect(target, e))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::migrate(target, e))?;
        Ok(SqliteStore {
            shared: SharedQueries::new(pool, target, &SQL),
            writer: Default::default(),
        })
    }

    /// The reads, the hole query and the ledger.
    pub(super) fn shared(&self) -> &SharedQueries<Sqlite> {
        &self.shared
    }

    pub(super) fn batch_rows(&self) -> usize {
        std::env::var("BX_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000)
    }

    pub(super) async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        let fail = self.shared.fail("writing klines");
        let statements = UPSERT.bind::<Sqlite>(key, rows);
        let _w = self.writer.lock().await;
        let t0 = std::time::Instant::now();
        let _g = scopeguard(t0);
        let mut tx = self.shared.pool.begin().await.map_err(&fail)?;
        let mut changed = 0;
        for statement in statements {
            changed += statement.execute(&mut *tx).await.map_err(&fail)?.rows_affected();
        }
        tx.commit().await.map_err(&fail)?;
        Ok(changed)
    }

    pub(super) async fn close(&self) {
        eprintln!(
            "TIMING write busy {} ms over {} calls",
            BUSY.load(std::sync::atomic::Ordering::Relaxed) / 1000,
            CALLS.load(std::sync::atomic::Ordering::Relaxed)
        );
        self.shared.pool.close().await;
    }
}

static BUSY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
struct G(std::time::Instant);
impl Drop for G {
    fn drop(&mut self) {
        BUSY.fetch_add(
            self.0.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
fn scopeguard(t: std::time::Instant) -> G {
    G(t)
}
