//! The Binance source: where klines come from.
//!
//! - [`client`]: the REST client (klines, server time, exchangeInfo) — one per process.
//! - [`budget`]: the request-weight budget shared by every worker.
//! - [`retry`]: the one retry policy (jittered exponential backoff, bounded).
//! - [`decode`]: Binance's kline JSON into exact [`binance_spec::Kline`]s.
//! - [`error`]: what went wrong and whether to try again.

pub mod budget;
pub mod client;
pub mod decode;
pub mod error;
pub mod retry;

pub use budget::WeightBudget;
pub use client::{BinanceClient, ClientConfig, KlinesQuery};
pub use error::BinanceError;
pub use retry::RetryPolicy;
