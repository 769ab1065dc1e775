//! The pipeline the three jobs share: Binance → validate → store → event.
//!
//! - [`fetch`]: the one paging loop, streaming pages into batched writes.
//! - [`holes`]: the holes between consecutive candles, found as the pages go by.
//! - [`runner`]: symbols in parallel, per-symbol and batch events, the run's report.
//!
//! A job supplies only what differs — which ranges to fetch for a symbol and what to
//! record afterwards — as a [`runner::SymbolJob`].

pub mod fetch;
pub mod holes;
pub mod runner;

use binance_spec::{Interval, Market};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::{
    binance::{BinanceClient, BinanceError},
    clock::Clock,
    progress::Progress,
    store::{Store, StoreError},
};

pub use fetch::{FetchOutcome, fetch_into_store};
pub use runner::{RunReport, SymbolJob, SymbolOutcome, run};

/// Everything a job needs, shared by all its symbols.
#[derive(Debug, Clone)]
pub struct Context {
    /// The one Binance client of the process.
    pub client: BinanceClient,
    /// The store.
    pub store: Store,
    /// "Now", anchored to Binance's server time at the start of the run.
    pub clock: Clock,
    /// The market read.
    pub market: Market,
    /// The kline interval of the run.
    pub interval: Interval,
    /// Cancelled on SIGINT/SIGTERM: the current page is finished, nothing new is started.
    pub cancel: CancellationToken,
    /// Fetch and report, but write and publish nothing.
    pub dry_run: bool,
    /// Rows fetched against rows expected, for people watching.
    pub progress: Arc<Progress>,
}

impl Context {
    /// Open time of the candle forming now: every candle before it is closed.
    pub fn forming_open(&self) -> i64 {
        self.interval.open_containing(self.clock.now_ms())
    }
}

/// Why a symbol's work stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Binance(#[from] BinanceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
