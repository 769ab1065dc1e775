//! The embedded default: SQLite through sqlx.
//!
//! WAL journal (readers never block the writer; a killed process loses nothing committed),
//! multi-row prepared upserts of 1,000 rows inside one transaction per batch, and the hole
//! query as a window function over the primary key (shared with the other backends). Prices
//! are TEXT holding Binance's exact decimal string. Measured against `sqlite3 .import` of
//! the same rows this path runs at about nine tenths of its speed (docs/BENCHMARKS.md).
//!
//! SQLite has one writer at a time, so writes take turns in the process ([`SqliteStore`]'s
//! writer lock) rather than in SQLite's busy handler, which sleeps in growing steps while
//! the file is locked and leaves it idle when the writer finishes early. Each write binds
//! its first statement before its turn, and every later statement while the previous one
//! runs, so the writer's turn is spent in SQLite. SQLite is then the bound of an extraction
//! into it: docs/BENCHMARKS.md ("End to end").

use std::{
    str::FromStr,
    sync::{Arc, LazyLock},
    time::Duration,
};

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

/// Upserts of 1,000 rows per statement: 14,000 parameters, under SQLite's 32,766 limit.
/// (End to end, 1,000 and 2,000 rows ran ~8 % faster than 500 — fewer round trips to the
/// connection's thread — and 2,000 held more memory.) Rewriting an identical candle touches
/// nothing (the WHERE clause), so `rows_affected` counts only new and corrected candles.
static UPSERT: LazyLock<MultiRowUpsert> = LazyLock::new(|| {
    MultiRowUpsert::new(
        Dialect::Sqlite,
        1_000,
        sql::kline_conflict_clause(Dialect::Sqlite),
    )
});

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: SharedQueries<Sqlite>,
    /// Held for the whole of a write transaction: writers queue here, in order, instead of
    /// in SQLite's sleeping busy handler.
    writer: Arc<tokio::sync::Mutex<()>>,
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
        5_000
    }

    pub(super) async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        let fail = self.shared.fail("writing klines");
        let write = UPSERT.start::<Sqlite>(key, rows);
        let _turn = self.writer.lock().await;
        let mut tx = self.shared.pool.begin().await.map_err(&fail)?;
        let changed = write.execute(&mut tx).await.map_err(&fail)?.rows_affected();
        tx.commit().await.map_err(&fail)?;
        Ok(changed)
    }

    pub(super) async fn close(&self) {
        self.shared.pool.close().await;
    }
}
