//! What the simulator saw: request and row counters, weight high-water marks, refusals,
//! faults, and the log of every klines request (the last [`KLINES_LOG_CAP`]).
//!
//! Served as `GET /sim/stats` and returned by [`crate::SimHandle::stats`]; both are the same
//! [`Stats`] value, so a test may fetch it over HTTP and deserialize it.

use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use binance_spec::Market;
use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;

/// How many klines requests the log keeps (the oldest go first).
pub const KLINES_LOG_CAP: usize = 100_000;

/// A snapshot of the counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Every HTTP request except `/sim/…`.
    pub requests: u64,
    /// Requests to a klines endpoint (`klines`, `uiKlines`), refused ones included.
    pub klines_requests: u64,
    /// Rows in complete 200 klines responses (truncated bodies not included).
    pub rows_served: u64,
    /// Weight the busiest client IP used in the current window.
    pub weight_used_current_window: PerMarket,
    /// Highest weight any one client IP used in any one window.
    pub max_weight_in_any_window: PerMarket,
    /// Requests refused with HTTP 429.
    pub rate_limited_429: u64,
    /// Requests refused with HTTP 418.
    pub banned_418: u64,
    /// Injected faults by kind.
    pub faults: FaultCounts,
    /// The last klines requests, oldest first.
    pub klines_log: Vec<KlinesLogEntry>,
}

/// One number per market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PerMarket {
    pub spot: u64,
    pub usdm: u64,
}

impl PerMarket {
    /// The number of `market`.
    pub fn get(&self, market: Market) -> u64 {
        match market {
            Market::Spot => self.spot,
            Market::UsdM => self.usdm,
        }
    }
}

/// Injected faults by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FaultCounts {
    /// 503 / 502 / 504 responses.
    pub fail: u64,
    /// Connections closed without a response.
    pub reset: u64,
    /// 200 responses with a cut-off body.
    pub truncate: u64,
    /// Delayed responses.
    pub slow: u64,
}

/// One klines request as the server saw it. Parameters that were absent or not numbers are
/// `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KlinesLogEntry {
    /// `spot` or `usdm`.
    pub market: String,
    pub symbol: String,
    pub interval: String,
    #[serde(rename = "startTime")]
    pub start_time: Option<i64>,
    #[serde(rename = "endTime")]
    pub end_time: Option<i64>,
    pub limit: Option<u32>,
    /// Rows selected (0 for errors, refusals, failures and resets).
    pub rows: u64,
    /// HTTP status sent; 0 when the connection was closed without a response.
    pub status: u16,
    /// The fault injected, if any (`slow` only when it was the only one).
    #[serde(default)]
    pub fault: Option<FaultKind>,
    /// When the answer was decided: milliseconds since the server started (monotonic, on
    /// tokio's clock), so tests can see what a client sent during a pause or a ban.
    #[serde(default)]
    pub at_ms: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug)]
pub(crate) struct Recorder {
    started: tokio::time::Instant,
    requests: AtomicU64,
    klines_requests: AtomicU64,
    rows_served: AtomicU64,
    rate_limited: AtomicU64,
    banned: AtomicU64,
    faults: [AtomicU64; 4],
    log: Mutex<VecDeque<KlinesLogEntry>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            started: tokio::time::Instant::now(),
            requests: AtomicU64::default(),
            klines_requests: AtomicU64::default(),
            rows_served: AtomicU64::default(),
            rate_limited: AtomicU64::default(),
            banned: AtomicU64::default(),
            faults: Default::default(),
            log: Mutex::default(),
        }
    }
}

impl Recorder {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn banned(&self) {
        self.banned.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `kind` and returns how many of it came before.
    pub(crate) fn fault(&self, kind: FaultKind) -> u64 {
        self.faults[fault_slot(kind)].fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn rows_served(&self, rows: u64) {
        self.rows_served.fetch_add(rows, Ordering::Relaxed);
    }

    /// Logs one klines request.
    pub(crate) fn klines(&self, mut entry: KlinesLogEntry) {
        self.klines_requests.fetch_add(1, Ordering::Relaxed);
        entry.at_ms = self.started.elapsed().as_millis() as u64;
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == KLINES_LOG_CAP {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// The counters now; the two weight figures come from the limiter.
    pub(crate) fn snapshot(&self, weight_now: PerMarket, weight_max: PerMarket) -> Stats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let klines_log = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        Stats {
            requests: load(&self.requests),
            klines_requests: load(&self.klines_requests),
            rows_served: load(&self.rows_served),
            weight_used_current_window: weight_now,
            max_weight_in_any_window: weight_max,
            rate_limited_429: load(&self.rate_limited),
            banned_418: load(&self.banned),
            faults: FaultCounts {
                fail: load(&self.faults[0]),
                reset: load(&self.faults[1]),
                truncate: load(&self.faults[2]),
                slow: load(&self.faults[3]),
            },
            klines_log,
        }
    }
}

fn fault_slot(kind: FaultKind) -> usize {
    match kind {
        FaultKind::Fail => 0,
        FaultKind::Reset => 1,
        FaultKind::Truncate => 2,
        FaultKind::Slow => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rows: u64) -> KlinesLogEntry {
        KlinesLogEntry {
            market: "spot".into(),
            symbol: "BTCUSDT".into(),
            interval: "1h".into(),
            start_time: Some(1),
            end_time: None,
            limit: Some(1000),
            rows,
            status: 200,
            fault: None,
            at_ms: 0,
        }
    }

    #[test]
    fn the_log_keeps_the_newest() {
        let recorder = Recorder::default();
        for rows in 0..KLINES_LOG_CAP as u64 + 5 {
            recorder.klines(entry(rows));
        }
        let stats = recorder.snapshot(PerMarket::default(), PerMarket::default());
        assert_eq!(stats.klines_requests, KLINES_LOG_CAP as u64 + 5);
        assert_eq!(stats.klines_log.len(), KLINES_LOG_CAP);
        assert_eq!(stats.klines_log[0].rows, 5);
    }

    #[test]
    fn serialises_with_binance_parameter_names() {
        let json = serde_json::to_value(entry(3)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"market":"spot","symbol":"BTCUSDT","interval":"1h","startTime":1,"endTime":null,"limit":1000,"rows":3,"status":200,"fault":null,"at_ms":0})
        );
        let stats = Recorder::default().snapshot(PerMarket { spot: 4, usdm: 5 }, PerMarket::default());
        let back: Stats = serde_json::from_str(&serde_json::to_string(&stats).unwrap()).unwrap();
        assert_eq!(back, stats);
    }
}
