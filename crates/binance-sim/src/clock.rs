//! The simulator's clock: what "now" is for `time`, `exchangeInfo.serverTime`, listings and
//! the still-forming candle.
//!
//! It is either the system clock or a fixed instant that tests (and `--now`) set and move by
//! hand, so a forming candle or a listing date can be pinned without sleeping. Rate-limit
//! windows do *not* use it: they run on tokio's monotonic clock (see [`crate::limits`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// How the simulator tells the time, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The machine's wall clock.
    #[default]
    System,
    /// Frozen at this UTC epoch millisecond until moved with [`SimClock::set_now`] or
    /// [`SimClock::advance`].
    Fixed(i64),
}

/// Sentinel stored in [`SimClock`] for "use the system clock".
const SYSTEM: i64 = i64::MIN;

/// The running clock, shared by the server and the [`crate::Dataset`] (cloning shares it).
#[derive(Debug, Clone)]
pub struct SimClock {
    fixed_ms: Arc<AtomicI64>,
}

impl SimClock {
    /// A clock that starts as `clock` says.
    pub fn new(clock: Clock) -> Self {
        let start = match clock {
            Clock::System => SYSTEM,
            Clock::Fixed(ms) => ms,
        };
        Self {
            fixed_ms: Arc::new(AtomicI64::new(start)),
        }
    }

    /// Now, in UTC epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self.fixed_ms.load(Ordering::Acquire) {
            SYSTEM => system_now_ms(),
            fixed => fixed,
        }
    }

    /// Freezes the clock at `ms`.
    pub fn set_now(&self, ms: i64) {
        self.fixed_ms.store(ms, Ordering::Release);
    }

    /// Moves a frozen clock by `delta_ms` (a system clock is frozen at its current time first).
    pub fn advance(&self, delta_ms: i64) {
        let now = self.now_ms();
        self.set_now(now + delta_ms);
    }

    /// Whether the clock is frozen.
    pub fn is_fixed(&self) -> bool {
        self.fixed_ms.load(Ordering::Acquire) != SYSTEM
    }
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_by_hand() {
        let clock = SimClock::new(Clock::Fixed(1_000));
        assert!(clock.is_fixed());
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(500);
        assert_eq!(clock.clone().now_ms(), 1_500, "clones share the time");
        clock.set_now(7);
        assert_eq!(clock.now_ms(), 7);
    }

    #[test]
    fn system_clock_is_the_wall_clock() {
        let clock = SimClock::new(Clock::System);
        assert!(!clock.is_fixed());
        // 2024-01-01: any machine running this is later than that.
        assert!(clock.now_ms() > 1_704_067_200_000);
        clock.advance(0);
        assert!(clock.is_fixed());
    }
}
