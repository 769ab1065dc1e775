//! # binance-extractor
//!
//! Pulls historical klines from Binance's REST API into a database, finds and fills the holes
//! in it, and announces every finished extraction on NATS.
//!
//! ```text
//!            ┌──────────── pipeline (shared by every job) ─────────────┐
//!  Binance ──► binance::client ─► decode ─► pipeline::fetch ─► store ──┼─► events ─► NATS
//!  REST API │  (weight budget,            (pages → batches,  (SQLite, │   (one message per
//!           │   one retry layer)           in order)          PG, MySQL)│    symbol + batch)
//!           └──────────────────────────────────────────────────────────┘
//!                   ▲ jobs: extract (a range) · sync (resume) · fill-gaps (holes + ledger)
//! ```
//!
//! Where things are:
//! - **Klines come from** [`binance`]: the REST client ([`binance::client`]), the weight budget
//!   every worker shares ([`binance::budget`]), the single retry policy ([`binance::retry`]) and
//!   the exact JSON decoder ([`binance::decode`]).
//! - **They go to** [`store`]: one behaviour on SQLite (default), PostgreSQL and MySQL/MariaDB,
//!   with the `klines` table and the `gap_ledger`.
//! - **Events leave through** [`events`]: the seed's `extraction_completed` and
//!   `batch_extraction_completed` messages on NATS.
//! - **The loop that moves them** is [`pipeline`]: [`pipeline::fetch`] pages a range into the
//!   store; [`pipeline::runner`] runs a job over symbols in parallel and publishes the events.
//! - **The jobs** ([`jobs`]) only decide ranges: `extract`, `sync`, `fill-gaps`, and the
//!   `gaps` report.
//! - **Input** is parsed by [`cli`] (flags and environment) and checked once by [`settings`];
//!   [`app`] wires the components; [`clock`] makes "now" injectable; [`series`] holds the
//!   typed identities (symbol, series key, time range).
//!
//! Binance itself — markets, intervals, weights, the kline row — is described once, in the
//! `binance-spec` crate, shared with the `binance-sim` simulator.

pub mod app;
pub mod binance;
pub mod check;
pub mod cli;
pub mod clock;
pub mod events;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod series;
pub mod settings;
pub mod store;
