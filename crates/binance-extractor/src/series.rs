//! The identity of what we store: a symbol, a series (market × symbol × interval) and a
//! half-open time range.
//!
//! These are the typed values the rest of the crate works with; raw strings from the command
//! line are turned into them once, in [`crate::settings`].

use std::{fmt, str::FromStr, sync::Arc};

use binance_spec::{Interval, Market, time::format_rfc3339_ms};

/// A Binance symbol such as `BTCUSDT`, upper-cased, safe to use as a NATS subject token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// The symbol as Binance spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A symbol that cannot be used (it would also make an invalid NATS subject).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("empty symbol: list symbols like BTCUSDT,ETHUSDT without empty entries")]
    Empty,
    #[error(
        "invalid symbol '{0}': symbols are letters and digits like BTCUSDT (no '.', '*', '>' or spaces, which NATS subjects cannot carry)"
    )]
    Invalid(String),
}

impl FromStr for Symbol {
    type Err = SymbolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(SymbolError::Empty);
        }
        // Binance symbols are upper-case ASCII letters and digits (a few carry '-' or '_');
        // anything else is either a typo or would break the NATS subject.
        let ok = trimmed.len() <= 32
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(SymbolError::Invalid(s.to_string()));
        }
        Ok(Symbol(Arc::from(trimmed.to_ascii_uppercase())))
    }
}

/// Everything stored for one market, symbol and interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub market: Market,
    pub symbol: Symbol,
    pub interval: Interval,
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.market, self.symbol, self.interval)
    }
}

/// Open times in `[start, end)`, epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl TimeRange {
    /// The range `[start, end)`; empty when `end <= start`.
    pub const fn new(start: i64, end: i64) -> Self {
        TimeRange { start, end }
    }

    /// Whether no open time fits.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `t` is inside.
    pub const fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})",
            format_rfc3339_ms(self.start),
            format_rfc3339_ms(self.end)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_validated_and_upper_cased() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("BTCUSDT", Ok("BTCUSDT")),
            (" ethusdt ", Ok("ETHUSDT")),
            ("1000SHIBUSDT", Ok("1000SHIBUSDT")),
            ("BTCUSD_PERP", Ok("BTCUSD_PERP")),
            ("", Err(())),
            ("BTC.USDT", Err(())),
            ("BTC*", Err(())),
            ("BTC>", Err(())),
            ("BTC USDT", Err(())),
            ("BTC\tUSDT", Err(())),
        ];
        for (input, want) in cases {
            let got = input.parse::<Symbol>();
            match want {
                Ok(s) => assert_eq!(got.unwrap().as_str(), *s, "{input:?}"),
                Err(()) => assert!(got.is_err(), "{input:?} should be rejected"),
            }
        }
    }

    #[test]
    fn ranges_are_half_open() {
        let r = TimeRange::new(10, 20);
        assert!(r.contains(10) && r.contains(19) && !r.contains(20));
        assert!(TimeRange::new(5, 5).is_empty());
        assert_eq!(
            TimeRange::new(0, 1_705_314_600_000).to_string(),
            "[1970-01-01T00:00:00.000Z, 2024-01-15T10:30:00.000Z)"
        );
    }
}
