//! The embedded default: SQLite through sqlx.
//!
//! WAL journal (readers never block the writer; a killed process loses nothing committed),
//! multi-row upserts inside one transaction per batch, and the hole query as a window
//! function over the primary key. Prices are TEXT holding Binance's exact decimal string.

use std::{str::FromStr, sync::Arc, time::Duration};

use binance_spec::{Decimal, Kline};
use sqlx::{
    AssertSqlSafe, Row,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};

use super::{DatabaseUrl, GapOutcome, GapState, LedgerEntry, StoreError, outcome_columns};
use crate::series::{SeriesKey, TimeRange};

/// Columns of `klines` in insert order.
const COLUMNS: &str = "market, symbol, \"interval\", open_time, close_time, open, high, low, close, volume, \
     quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume";
/// Rows per INSERT statement: 14 parameters each, well under SQLite's 32,766 limit.
const ROWS_PER_STATEMENT: usize = 500;

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    target: Arc<str>,
    /// The INSERT for a full statement, built once.
    full_insert: Arc<str>,
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
            .map_err(|e| StoreError::Migrate {
                target: target.to_string(),
                detail: e.to_string(),
            })?;
        Ok(SqliteStore {
            pool,
            target: Arc::from(target),
            full_insert: Arc::from(upsert_sql(ROWS_PER_STATEMENT)),
        })
    }

    pub(super) fn batch_rows(&self) -> usize {
        5_000
    }

    pub(super) async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        let fail = |e| StoreError::query(&self.target, "writing klines", e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let mut changed = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = if chunk.len() == ROWS_PER_STATEMENT {
                AssertSqlSafe(self.full_insert.clone())
            } else {
                AssertSqlSafe(Arc::from(upsert_sql(chunk.len())))
            };
            let mut q = sqlx::query(sql);
            for k in chunk {
                q = q
                    .bind(key.market.as_str())
                    .bind(key.symbol.as_str())
                    .bind(key.interval.as_str())
                    .bind(k.open_time)
                    .bind(k.close_time)
                    .bind(k.open.to_string())
                    .bind(k.high.to_string())
                    .bind(k.low.to_string())
                    .bind(k.close.to_string())
                    .bind(k.volume.to_string())
                    .bind(k.quote_volume.to_string())
                    .bind(i64::try_from(k.trades).unwrap_or(i64::MAX))
                    .bind(k.taker_buy_base_volume.to_string())
                    .bind(k.taker_buy_quote_volume.to_string());
            }
            changed += q.execute(&mut *tx).await.map_err(fail)?.rows_affected();
        }
        tx.commit().await.map_err(fail)?;
        Ok(changed)
    }

    pub(super) async fn newest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        self.scalar_time(
            "SELECT MAX(open_time) FROM klines WHERE market = ? AND symbol = ? AND \"interval\" = ?",
            key,
        )
        .await
    }

    pub(super) async fn oldest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        self.scalar_time(
            "SELECT MIN(open_time) FROM klines WHERE market = ? AND symbol = ? AND \"interval\" = ?",
            key,
        )
        .await
    }

    async fn scalar_time(&self, sql: &'static str, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar::<_, Option<i64>>(sql)
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| StoreError::query(&self.target, "reading the newest candle", e))
    }

    pub(super) async fn holes(
        &self,
        key: &SeriesKey,
        within: TimeRange,
    ) -> Result<Vec<TimeRange>, StoreError> {
        let rows = sqlx::query(
            "SELECT open_time, next_open FROM ( \
                 SELECT open_time, LEAD(open_time) OVER (ORDER BY open_time) AS next_open \
                 FROM klines \
                 WHERE market = ? AND symbol = ? AND \"interval\" = ? AND open_time >= ? AND open_time < ? \
             ) WHERE next_open - open_time > ? ORDER BY open_time",
        )
        .bind(key.market.as_str())
        .bind(key.symbol.as_str())
        .bind(key.interval.as_str())
        .bind(within.start)
        .bind(within.end)
        .bind(key.interval.max_step_ms())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query(&self.target, "finding holes", e))?;
        Ok(rows
            .iter()
            .map(|r| TimeRange::new(r.get::<i64, _>(0) + 1, r.get::<i64, _>(1)))
            .collect())
    }

    pub(super) async fn klines(&self, key: &SeriesKey, range: TimeRange) -> Result<Vec<Kline>, StoreError> {
        let rows = sqlx::query(
            "SELECT open_time, open, high, low, close, volume, close_time, quote_volume, trades, \
                    taker_buy_base_volume, taker_buy_quote_volume \
             FROM klines WHERE market = ? AND symbol = ? AND \"interval\" = ? AND open_time >= ? AND open_time < ? \
             ORDER BY open_time",
        )
        .bind(key.market.as_str())
        .bind(key.symbol.as_str())
        .bind(key.interval.as_str())
        .bind(range.start)
        .bind(range.end)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query(&self.target, "reading klines", e))?;
        rows.iter()
            .map(|r| {
                let dec = |i: usize| -> Result<Decimal, StoreError> {
                    let text: String = r.get(i);
                    Decimal::from_str_exact(&text).map_err(|e| StoreError::Corrupt {
                        target: self.target.to_string(),
                        what: "klines",
                        detail: format!("'{text}': {e}"),
                    })
                };
                Ok(Kline {
                    open_time: r.get(0),
                    open: dec(1)?,
                    high: dec(2)?,
                    low: dec(3)?,
                    close: dec(4)?,
                    volume: dec(5)?,
                    close_time: r.get(6),
                    quote_volume: dec(7)?,
                    trades: u64::try_from(r.get::<i64, _>(8)).unwrap_or(0),
                    taker_buy_base_volume: dec(9)?,
                    taker_buy_quote_volume: dec(10)?,
                    ignore: Decimal::ZERO,
                })
            })
            .collect()
    }

    pub(super) async fn count(&self, key: &SeriesKey) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM klines WHERE market = ? AND symbol = ? AND \"interval\" = ?",
        )
        .bind(key.market.as_str())
        .bind(key.symbol.as_str())
        .bind(key.interval.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::query(&self.target, "counting klines", e))?;
        Ok(n as u64)
    }

    pub(super) async fn ledger(&self, key: &SeriesKey) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT gap_start, gap_end, state, first_seen, last_attempt, attempts, rows_filled \
             FROM gap_ledger WHERE market = ? AND symbol = ? AND \"interval\" = ? ORDER BY gap_start, gap_end",
        )
        .bind(key.market.as_str())
        .bind(key.symbol.as_str())
        .bind(key.interval.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| StoreError::query(&self.target, "reading the gap ledger", e))?;
        rows.iter()
            .map(|r| {
                let state: String = r.get(2);
                Ok(LedgerEntry {
                    range: TimeRange::new(r.get(0), r.get(1)),
                    state: GapState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                        target: self.target.to_string(),
                        what: "gap_ledger.state",
                        detail: state.clone(),
                    })?,
                    first_seen: r.get(3),
                    last_attempt: r.get(4),
                    attempts: u32::try_from(r.get::<i64, _>(5)).unwrap_or(0),
                    rows_filled: u64::try_from(r.get::<i64, _>(6)).unwrap_or(0),
                })
            })
            .collect()
    }

    pub(super) async fn record_gap(
        &self,
        key: &SeriesKey,
        range: TimeRange,
        outcome: GapOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (state, attempts, rows) = outcome_columns(outcome);
        let attempted = attempts > 0;
        sqlx::query(
            "INSERT INTO gap_ledger (market, symbol, \"interval\", gap_start, gap_end, state, first_seen, last_attempt, attempts, rows_filled) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (market, symbol, \"interval\", gap_start, gap_end) DO UPDATE SET \
                 state = CASE WHEN excluded.attempts = 0 AND gap_ledger.state = 'exchange_empty' \
                              THEN gap_ledger.state ELSE excluded.state END, \
                 last_attempt = COALESCE(excluded.last_attempt, gap_ledger.last_attempt), \
                 attempts = gap_ledger.attempts + excluded.attempts, \
                 rows_filled = gap_ledger.rows_filled + excluded.rows_filled",
        )
        .bind(key.market.as_str())
        .bind(key.symbol.as_str())
        .bind(key.interval.as_str())
        .bind(range.start)
        .bind(range.end)
        .bind(state.as_str())
        .bind(now_ms)
        .bind(attempted.then_some(now_ms))
        .bind(i64::from(attempts))
        .bind(rows as i64)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::query(&self.target, "recording a gap", e))?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

/// A multi-row upsert of `rows` rows. Rewriting an identical candle touches nothing (the
/// WHERE clause), so `rows_affected` counts only new and corrected candles.
fn upsert_sql(rows: usize) -> String {
    let tuple = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    let mut sql = String::with_capacity(400 + rows * (tuple.len() + 1));
    sql.push_str("INSERT INTO klines (");
    sql.push_str(COLUMNS);
    sql.push_str(") VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(tuple);
    }
    sql.push_str(
        " ON CONFLICT (market, symbol, \"interval\", open_time) DO UPDATE SET \
         close_time = excluded.close_time, open = excluded.open, high = excluded.high, low = excluded.low, \
         close = excluded.close, volume = excluded.volume, quote_volume = excluded.quote_volume, \
         trades = excluded.trades, taker_buy_base_volume = excluded.taker_buy_base_volume, \
         taker_buy_quote_volume = excluded.taker_buy_quote_volume \
         WHERE klines.close_time IS NOT excluded.close_time OR klines.open IS NOT excluded.open \
            OR klines.high IS NOT excluded.high OR klines.low IS NOT excluded.low \
            OR klines.close IS NOT excluded.close OR klines.volume IS NOT excluded.volume \
            OR klines.quote_volume IS NOT excluded.quote_volume OR klines.trades IS NOT excluded.trades \
            OR klines.taker_buy_base_volume IS NOT excluded.taker_buy_base_volume \
            OR klines.taker_buy_quote_volume IS NOT excluded.taker_buy_quote_volume",
    );
    sql
}
