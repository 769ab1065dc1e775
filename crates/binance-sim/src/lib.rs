//! `binance-sim`: a Binance-compatible market-data server for tests and benchmarks.
//!
//! Where things are:
//!
//! - [`config`]: [`SimConfig`], the validated settings (symbols, listings, outages, data,
//!   seed, clock, weight limits, faults); [`cli`] turns command-line flags into it.
//! - [`clock`]: the sim clock — system time or a fixed instant tests move by hand.
//! - [`data`]: where klines come from. [`Dataset`] holds the symbol universe and selects rows
//!   the way Binance does; each (market, symbol) is either **synthetic** (`data/synthetic.rs`:
//!   fixed-point rows that are a pure function of seed, market, symbol, interval and open
//!   time) or **replayed** (`data/replay.rs`: a local mirror of data.binance.vision, served
//!   verbatim). `data/json.rs` writes rows as Binance's JSON, fast.
//! - [`server`]: where klines go — the HTTP endpoints of both markets (`server/klines.rs`,
//!   `server/info.rs`), Binance's error bodies (`server/errors.rs`) and the accept loop
//!   (`server/conn.rs`). [`serve`] runs on a listener until a shutdown signal; [`spawn`]
//!   starts one in the background and returns a [`SimHandle`].
//! - [`limits`]: request weight per client IP and market: 429, then a 418 ban.
//! - [`faults`]: seeded fault injection (5xx, connection reset, truncated body, slow answer).
//! - [`stats`]: what the server saw ([`Stats`], `GET /sim/stats`), including the log of
//!   every klines request — where events leave the simulator.
//!
//! The shared facts (paths, weights, limits, intervals, the kline row) come from
//! `binance-spec`; nothing here repeats them.

pub mod cli;
pub mod clock;
pub mod config;
pub mod data;
pub mod faults;
pub mod limits;
pub mod server;
pub mod stats;

pub use clock::{Clock, SimClock};
pub use config::{ConfigError, FaultConfig, Outage, SimConfig, WeightLimit};
pub use data::{DataError, Dataset, LoadError, SymbolInfo};
pub use faults::FaultKind;
pub use server::{Sim, SimError, SimHandle, serve, spawn};
pub use stats::{FaultCounts, KlinesLogEntry, PerMarket, Stats};
