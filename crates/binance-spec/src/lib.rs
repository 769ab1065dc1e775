//! What Binance is, in one place: shared by the extractor (which must honour it) and the
//! simulator (which must behave like it).
//!
//! - [`market`]: spot and USD-M futures — REST paths, page limits, request weights, error codes.
//! - [`interval`]: the sixteen kline intervals and where their candles open (calendar months included).
//! - [`kline`]: the 12-field kline row with exact decimals.
//! - [`time`]: UTC epoch-millisecond arithmetic, date parsing and the events' timestamp format.
//!
//! Source of every number: the project's `BINANCE.md` (binance-spot-api-docs, the USD-M REST
//! docs and binance-public-data).

pub mod interval;
pub mod kline;
pub mod market;
pub mod time;

pub use interval::{Interval, ParseIntervalError};
pub use kline::{Decimal, Kline};
pub use market::{Endpoint, Market, ParseMarketError, USED_WEIGHT_HEADER, error_code};
