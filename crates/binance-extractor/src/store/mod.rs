//! The store: where klines go, and the ledger of holes.
//!
//! One behaviour on three databases, chosen by the scheme of `DATABASE_URL`
//! ([`DatabaseUrl`]): embedded SQLite (the default), PostgreSQL and MySQL/MariaDB. Each
//! backend lives in its own file and applies its migrations on connect.
//!
//! The public schema (documented in the README, because people query it):
//!
//! - `klines`: one row per (market, symbol, interval, open_time); prices and volumes exact
//!   (TEXT holding Binance's decimal string on SQLite, NUMERIC/DECIMAL elsewhere), times in
//!   epoch milliseconds. Writes are idempotent upserts: re-writing a candle changes nothing,
//!   a candle Binance corrected replaces the stored one.
//! - `gap_ledger`: every hole found, with its range, when first seen, attempts and state
//!   ([`GapState`]).
//!
//! Holes and the newest candle are computed by the database (window functions over the
//! primary key), never by loading a symbol's rows into the program.

mod error;
pub mod sqlite;
mod url;

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

/// The connected store.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
        }
    };
}

impl Store {
    /// Connects to `url` and applies the migrations.
    pub async fn connect(url: &DatabaseUrl) -> Result<Store, StoreError> {
        match url.backend() {
            Backend::Sqlite => Ok(Store::Sqlite(sqlite::SqliteStore::connect(url).await?)),
            other => Err(StoreError::Connect {
                target: url.target().to_string(),
                detail: format!("the {} backend is not available in this build", other.as_str()),
            }),
        }
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Rows per write that suit this backend's bulk path.
    pub fn batch_rows(&self) -> usize {
        dispatch!(self, s => s.batch_rows())
    }

    /// Upserts `rows` of one series in one transaction. Returns how many rows were inserted
    /// or changed (re-writing identical rows returns 0).
    pub async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        dispatch!(self, s => s.write_klines(key, rows).await)
    }

    /// Open time of the newest stored candle of the series.
    pub async fn newest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.newest_open_time(key).await)
    }

    /// Open time of the oldest stored candle of the series.
    pub async fn oldest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.oldest_open_time(key).await)
    }

    /// Holes between stored candles whose open times lie in `within`: each is the range from
    /// just after a stored candle to the next stored candle, where those two are further
    /// apart than one interval (calendar month for `1M`). Ascending.
    pub async fn holes(&self, key: &SeriesKey, within: TimeRange) -> Result<Vec<TimeRange>, StoreError> {
        if within.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, s => s.holes(key, within).await)
    }

    /// Stored candles with open times in `range`, ascending.
    pub async fn klines(&self, key: &SeriesKey, range: TimeRange) -> Result<Vec<Kline>, StoreError> {
        dispatch!(self, s => s.klines(key, range).await)
    }

    /// Number of stored candles of the series.
    pub async fn count(&self, key: &SeriesKey) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count(key).await)
    }

    /// The ledger of the series, ascending by range.
    pub async fn ledger(&self, key: &SeriesKey) -> Result<Vec<LedgerEntry>, StoreError> {
        dispatch!(self, s => s.ledger(key).await)
    }

    /// Records what a run learnt about the hole `range` at `now_ms`.
    pub async fn record_gap(
        &self,
        key: &SeriesKey,
        range: TimeRange,
        outcome: GapOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_gap(key, range, outcome, now_ms).await)
    }

    /// Closes the connections, waiting for writes in flight.
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}

/// State and counters written for a ledger entry, the same on every backend.
pub(crate) fn outcome_columns(outcome: GapOutcome) -> (GapState, u32, u64) {
    match outcome {
        GapOutcome::Seen => (GapState::Open, 0, 0),
        GapOutcome::Filled { rows } => (GapState::Filled, 1, rows),
        GapOutcome::ExchangeEmpty => (GapState::ExchangeEmpty, 1, 0),
    }
}
