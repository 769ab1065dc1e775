//! When to try a failed request again: jittered exponential backoff, bounded in attempts and
//! in total time. Rate limits wait exactly as long as Binance asks (`Retry-After`), which the
//! shared [`super::budget::WeightBudget`] enforces for every worker.

use std::time::Duration;

use tokio::time::Instant;

use super::error::BinanceError;

/// Bounds of the retry loop.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries of one request in all (the first included).
    pub max_attempts: u32,
    /// First backoff; doubled on each further failure.
    pub base_delay: Duration,
    /// Longest single backoff.
    pub max_delay: Duration,
    /// Give up once this much time has passed since the first try.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(15),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

/// The retry state of one request.
#[derive(Debug)]
pub struct Retrying<'p> {
    policy: &'p RetryPolicy,
    started: Instant,
    failures: u32,
}

impl<'p> Retrying<'p> {
    /// Starts counting at `started`.
    pub fn new(policy: &'p RetryPolicy, started: Instant) -> Self {
        Retrying {
            policy,
            started,
            failures: 0,
        }
    }

    /// How long to wait before the next try after `err`, or `None` to give up.
    pub fn next_delay(&mut self, err: &BinanceError) -> Option<Duration> {
        if !err.is_retryable() {
            return None;
        }
        self.failures += 1;
        if self.failures >= self.policy.max_attempts {
            return None;
        }
        let delay = match err.pause() {
            // The budget already holds every worker until the pause ends; wait with them.
            Some(pause) => pause,
            None => {
                let exp = self
                    .policy
                    .base_delay
                    .saturating_mul(1 << (self.failures - 1).min(16))
                    .min(self.policy.max_delay);
                // Full jitter in [exp/2, exp]: spreads workers that failed together.
                exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
            }
        };
        if self.started.elapsed() + delay > self.policy.max_elapsed {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backs_off_exponentially_with_jitter_and_gives_up() {
        let p = policy();
        let mut r = Retrying::new(&p, Instant::now());
        let err = BinanceError::Connection("reset".into());
        let bounds = [(50, 100), (100, 200), (150, 300), (150, 300)];
        for (lo, hi) in bounds {
            let d = r.next_delay(&err).expect("retry").as_millis();
            assert!((lo..=hi).contains(&d), "{d} not in {lo}..={hi}");
        }
        assert_eq!(r.next_delay(&err), None, "fifth failure ends it");
    }

    #[tokio::test(start_paused = true)]
    async fn terminal_errors_are_never_retried() {
        let p = policy();
        let mut r = Retrying::new(&p, Instant::now());
        let err = BinanceError::Api {
            status: 400,
            code: -1121,
            msg: "Invalid symbol.".into(),
        };
        assert_eq!(r.next_delay(&err), None);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_wait_as_asked_within_the_time_bound() {
        let p = policy();
        let mut r = Retrying::new(&p, Instant::now());
        let err = BinanceError::RateLimited {
            status: 429,
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(r.next_delay(&err), Some(Duration::from_secs(7)));
        tokio::time::advance(Duration::from_secs(55)).await;
        assert_eq!(r.next_delay(&err), None, "would end past max_elapsed");
    }
}
