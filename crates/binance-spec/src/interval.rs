//! Kline intervals (`1m`, `15m`, `1M`, …) and where their candles start.
//!
//! Binance spells intervals case-sensitively (`1m` is a minute, `1M` a calendar month). Every
//! fixed interval is aligned to the Unix epoch, except `1w`, whose candles open on Mondays
//! 00:00 UTC, and `1M`, whose candles open on the first day of each month.

use std::{fmt, str::FromStr};

use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, add_months, month_start};

/// A Binance kline interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    S1,
    M1,
    M3,
    M5,
    M15,
    M30,
    H1,
    H2,
    H4,
    H6,
    H8,
    H12,
    D1,
    D3,
    W1,
    Mo1,
}

/// Monday 1970-01-05 00:00 UTC: weekly candles are aligned to it.
const FIRST_MONDAY_MS: i64 = 4 * DAY_MS;
/// The longest calendar month.
const LONGEST_MONTH_MS: i64 = 31 * DAY_MS;

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 16] = [
        Interval::S1,
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
        Interval::Mo1,
    ];

    /// The spelling Binance uses (`15m`, `1M`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
            Interval::Mo1 => "1M",
        }
    }

    /// The spelling of data.binance.vision's archive paths (`1mo` for the month).
    pub const fn archive_name(self) -> &'static str {
        match self {
            Interval::Mo1 => "1mo",
            other => other.as_str(),
        }
    }

    /// Length in milliseconds, or `None` for the calendar month.
    pub const fn fixed_ms(self) -> Option<i64> {
        Some(match self {
            Interval::S1 => SECOND_MS,
            Interval::M1 => MINUTE_MS,
            Interval::M3 => 3 * MINUTE_MS,
            Interval::M5 => 5 * MINUTE_MS,
            Interval::M15 => 15 * MINUTE_MS,
            Interval::M30 => 30 * MINUTE_MS,
            Interval::H1 => HOUR_MS,
            Interval::H2 => 2 * HOUR_MS,
            Interval::H4 => 4 * HOUR_MS,
            Interval::H6 => 6 * HOUR_MS,
            Interval::H8 => 8 * HOUR_MS,
            Interval::H12 => 12 * HOUR_MS,
            Interval::D1 => DAY_MS,
            Interval::D3 => 3 * DAY_MS,
            Interval::W1 => 7 * DAY_MS,
            Interval::Mo1 => return None,
        })
    }

    /// The largest distance between two consecutive open times that is not a hole: one
    /// interval, or the longest month (31 days) for `1M`. Open times further apart than this
    /// have at least one candle missing between them.
    pub const fn max_step_ms(self) -> i64 {
        match self.fixed_ms() {
            Some(ms) => ms,
            None => LONGEST_MONTH_MS,
        }
    }

    /// Open time of the candle that contains `ms`.
    pub fn open_containing(self, ms: i64) -> i64 {
        match self {
            Interval::Mo1 => month_start(ms),
            Interval::W1 => {
                let week = 7 * DAY_MS;
                (ms - FIRST_MONDAY_MS).div_euclid(week) * week + FIRST_MONDAY_MS
            }
            other => {
                let len = other.fixed_ms().unwrap_or(1);
                ms.div_euclid(len) * len
            }
        }
    }

    /// Open time of the first candle that opens at or after `ms`.
    pub fn open_at_or_after(self, ms: i64) -> i64 {
        let open = self.open_containing(ms);
        if open == ms { open } else { self.next_open(open) }
    }

    /// Open time of the candle after the one opening at `open` (which must be aligned).
    pub fn next_open(self, open: i64) -> i64 {
        match self.fixed_ms() {
            Some(len) => open + len,
            None => add_months(open, 1),
        }
    }

    /// Close time Binance gives a full candle opening at `open`: the next open minus 1 ms.
    pub fn close_time(self, open: i64) -> i64 {
        self.next_open(open) - 1
    }

    /// Number of candle open times in `[start, end)` on this interval's grid.
    pub fn count_opens(self, start: i64, end: i64) -> u64 {
        if end <= start {
            return 0;
        }
        let first = self.open_at_or_after(start);
        if first >= end {
            return 0;
        }
        match self.fixed_ms() {
            Some(len) => ((end - 1 - first) / len + 1) as u64,
            None => {
                let (mut n, mut t) = (0, first);
                while t < end {
                    n += 1;
                    t = add_months(t, 1);
                }
                n
            }
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An interval Binance does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid period '{input}': valid periods are {}", valid_list())]
pub struct ParseIntervalError {
    /// What the user typed.
    pub input: String,
}

fn valid_list() -> String {
    Interval::ALL.map(Interval::as_str).join(", ")
}

impl FromStr for Interval {
    type Err = ParseIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| ParseIntervalError { input: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_timestamp;

    fn t(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn spelling_round_trips_and_is_case_sensitive() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>(), Ok(i));
        }
        assert_eq!("1M".parse::<Interval>(), Ok(Interval::Mo1));
        assert_eq!("1m".parse::<Interval>(), Ok(Interval::M1));
        let err = "7m".parse::<Interval>().unwrap_err().to_string();
        assert!(
            err.contains("'7m'") && err.contains("15m") && err.contains("1M"),
            "{err}"
        );
    }

    #[test]
    fn real_open_and_close_times() {
        // The 1d row of Binance's own docs: open 1499040000000, close 1499644799999 is 1w.
        assert_eq!(
            Interval::W1.open_containing(1_499_040_000_000 + 5 * DAY_MS),
            1_499_040_000_000
        );
        assert_eq!(Interval::W1.close_time(1_499_040_000_000), 1_499_644_799_999);
        // Weekly candles open on Mondays: 2024-01-01 was a Monday.
        assert_eq!(
            Interval::W1.open_containing(t("2024-01-07T23:59:59Z")),
            t("2024-01-01")
        );
        assert_eq!(
            Interval::M15.open_containing(t("2024-01-15T10:44:59.999Z")),
            t("2024-01-15T10:30:00Z")
        );
        assert_eq!(Interval::D3.open_containing(1_499_990_400_000), 1_499_990_400_000);
    }

    #[test]
    fn calendar_months() {
        assert_eq!(Interval::Mo1.next_open(t("2024-01-01")), t("2024-02-01"));
        assert_eq!(Interval::Mo1.close_time(t("2024-02-01")), t("2024-03-01") - 1);
        assert_eq!(
            Interval::Mo1.open_at_or_after(t("2024-02-01T00:00:00.001Z")),
            t("2024-03-01")
        );
        assert_eq!(Interval::Mo1.count_opens(t("2023-12-15"), t("2024-03-01")), 2);
        assert_eq!(
            Interval::Mo1.count_opens(t("2023-12-01"), t("2024-03-01T00:00:00.001Z")),
            4
        );
        // A missing month is at least 59 days between opens, a present one at most 31.
        assert!(t("2024-03-01") - t("2024-01-01") > Interval::Mo1.max_step_ms());
        assert!(t("2024-02-01") - t("2024-01-01") <= Interval::Mo1.max_step_ms());
    }

    #[test]
    fn counts_grid_points() {
        let day = t("2024-01-01");
        assert_eq!(Interval::M15.count_opens(day, day + DAY_MS), 96);
        assert_eq!(Interval::M15.count_opens(day + 1, day + DAY_MS), 95);
        assert_eq!(Interval::M15.count_opens(day, day + 1), 1);
        assert_eq!(Interval::M15.count_opens(day, day), 0);
        assert_eq!(Interval::H1.count_opens(day + 1, day + HOUR_MS), 0);
    }
}
