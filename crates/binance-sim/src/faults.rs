//! Fault injection for retry tests: the n-th klines request that passed the rate limiter
//! and validation gets a fault decided by a pure function of (seed, n), so a client that
//! sends the same requests in the same order meets the same faults.
//!
//! One draw picks at most one of the exclusive faults — `fail` (5xx), `reset` (connection
//! closed without a response), `truncate` (200 with half a JSON body) — from consecutive
//! slices of `[0, 1)`; a second, independent draw decides whether the response (whatever it is)
//! is `slow`. Failed 5xx take turns: 503 with Binance's -1001 body, then a plain 502, then a
//! plain 504. Every faulty request has already been charged its weight, as on Binance, where
//! weight is counted when the request arrives.

use serde::{Deserialize, Serialize};

use crate::{config::FaultConfig, data::synthetic::stream};

/// A fault kind, as counted in [`crate::Stats::faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Fail,
    Reset,
    Truncate,
    Slow,
}

/// What to do to one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FaultPlan {
    pub exclusive: Option<FaultKind>,
    pub slow: bool,
}

/// Seeded draws from `[0, 1)` for request number `n`.
fn draw(seed: u64, n: u64, which: u64) -> f64 {
    let h = stream(seed ^ 0x4641_554c_5453 ^ which.wrapping_mul(0x9E37_79B9), n);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The faults of request number `n`.
pub(crate) fn plan(config: &FaultConfig, seed: u64, n: u64) -> FaultPlan {
    let u = draw(seed, n, 0);
    let slices = [
        (config.fail_rate, FaultKind::Fail),
        (config.reset_rate, FaultKind::Reset),
        (config.truncate_rate, FaultKind::Truncate),
    ];
    let mut edge = 0.0;
    let mut exclusive = None;
    for (rate, kind) in slices {
        edge += rate;
        if u < edge {
            exclusive = Some(kind);
            break;
        }
    }
    FaultPlan {
        exclusive,
        slow: config.slow_rate > 0.0 && draw(seed, n, 1) < config.slow_rate,
    }
}

/// The status of the `k`-th failure (503, 502, 504, 503, …).
pub(crate) fn fail_status(k: u64) -> u16 {
    [503, 502, 504][(k % 3) as usize]
}

/// The first half of `body` (at least one byte short of it, never empty unless it was).
pub(crate) fn truncate(body: &mut Vec<u8>) {
    let keep = (body.len() / 2).max(1).min(body.len().saturating_sub(1));
    body.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_hold_and_runs_repeat() {
        let config = FaultConfig {
            fail_rate: 0.1,
            reset_rate: 0.2,
            truncate_rate: 0.05,
            slow_rate: 0.5,
            ..FaultConfig::default()
        };
        let n = 20_000;
        let plans: Vec<FaultPlan> = (0..n).map(|i| plan(&config, 42, i)).collect();
        let share = |f: &dyn Fn(&FaultPlan) -> bool| plans.iter().filter(|p| f(p)).count() as f64 / n as f64;
        let cases: [(&str, f64, f64); 4] = [
            ("fail", share(&|p| p.exclusive == Some(FaultKind::Fail)), 0.1),
            ("reset", share(&|p| p.exclusive == Some(FaultKind::Reset)), 0.2),
            (
                "truncate",
                share(&|p| p.exclusive == Some(FaultKind::Truncate)),
                0.05,
            ),
            ("slow", share(&|p| p.slow), 0.5),
        ];
        for (name, got, want) in cases {
            assert!((got - want).abs() < 0.015, "{name}: {got} vs {want}");
        }
        let again: Vec<FaultPlan> = (0..n).map(|i| plan(&config, 42, i)).collect();
        assert_eq!(plans, again);
        assert_ne!(plans, (0..n).map(|i| plan(&config, 43, i)).collect::<Vec<_>>());
    }

    #[test]
    fn certain_and_impossible() {
        let none = FaultConfig::default();
        assert!((0..1000).all(|i| plan(&none, 1, i) == FaultPlan::default()));
        let always = FaultConfig {
            reset_rate: 1.0,
            slow_rate: 1.0,
            ..FaultConfig::default()
        };
        assert!((0..1000).all(|i| plan(&always, 1, i)
            == FaultPlan {
                exclusive: Some(FaultKind::Reset),
                slow: true
            }));
    }

    #[test]
    fn truncation_and_failure_turns() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"[[1,2],[3,4]]", b"[[1,2]"),
            (b"[]", b"["),
            (b"[", b""),
            (b"", b""),
        ];
        for (body, want) in cases {
            let mut cut = body.to_vec();
            truncate(&mut cut);
            assert_eq!(cut, want);
        }
        assert_eq!((0..4).map(fail_status).collect::<Vec<_>>(), [503, 502, 504, 503]);
    }
}
