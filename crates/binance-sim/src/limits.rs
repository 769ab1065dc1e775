//! Request-weight limits, enforced like Binance: per client IP and per market, fixed windows
//! of `--weight-window` seconds, HTTP 429 past the limit, an IP ban (HTTP 418) for a client
//! that comes back before the `Retry-After` it was given.
//!
//! Windows run on tokio's monotonic clock — real elapsed time, which tests pause and advance
//! (`tokio::time::advance`) — counted from the limiter's creation, so window `n` covers
//! `[origin + n·w, origin + (n+1)·w)`. Every call takes `now` explicitly; the sim clock (which
//! may be frozen) only stamps the "banned until" time in the 418 message.
//!
//! Rules, per (IP, market):
//! 1. A request of weight `w` is admitted if `used + w ≤ limit`; `used` then grows by `w`.
//! 2. Otherwise it gets 429 with `Retry-After` = whole seconds until the window ends, and the
//!    client is told to wait until then. A refused request adds no weight.
//! 3. Any request before that instant gets 418 and bans the IP for `--ban-secs`; requests during
//!    the ban get 418 again (`Retry-After` = seconds left).
//! 4. With `--weight-limit unlimited` weight is still counted (header, stats) but never refused.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use binance_spec::Market;
use tokio::time::Instant;

use crate::config::WeightLimit;

/// A request the limiter turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over the limit: HTTP 429.
    RateLimited {
        used: u32,
        limit: u32,
        retry_after_secs: u64,
    },
    /// Banned: HTTP 418.
    Banned {
        used: u32,
        /// Sim-clock epoch ms when the ban ends.
        until_ms: i64,
        retry_after_secs: u64,
    },
}

impl Refusal {
    /// The weight used in the current window, for the header.
    pub(crate) fn used(&self) -> u32 {
        match *self {
            Refusal::RateLimited { used, .. } | Refusal::Banned { used, .. } => used,
        }
    }
}

#[derive(Debug, Default)]
struct ClientWindow {
    window: u64,
    used: u32,
    /// Told to wait (a 429) until this instant.
    wait_until: Option<Instant>,
    banned_until: Option<Instant>,
}

/// The weight books of every client.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: WeightLimit,
    window: Duration,
    ban: Duration,
    origin: Instant,
    clients: Mutex<HashMap<(IpAddr, Market), ClientWindow>>,
    /// Highest weight any one client used in any window, per market.
    max_used: [AtomicU32; 2],
}

impl Limiter {
    pub(crate) fn new(limit: WeightLimit, window: Duration, ban: Duration, origin: Instant) -> Self {
        Self {
            limit,
            window: window.max(Duration::from_millis(1)),
            ban,
            origin,
            clients: Mutex::new(HashMap::new()),
            max_used: [AtomicU32::new(0), AtomicU32::new(0)],
        }
    }

    fn window_index(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.origin).as_nanos() / self.window.as_nanos()) as u64
    }

    fn window_end(&self, index: u64) -> Instant {
        let nanos = u128::from(index + 1) * self.window.as_nanos();
        self.origin + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Charges `weight` to `ip` on `market` at `now`; the used weight after it, or why not.
    /// `sim_now_ms` is the sim clock's now, for the ban's end in the 418 message.
    pub(crate) fn admit(
        &self,
        ip: IpAddr,
        market: Market,
        weight: u32,
        now: Instant,
        sim_now_ms: i64,
    ) -> Result<u32, Refusal> {
        let index = self.window_index(now);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let client = clients.entry((ip, market)).or_default();
        if client.window != index {
            client.window = index;
            client.used = 0;
        }
        let banned = |client: &mut ClientWindow, until: Instant| Refusal::Banned {
            used: client.used,
            until_ms: sim_now_ms + until.duration_since(now).as_millis() as i64,
            retry_after_secs: ceil_secs(until.duration_since(now)),
        };
        if let Some(until) = client.banned_until {
            if now < until {
                return Err(banned(client, until));
            }
            client.banned_until = None;
        }
        if let Some(wait) = client.wait_until.take()
            && now < wait
        {
            let until = now + self.ban;
            client.banned_until = Some(until);
            return Err(banned(client, until));
        }
        if let Some(limit) = self.limit.enforced(market)
            && client.used.saturating_add(weight) > limit
        {
            let end = self.window_end(index);
            client.wait_until = Some(end);
            return Err(Refusal::RateLimited {
                used: client.used,
                limit,
                retry_after_secs: ceil_secs(end.duration_since(now)),
            });
        }
        client.used = client.used.saturating_add(weight);
        self.max_used[market_slot(market)].fetch_max(client.used, Ordering::Relaxed);
        Ok(client.used)
    }

    /// Weight `ip` used on `market` in the window of `now`.
    pub(crate) fn used(&self, ip: IpAddr, market: Market, now: Instant) -> u32 {
        let index = self.window_index(now);
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .get(&(ip, market))
            .filter(|c| c.window == index)
            .map_or(0, |c| c.used)
    }

    /// The highest weight any client has used in the window of `now`, on `market`.
    pub(crate) fn busiest_now(&self, market: Market, now: Instant) -> u32 {
        let index = self.window_index(now);
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .iter()
            .filter(|((_, m), c)| *m == market && c.window == index)
            .map(|(_, c)| c.used)
            .max()
            .unwrap_or(0)
    }

    /// The highest weight any client has used in any one window, on `market`.
    pub(crate) fn busiest_ever(&self, market: Market) -> u32 {
        self.max_used[market_slot(market)].load(Ordering::Relaxed)
    }
}

fn market_slot(market: Market) -> usize {
    match market {
        Market::Spot => 0,
        Market::UsdM => 1,
    }
}

/// Whole seconds covering `d`, at least 1 (what `Retry-After` says).
fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn limiter(limit: WeightLimit) -> (Limiter, Instant) {
        let origin = Instant::now();
        (
            Limiter::new(limit, Duration::from_secs(2), Duration::from_secs(5), origin),
            origin,
        )
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn escalates_from_429_to_418_and_recovers() {
        let (l, t0) = limiter(WeightLimit::PerWindow(5));
        let spot = Market::Spot;
        // Step: (offset ms, weight, expected outcome)
        assert_eq!(l.admit(IP, spot, 2, t0, 0), Ok(2));
        assert_eq!(l.admit(IP, spot, 2, t0 + ms(100), 0), Ok(4));
        assert_eq!(
            l.admit(IP, spot, 2, t0 + ms(500), 0),
            Err(Refusal::RateLimited {
                used: 4,
                limit: 5,
                retry_after_secs: 2
            })
        );
        assert_eq!(
            l.admit(OTHER, spot, 2, t0 + ms(600), 0),
            Ok(2),
            "limits are per IP"
        );
        assert_eq!(
            l.admit(IP, Market::UsdM, 2, t0 + ms(600), 0),
            Ok(2),
            "and per market"
        );
        // Came back before Retry-After passed: banned for 5 s.
        assert_eq!(
            l.admit(IP, spot, 1, t0 + ms(1_200), 1_000),
            Err(Refusal::Banned {
                used: 4,
                until_ms: 6_000,
                retry_after_secs: 5
            })
        );
        // Still banned in the next window; the ban runs until 6.2 s.
        assert_eq!(
            l.admit(IP, spot, 1, t0 + ms(4_700), 0),
            Err(Refusal::Banned {
                used: 0,
                until_ms: 1_500,
                retry_after_secs: 2
            })
        );
        assert_eq!(l.admit(IP, spot, 1, t0 + ms(6_200), 0), Ok(1));
        assert_eq!(l.busiest_ever(spot), 4);
        assert_eq!(l.used(IP, spot, t0 + ms(6_300)), 1);
        assert_eq!(l.busiest_now(spot, t0 + ms(6_300)), 1);
    }

    #[test]
    fn waiting_out_retry_after_is_not_punished() {
        let (l, t0) = limiter(WeightLimit::PerWindow(2));
        assert_eq!(l.admit(IP, Market::Spot, 2, t0 + ms(1_500), 0), Ok(2));
        let Err(Refusal::RateLimited { retry_after_secs, .. }) =
            l.admit(IP, Market::Spot, 2, t0 + ms(1_500), 0)
        else {
            panic!("expected 429");
        };
        assert_eq!(retry_after_secs, 1, "0.5 s left in the window rounds up");
        assert_eq!(l.admit(IP, Market::Spot, 2, t0 + ms(2_000), 0), Ok(2));
    }

    #[test]
    fn unlimited_counts_but_never_refuses() {
        let (l, t0) = limiter(WeightLimit::Unlimited);
        for i in 1..=10_000u32 {
            assert_eq!(l.admit(IP, Market::UsdM, 10, t0, 0), Ok(i * 10));
        }
        let (l, t0) = limiter(WeightLimit::BinanceDefault);
        assert_eq!(l.admit(IP, Market::UsdM, 2_400, t0, 0), Ok(2_400));
        assert!(l.admit(IP, Market::UsdM, 1, t0, 0).is_err());
        assert_eq!(l.admit(IP, Market::Spot, 6_000, t0, 0), Ok(6_000));
    }
}
