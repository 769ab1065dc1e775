//! Binance markets, their REST paths, page limits and request weights.
//!
//! Source: binance-spot-api-docs `rest-api.md` and the USD-M futures REST docs, as summarised
//! in the project's `BINANCE.md`. These are the numbers the client charges against its
//! weight budget and the simulator enforces; a process should still prefer what the exchange
//! says at run time (`exchangeInfo.rateLimits`) over [`Market::default_weight_limit`].

use std::{fmt, str::FromStr};

use crate::interval::Interval;

/// A Binance market whose klines we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Market {
    /// Spot, `https://api.binance.com/api/v3/…`.
    Spot,
    /// USD-M futures, `https://fapi.binance.com/fapi/v1/…`.
    UsdM,
}

impl Market {
    /// Every market, in a stable order.
    pub const ALL: [Market; 2] = [Market::Spot, Market::UsdM];

    /// The name used on the command line and in the `market` column: `spot`, `usdm`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "usdm",
        }
    }

    /// The official REST host.
    pub const fn official_base_url(self) -> &'static str {
        match self {
            Market::Spot => "https://api.binance.com",
            Market::UsdM => "https://fapi.binance.com",
        }
    }

    const fn prefix(self) -> &'static str {
        match self {
            Market::Spot => "/api/v3",
            Market::UsdM => "/fapi/v1",
        }
    }

    /// Path of an endpoint of this market.
    pub fn path(self, endpoint: Endpoint) -> String {
        format!("{}{}", self.prefix(), endpoint.suffix())
    }

    /// Largest `limit` the klines endpoint accepts.
    pub const fn max_klines_limit(self) -> u32 {
        match self {
            Market::Spot => 1000,
            Market::UsdM => 1500,
        }
    }

    /// `limit` used when the request sends none.
    pub const fn default_klines_limit(self) -> u32 {
        500
    }

    /// Weight of one klines request with this `limit`.
    pub const fn klines_weight(self, limit: u32) -> u32 {
        match self {
            Market::Spot => 2,
            Market::UsdM => match limit {
                0..100 => 1,
                100..500 => 2,
                500..=1000 => 5,
                _ => 10,
            },
        }
    }

    /// Weight of a request to `endpoint` (for klines, at the default limit).
    pub const fn weight(self, endpoint: Endpoint) -> u32 {
        match endpoint {
            Endpoint::Klines => self.klines_weight(self.default_klines_limit()),
            Endpoint::Ping | Endpoint::Time => 1,
            Endpoint::ExchangeInfo => match self {
                Market::Spot => 20,
                Market::UsdM => 1,
            },
        }
    }

    /// The page size that gives the most rows per unit of weight: spot 1000 rows for 2,
    /// USD-M 499 rows for 2 (1500 rows would cost 10).
    pub const fn cheapest_full_page(self) -> u32 {
        match self {
            Market::Spot => 1000,
            Market::UsdM => 499,
        }
    }

    /// The `limit` to ask for when `rows_wanted` rows remain: never larger than needed
    /// (a short tail on USD-M then costs 1 instead of 2), never beyond the cheapest page.
    pub fn page_limit(self, rows_wanted: u64) -> u32 {
        let full = self.cheapest_full_page();
        rows_wanted.clamp(1, u64::from(full)) as u32
    }

    /// Request weight per minute an IP may use (Binance's published default).
    pub const fn default_weight_limit(self) -> u32 {
        match self {
            Market::Spot => 6000,
            Market::UsdM => 2400,
        }
    }

    /// Whether this market serves klines of `interval` (`1s` is spot only).
    pub const fn supports(self, interval: Interval) -> bool {
        !matches!((self, interval), (Market::UsdM, Interval::S1))
    }

    /// The folder of this market in data.binance.vision's `data/` tree.
    pub const fn archive_dir(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::UsdM => "futures/um",
        }
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A market Binance does not have (here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid market '{input}': use 'usdm' (USD-M futures) or 'spot'")]
pub struct ParseMarketError {
    /// What the user typed.
    pub input: String,
}

impl FromStr for Market {
    type Err = ParseMarketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "spot" => Ok(Market::Spot),
            "usdm" | "usd-m" | "futures" | "um" => Ok(Market::UsdM),
            _ => Err(ParseMarketError { input: s.to_string() }),
        }
    }
}

/// The market-data endpoints we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Klines,
    Ping,
    Time,
    ExchangeInfo,
}

impl Endpoint {
    const fn suffix(self) -> &'static str {
        match self {
            Endpoint::Klines => "/klines",
            Endpoint::Ping => "/ping",
            Endpoint::Time => "/time",
            Endpoint::ExchangeInfo => "/exchangeInfo",
        }
    }
}

/// Name of the response header carrying the weight this IP used in the current minute.
pub const USED_WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";

/// Binance error codes we produce or react to (`{"code": …, "msg": …}` bodies).
pub mod error_code {
    /// Internal error; unable to process the request (sent with HTTP 5xx).
    pub const INTERNAL_ERROR: i64 = -1001;
    /// Too much request weight used (HTTP 429, or 418 once banned).
    pub const TOO_MANY_REQUESTS: i64 = -1003;
    /// Start time is greater than end time.
    pub const START_AFTER_END: i64 = -1023;
    /// Illegal characters found in a parameter.
    pub const ILLEGAL_CHARS: i64 = -1100;
    /// A mandatory parameter was not sent, was empty/null, or malformed.
    pub const MANDATORY_PARAM_MISSING: i64 = -1102;
    /// Invalid interval.
    pub const INVALID_INTERVAL: i64 = -1120;
    /// Invalid symbol.
    pub const INVALID_SYMBOL: i64 = -1121;
    /// Data sent for a parameter is not valid (e.g. `limit`).
    pub const INVALID_PARAMETER: i64 = -1130;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_the_docs() {
        assert_eq!(Market::Spot.path(Endpoint::Klines), "/api/v3/klines");
        assert_eq!(Market::UsdM.path(Endpoint::Klines), "/fapi/v1/klines");
        assert_eq!(Market::UsdM.path(Endpoint::ExchangeInfo), "/fapi/v1/exchangeInfo");
        assert_eq!(Market::Spot.path(Endpoint::Time), "/api/v3/time");
    }

    #[test]
    fn usdm_weight_tiers() {
        // BINANCE.md: [1,100) 1 · [100,500) 2 · [500,1000] 5 · >1000 10
        let cases = [
            (1, 1),
            (99, 1),
            (100, 2),
            (499, 2),
            (500, 5),
            (1000, 5),
            (1001, 10),
            (1500, 10),
        ];
        for (limit, weight) in cases {
            assert_eq!(Market::UsdM.klines_weight(limit), weight, "limit {limit}");
        }
        assert_eq!(Market::Spot.klines_weight(1000), 2);
    }

    #[test]
    fn the_cheapest_page_is_the_most_rows_per_weight() {
        for market in Market::ALL {
            let best = market.cheapest_full_page();
            let ratio = |l: u32| f64::from(l) / f64::from(market.klines_weight(l));
            for limit in 1..=market.max_klines_limit() {
                assert!(ratio(limit) <= ratio(best), "{market} limit {limit}");
            }
        }
        assert_eq!(Market::UsdM.page_limit(42), 42);
        assert_eq!(Market::UsdM.page_limit(10_000), 499);
        assert_eq!(Market::Spot.page_limit(10_000), 1000);
    }

    #[test]
    fn names() {
        assert_eq!("usdm".parse::<Market>(), Ok(Market::UsdM));
        assert_eq!("SPOT".parse::<Market>(), Ok(Market::Spot));
        assert!(
            "coinm"
                .parse::<Market>()
                .unwrap_err()
                .to_string()
                .contains("usdm")
        );
        assert!(!Market::UsdM.supports(Interval::S1));
    }
}
