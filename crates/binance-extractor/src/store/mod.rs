//! The store: where klines go, and the ledger of holes.
//!
//! One behaviour on three databases, chosen by the scheme of `DATABASE_URL`
//! ([`DatabaseUrl`]): embedded SQLite (the default), PostgreSQL and MySQL/MariaDB. Each
//! backend lives in its own file with its bulk write path and applies its migrations
//! (`migrations/{sqlite,postgres,mysql}`) on connect:
//!
//! - [`sqlite`]: multi-row prepared upserts in one transaction per batch;
//! - [`postgres`]: `COPY` straight into `klines`, or into a staging table then one upsert;
//! - [`mysql`]: multi-row prepared `INSERT … ON DUPLICATE KEY UPDATE`.
//!
//! What is the same everywhere is written once: `sql` holds the shared statements (rendered
//! per SQL dialect), the reads, the hole query and the ledger; `server` the first connection
//! (bounded wait, exact errors) of the two servers; [`scratch`] makes throwaway databases for
//! tests and benchmarks. The conformance suite (`tests/store_conformance.rs`) runs the same
//! tests on all three.
//!
//! The public schema (documented in the README, because people query it):
//!
//! - `klines`: one row per (market, symbol, interval, open_time); prices and volumes exact
//!   (TEXT holding Binance's decimal string on SQLite, NUMERIC on PostgreSQL, DECIMAL(38,12)
//!   on MySQL), times in epoch milliseconds. Writes are idempotent upserts: re-writing a
//!   candle changes nothing, a candle Binance corrected replaces the stored one.
//! - `gap_ledger`: every hole found, with its range, when first seen, attempts and state
//!   ([`GapState`]).
//! - `klines_python` and one view per interval named like the Python extractor's tables
//!   (`klines_m1`, `klines_m15`, `klines_h1`, `klines_d1`, …): USD-M klines under the Python
//!   column names, read-only, for people migrating from it.
//!
//! Holes and the newest candle are computed by the database (window functions over the
//! primary key), never by loading a symbol's rows into the program.

mod error;
pub mod mysql;
pub mod postgres;
pub mod scratch;
mod server;
mod sql;
pub mod sqlite;
mod url;

use std::borrow::Cow;

use binance_spec::Kline;

pub use error::StoreError;
pub use url::{Backend, DatabaseUrl, DatabaseUrlError};

use crate::series::{SeriesKey, TimeRange};

/// What the gap ledger knows about a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapState {
    /// Found, not (yet) fetched successfully.
    Open,
    /// Fetched: Binance had candles for it and they are stored.
    Filled,
    /// Fetched: Binance has nothing for it (an outage, a delisted period). Refetching it
    /// returns nothing forever, so later runs skip it unless asked to `--recheck`.
    ExchangeEmpty,
}

impl GapState {
    /// The value stored in `gap_ledger.state`.
    pub const fn as_str(self) -> &'static str {
        match self {
            GapState::Open => "open",
            GapState::Filled => "filled",
            GapState::ExchangeEmpty => "exchange_empty",
        }
    }

    /// Reads a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(GapState::Open),
            "filled" => Some(GapState::Filled),
            "exchange_empty" => Some(GapState::ExchangeEmpty),
            _ => None,
        }
    }
}

/// One hole in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The missing open times: from just after the stored candle before the hole (inclusive)
    /// to the stored candle after it (exclusive).
    pub range: TimeRange,
    pub state: GapState,
    /// When this hole was first found (epoch ms).
    pub first_seen: i64,
    /// When it was last fetched (epoch ms), if ever.
    pub last_attempt: Option<i64>,
    /// How many times it was fetched.
    pub attempts: u32,
    /// Rows the fetches stored.
    pub rows_filled: u64,
}

/// What a run learnt about a hole, to record in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapOutcome {
    /// Found but not fetched.
    Seen,
    /// Fetched; Binance returned `rows` candles for it.
    Filled { rows: u64 },
    /// Fetched; Binance returned nothing.
    ExchangeEmpty,
}

/// An event as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Stable id, sent as `Nats-Msg-Id`.
    pub id: String,
    pub subject: String,
    /// A symbol, or "batch".
    pub label: String,
    /// The JSON body.
    pub payload: String,
    /// When it was recorded (epoch ms).
    pub created_at: i64,
}

/// The connected store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
    MySql(mysql::MySqlStore),
}

/// Runs `$body` with `$s` bound to whichever backend this is.
macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
            Store::Postgres($s) => $body,
            Store::MySql($s) => $body,
        }
    };
}

impl Store {
    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &DatabaseUrl) -> Result<Store, StoreError> {
        Ok(match url.backend() {
            Backend::Sqlite => Store::Sqlite(sqlite::SqliteStore::connect(url).await?),
            Backend::Postgres => Store::Postgres(postgres::PostgresStore::connect(url).await?),
            Backend::MySql => Store::MySql(mysql::MySqlStore::connect(url).await?),
        })
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
            Store::MySql(_) => Backend::MySql,
        }
    }

    /// Rows per write that suit this backend's bulk path.
    pub fn batch_rows(&self) -> usize {
        dispatch!(self, s => s.batch_rows())
    }

    /// Upserts `rows` of one series in one transaction (all or nothing). Returns how many
    /// rows were inserted or changed (re-writing identical rows returns 0). When `rows` holds
    /// the same open time twice, the later row is the one stored.
    pub async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let rows = distinct_open_times(rows);
        dispatch!(self, s => s.write_klines(key, &rows).await)
    }

    /// Open time of the newest stored candle of the series.
    pub async fn newest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.shared().newest_open_time(key).await)
    }

    /// Open time of the oldest stored candle of the series.
    pub async fn oldest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.shared().oldest_open_time(key).await)
    }

    /// Holes between stored candles whose open times lie in `within`: each is the range from
    /// just after a stored candle to the next stored candle, where those two are further
    /// apart than one interval (calendar month for `1M`). Ascending.
    pub async fn holes(&self, key: &SeriesKey, within: TimeRange) -> Result<Vec<TimeRange>, StoreError> {
        if within.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, s => s.shared().holes(key, within).await)
    }

    /// Stored candles with open times in `range`, ascending.
    pub async fn klines(&self, key: &SeriesKey, range: TimeRange) -> Result<Vec<Kline>, StoreError> {
        dispatch!(self, s => s.shared().klines(key, range).await)
    }

    /// Number of stored candles of the series.
    pub async fn count(&self, key: &SeriesKey) -> Result<u64, StoreError> {
        dispatch!(self, s => s.shared().count(key).await)
    }

    /// The ledger of the series, ascending by range.
    pub async fn ledger(&self, key: &SeriesKey) -> Result<Vec<LedgerEntry>, StoreError> {
        dispatch!(self, s => s.shared().ledger(key).await)
    }

    /// Records what a run learnt about the hole `range` at `now_ms`.
    pub async fn record_gap(
        &self,
        key: &SeriesKey,
        range: TimeRange,
        outcome: GapOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.shared().record_gap(key, range, outcome, now_ms).await)
    }

    /// Records an event before it is published.
    pub async fn outbox_insert(&self, row: &OutboxRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.shared().outbox_insert(row).await)
    }

    /// Marks an event delivered (NATS confirmed it).
    pub async fn outbox_mark_delivered(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.shared().outbox_mark_delivered(id, at_ms).await)
    }

    /// Up to `limit` undelivered events, oldest first.
    pub async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, s => s.shared().outbox_pending(limit).await)
    }

    /// How many events are undelivered, and when the oldest was recorded.
    pub async fn outbox_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        dispatch!(self, s => s.shared().outbox_backlog().await)
    }

    /// When the ban (or pause) Binance imposed on `market` ends, if one was recorded.
    pub async fn ban_until(&self, market: binance_spec::Market) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.shared().ban_until(market).await)
    }

    /// Records that Binance made every request to `market` wait until `until_ms` (a later
    /// record never shortens an earlier one).
    pub async fn record_ban(
        &self,
        market: binance_spec::Market,
        until_ms: i64,
        status: u16,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.shared().record_ban(market, until_ms, status, now_ms).await)
    }

    /// Closes the connections, waiting for writes in flight.
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

/// `rows` ordered by open time with one row per open time (the later one wins), borrowed
/// unchanged when it already is — as Binance's pages are. PostgreSQL refuses to upsert one
/// key twice in a statement, and MySQL's counts need distinct keys.
fn distinct_open_times(rows: &[Kline]) -> Cow<'_, [Kline]> {
    if rows.windows(2).all(|w| w[0].open_time < w[1].open_time) {
        return Cow::Borrowed(rows);
    }
    let mut sorted = rows.to_vec();
    // Stable: among equal open times the input order is kept, so the last is the later row.
    sorted.sort_by_key(|k| k.open_time);
    let mut distinct: Vec<Kline> = Vec::with_capacity(sorted.len());
    for k in sorted {
        match distinct.last_mut() {
            Some(last) if last.open_time == k.open_time => *last = k,
            _ => distinct.push(k),
        }
    }
    Cow::Owned(distinct)
}

/// State and counters written for a ledger entry, the same on every backend.
pub(crate) fn outcome_columns(outcome: GapOutcome) -> (GapState, u32, u64) {
    match outcome {
        GapOutcome::Seen => (GapState::Open, 0, 0),
        GapOutcome::Filled { rows } => (GapState::Filled, 1, rows),
        GapOutcome::ExchangeEmpty => (GapState::ExchangeEmpty, 1, 0),
    }
}
