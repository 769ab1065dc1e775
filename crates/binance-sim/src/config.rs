//! Validated settings of one simulator: which symbols exist and since when, where the data
//! comes from, what "now" is, the rate limits and the faults to inject.
//!
//! [`SimConfig::default`] is what the binary runs with when given no options; the CLI
//! ([`crate::cli`]) turns raw flags into this struct once, and nothing downstream sees a raw
//! string.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use binance_spec::Market;

use crate::clock::Clock;

/// The symbols served when `--symbols` is not given.
pub const DEFAULT_SYMBOLS: [&str; 8] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT", "SOLUSDT", "LINKUSDT", "LTCUSDT", "XRPUSDT",
];

/// 2020-01-01T00:00:00Z: when every synthetic symbol is listed unless `--listed` says otherwise.
pub const DEFAULT_LISTING_MS: i64 = 1_577_836_800_000;

/// Everything a simulator needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The synthetic symbol universe (replayed symbols join it when `data_dir` is loaded).
    pub symbols: Vec<String>,
    /// Listing date (UTC epoch ms) per symbol, overriding `default_listing_ms`.
    pub listed: BTreeMap<String, i64>,
    /// Listing date of every symbol not in `listed`.
    pub default_listing_ms: i64,
    /// Windows with no candles at all.
    pub outages: Vec<Outage>,
    /// A local mirror of data.binance.vision's `data/` tree to replay.
    pub data_dir: Option<PathBuf>,
    /// Seed of the synthetic prices and of the fault draws.
    pub seed: u64,
    /// What "now" is.
    pub clock: Clock,
    /// Request-weight budget per client IP, market and window.
    pub weight_limit: WeightLimit,
    /// Length of one rate-limit window.
    pub weight_window: Duration,
    /// How long a client that ignored a 429 is banned (HTTP 418).
    pub ban: Duration,
    /// Faults injected into klines responses.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            symbols: DEFAULT_SYMBOLS.iter().map(|s| s.to_string()).collect(),
            listed: BTreeMap::new(),
            default_listing_ms: DEFAULT_LISTING_MS,
            outages: Vec::new(),
            data_dir: None,
            seed: 0,
            clock: Clock::System,
            weight_limit: WeightLimit::BinanceDefault,
            weight_window: Duration::from_secs(60),
            ban: Duration::from_secs(120),
            faults: FaultConfig::default(),
        }
    }
}

impl SimConfig {
    /// Checks what the types cannot: rates are probabilities, windows are not empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.faults;
        for (name, rate) in [
            ("--fail-rate", f.fail_rate),
            ("--reset-rate", f.reset_rate),
            ("--truncate-rate", f.truncate_rate),
            ("--slow-rate", f.slow_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::Rate { name, rate });
            }
        }
        let exclusive = f.fail_rate + f.reset_rate + f.truncate_rate;
        if exclusive > 1.0 + 1e-9 {
            return Err(ConfigError::RatesOverOne(exclusive));
        }
        if self.weight_window.as_secs() == 0 {
            return Err(ConfigError::EmptyWindow);
        }
        if let Some(o) = self.outages.iter().find(|o| o.end_ms <= o.start_ms) {
            return Err(ConfigError::EmptyOutage {
                start_ms: o.start_ms,
                end_ms: o.end_ms,
            });
        }
        Ok(())
    }

    /// The listing date of `symbol`.
    pub fn listing_ms(&self, symbol: &str) -> i64 {
        self.listed
            .get(symbol)
            .copied()
            .unwrap_or(self.default_listing_ms)
    }
}

/// A setting that cannot work, named by its option.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} {rate} is not a probability: use a number from 0 to 1")]
    Rate { name: &'static str, rate: f64 },
    #[error("--fail-rate + --reset-rate + --truncate-rate is {0}, more than 1")]
    RatesOverOne(f64),
    #[error("--weight-window must be at least 1 second")]
    EmptyWindow,
    #[error("an outage from {start_ms} to {end_ms} is empty: END must be after START")]
    EmptyOutage { start_ms: i64, end_ms: i64 },
    #[error("{option} '{input}': {reason}")]
    Invalid {
        option: &'static str,
        input: String,
        reason: String,
    },
}

/// A period with no candles: every candle whose open time is in `[start_ms, end_ms)` is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The one symbol it hits, or `None` for all of them.
    pub symbol: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Outage {
    /// Whether this outage removes candles of `symbol`.
    pub fn applies_to(&self, symbol: &str) -> bool {
        self.symbol.as_deref().is_none_or(|s| s == symbol)
    }
}

/// What `exchangeInfo` announces when weight is not enforced.
pub const UNLIMITED_REPORTED: u32 = 1_000_000_000;

/// The request-weight budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightLimit {
    /// Binance's own: 6000 (spot) / 2400 (USD-M) per window.
    #[default]
    BinanceDefault,
    /// The same budget for both markets.
    PerWindow(u32),
    /// Count weight but never refuse (benchmarks).
    Unlimited,
}

impl WeightLimit {
    /// The enforced limit for `market`, or `None` when unlimited.
    pub fn enforced(self, market: Market) -> Option<u32> {
        match self {
            WeightLimit::BinanceDefault => Some(market.default_weight_limit()),
            WeightLimit::PerWindow(n) => Some(n),
            WeightLimit::Unlimited => None,
        }
    }

    /// The limit `exchangeInfo` reports. When unlimited, a limit no client will reach, so that
    /// well-behaved clients do not throttle themselves against a server that never refuses.
    pub fn reported(self, market: Market) -> u32 {
        self.enforced(market).unwrap_or(UNLIMITED_REPORTED)
    }
}

/// Fault probabilities, each drawn per klines request (see [`crate::faults`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// 5xx: 503 with Binance's -1001 body, or a plain 502 / 504 (they take turns).
    pub fail_rate: f64,
    /// Close the connection without any response.
    pub reset_rate: f64,
    /// 200 whose JSON body is cut off in the middle.
    pub truncate_rate: f64,
    /// Respond only after `slow` (drawn independently of the three above).
    pub slow_rate: f64,
    /// The delay of a slow response.
    pub slow: Duration,
}

impl Default for FaultConfig {
    /// No faults; a slow answer (when enabled) waits 1 s.
    fn default() -> Self {
        Self {
            fail_rate: 0.0,
            reset_rate: 0.0,
            truncate_rate: 0.0,
            slow_rate: 0.0,
            slow: Duration::from_secs(1),
        }
    }
}

impl FaultConfig {
    /// Whether any fault can happen.
    pub fn any(&self) -> bool {
        self.fail_rate > 0.0 || self.reset_rate > 0.0 || self.truncate_rate > 0.0 || self.slow_rate > 0.0
    }
}
