//! One request-weight budget per process, shared by every worker and job.
//!
//! Binance limits the request weight an IP may use per minute (`exchangeInfo.rateLimits`:
//! 6000 on spot, 2400 on USD-M). Each request is charged its weight *before* it is sent; when
//! the window's allowance (limit × safety ceiling) is spent, callers wait for the next
//! window instead of being answered 429. The `X-MBX-USED-WEIGHT-1M` header of every answer
//! corrects the estimate — other processes on the same IP count too — and a 429/418 pauses
//! every caller until its `Retry-After` has passed.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Figures about what the budget let through, for logs, metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Requests charged.
    pub requests: u64,
    /// Weight charged in all.
    pub weight_spent: u64,
    /// Weight used in the current window, as far as we know.
    pub used_in_window: u32,
    /// The window's limit.
    pub limit: u32,
    /// Times a caller had to wait for the window to roll over.
    pub waits: u64,
    /// Times Binance told us to pause (429/418).
    pub pauses: u64,
    /// Answers HTTP 429 (weight limit reached).
    pub rate_limited: u64,
    /// Answers HTTP 418 (IP banned).
    pub banned: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
}

#[derive(Debug)]
struct State {
    limit: u32,
    window: Duration,
    ceiling: f64,
    window_start: Instant,
    used: u32,
    paused_until: Option<Instant>,
    stats: BudgetStats,
}

/// The shared weight budget.
#[derive(Debug)]
pub struct WeightBudget {
    state: Mutex<State>,
}

impl WeightBudget {
    /// A budget of `limit` weight per `window`, of which `ceiling` (0..=1) may be used.
    pub fn new(limit: u32, window: Duration, ceiling: f64) -> Self {
        WeightBudget {
            state: Mutex::new(State {
                limit,
                window,
                ceiling: ceiling.clamp(0.05, 1.0),
                window_start: Instant::now(),
                used: 0,
                paused_until: None,
                stats: BudgetStats::default(),
            }),
        }
    }

    /// Replaces the limit and window (e.g. with what `exchangeInfo` announced).
    pub fn set_limit(&self, limit: u32, window: Duration) {
        let mut s = self.lock();
        s.limit = limit.max(1);
        s.window = window.max(Duration::from_millis(1));
    }

    /// The weight that may be used per window.
    pub fn allowance(&self) -> u32 {
        let s = self.lock();
        allowance(&s)
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.lock().window
    }

    /// Waits until `weight` fits in the current window (and no pause is in force), then charges it.
    pub async fn acquire(&self, weight: u32) {
        loop {
            let wake_at = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if until > now => Some(until),
                    _ => {
                        s.paused_until = None;
                        roll_window(&mut s, now);
                        if s.used + weight <= allowance(&s).max(weight) {
                            s.used += weight;
                            s.stats.requests += 1;
                            s.stats.weight_spent += u64::from(weight);
                            return;
                        }
                        s.stats.waits += 1;
                        Some(s.window_start + s.window)
                    }
                }
            };
            if let Some(at) = wake_at {
                tokio::time::sleep_until(at).await;
            }
        }
    }

    /// Takes in the weight Binance says this IP used in its current window.
    pub fn observe_used(&self, used: u32) {
        let mut s = self.lock();
        let now = Instant::now();
        roll_window(&mut s, now);
        if used >= s.used {
            // Others on this IP (or our own requests in flight) count too.
            s.used = used;
        } else if used < s.used / 2 {
            // Binance's window rolled over before ours: follow it.
            s.used = used;
            s.window_start = now;
        }
    }

    /// Counts a refusal by Binance (HTTP 429 or 418).
    pub fn note_refusal(&self, status: u16) {
        let mut s = self.lock();
        if status == 418 {
            s.stats.banned += 1;
        } else {
            s.stats.rate_limited += 1;
        }
    }

    /// Counts a request about to be sent again.
    pub fn note_retry(&self) {
        self.lock().stats.retries += 1;
    }

    /// Holds every caller for `pause` (Binance's `Retry-After` on 429/418). Returns whether
    /// this extended the pause in force (so that only one caller reports it).
    pub fn pause_for(&self, pause: Duration) -> bool {
        let mut s = self.lock();
        let until = Instant::now() + pause;
        if s.paused_until.is_none_or(|p| p < until) {
            s.stats.pauses += 1;
            s.paused_until = Some(until);
            true
        } else {
            false
        }
    }

    /// When the current pause ends, if one is in force.
    pub fn paused_until(&self) -> Option<Instant> {
        let s = self.lock();
        s.paused_until.filter(|p| *p > Instant::now())
    }

    /// What the budget let through so far.
    pub fn stats(&self) -> BudgetStats {
        let s = self.lock();
        BudgetStats {
            used_in_window: s.used,
            limit: s.limit,
            ..s.stats
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn allowance(s: &State) -> u32 {
    ((f64::from(s.limit) * s.ceiling).floor() as u32).max(1)
}

fn roll_window(s: &mut State, now: Instant) {
    if now >= s.window_start + s.window {
        let elapsed = now - s.window_start;
        let windows = (elapsed.as_nanos() / s.window.as_nanos().max(1)) as u32;
        s.window_start += s.window * windows;
        s.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spends_up_to_the_ceiling_then_waits_for_the_next_window() {
        let b = WeightBudget::new(100, Duration::from_secs(60), 0.9);
        let start = Instant::now();
        for _ in 0..45 {
            b.acquire(2).await; // 90 weight: the ceiling
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        b.acquire(2).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60), "waited for the window");
        assert_eq!(b.stats().weight_spent, 92);
        assert_eq!(b.stats().waits, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_header_counts_other_processes() {
        let b = WeightBudget::new(100, Duration::from_secs(60), 0.9);
        b.acquire(2).await;
        b.observe_used(88); // someone else on this IP used 86
        let start = Instant::now();
        b.acquire(2).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "88 + 2 fits in 90");
        b.acquire(2).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_everyone() {
        let b = std::sync::Arc::new(WeightBudget::new(1000, Duration::from_secs(60), 0.9));
        b.pause_for(Duration::from_secs(120));
        let start = Instant::now();
        let (b1, b2) = (b.clone(), b.clone());
        let (t1, t2) = tokio::join!(
            async move {
                b1.acquire(1).await;
                Instant::now()
            },
            async move {
                b2.acquire(1).await;
                Instant::now()
            }
        );
        assert_eq!(t1 - start, Duration::from_secs(120));
        assert_eq!(t2 - start, Duration::from_secs(120));
        assert_eq!(b.stats().pauses, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_heavier_than_the_allowance_still_goes_alone() {
        let b = WeightBudget::new(10, Duration::from_secs(1), 0.5);
        b.acquire(20).await;
        assert_eq!(b.stats().weight_spent, 20);
    }
}
