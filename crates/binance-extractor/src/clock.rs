//! Injectable time.
//!
//! "Now" decides which candle is still forming and where a run ends, so it must be
//! controllable in tests. Production uses [`Clock::system`]; a run anchors its clock to
//! Binance's server time ([`Clock::anchored`]) so that a skewed local clock never makes us
//! store a candle the exchange has not closed yet.

use std::{
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

/// A source of UTC epoch milliseconds.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The machine's clock.
    pub fn system() -> Self {
        Clock(Arc::new(system_now_ms))
    }

    /// A clock frozen at `ms`.
    pub fn fixed(ms: i64) -> Self {
        Clock(Arc::new(move || ms))
    }

    /// A clock that reads `anchor_ms` now and advances with the monotonic clock from here.
    pub fn anchored(anchor_ms: i64) -> Self {
        let started = Instant::now();
        Clock(Arc::new(move || {
            anchor_ms + i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
        }))
    }

    /// Current UTC epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now={})", self.now_ms())
    }
}

/// The machine's UTC epoch milliseconds.
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
