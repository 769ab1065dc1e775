//! Holes in a stream of candles, found as the pages go by.
//!
//! [`HoleFinder`] watches the open times of a series in ascending order — the candles just
//! fetched, and optionally the stored one before them — and records every step longer than
//! one interval (the longest month for `1M`): Binance was asked for that range and had no
//! candle in it. It holds no candles, only the last open time, so finding holes costs
//! nothing per row beyond one comparison. The store finds holes among *stored* candles
//! itself (`Store::holes`, a window function over the primary key).

use binance_spec::Interval;

use crate::series::TimeRange;

/// Records the holes between consecutive open times fed to it.
#[derive(Debug, Clone)]
pub struct HoleFinder {
    /// The longest step between consecutive open times that is not a hole.
    max_step: i64,
    /// The open time fed last (or the stored candle before the range).
    previous: Option<i64>,
    holes: Vec<TimeRange>,
}

impl HoleFinder {
    /// A finder for candles of `interval`; `after` is the open time of the stored candle just
    /// before the first one fed, if any, so that a hole at the junction is found too.
    pub fn new(interval: Interval, after: Option<i64>) -> Self {
        HoleFinder {
            max_step: interval.max_step_ms(),
            previous: after,
            holes: Vec::new(),
        }
    }

    /// Takes the next open times, ascending.
    pub fn feed(&mut self, open_times: impl IntoIterator<Item = i64>) {
        for open in open_times {
            if let Some(previous) = self.previous
                && open - previous > self.max_step
            {
                self.holes.push(TimeRange::new(previous + 1, open));
            }
            self.previous = Some(open);
        }
    }

    /// The holes so far, ascending: each from just after the candle before it (inclusive) to
    /// the candle after it (exclusive).
    pub fn holes(&self) -> &[TimeRange] {
        &self.holes
    }

    /// The holes found.
    pub fn into_holes(self) -> Vec<TimeRange> {
        self.holes
    }
}

#[cfg(test)]
mod tests {
    use binance_spec::time::{DAY_MS, MINUTE_MS, parse_timestamp};

    use super::*;

    fn t(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn steps_longer_than_one_interval_are_holes() {
        let start = t("2024-01-01");
        let mut finder = HoleFinder::new(Interval::M1, None);
        // TC0: consecutive minutes, fed in two pages: no hole.
        finder.feed((0..3).map(|i| start + i * MINUTE_MS));
        finder.feed((3..5).map(|i| start + i * MINUTE_MS));
        assert!(finder.holes().is_empty());
        // TC1: minutes 5..=9 missing, across a page boundary.
        finder.feed([start + 10 * MINUTE_MS, start + 11 * MINUTE_MS]);
        // TC2: an off-grid open time after an outage is a hole up to it, then a short step
        // (less than one interval) is not.
        finder.feed([start + 20 * MINUTE_MS + 789, start + 21 * MINUTE_MS]);
        assert_eq!(
            finder.into_holes(),
            [
                TimeRange::new(start + 4 * MINUTE_MS + 1, start + 10 * MINUTE_MS),
                TimeRange::new(start + 11 * MINUTE_MS + 1, start + 20 * MINUTE_MS + 789),
            ]
        );
    }

    #[test]
    fn the_stored_candle_before_the_range_counts() {
        let stored = t("2024-01-01");
        let mut finder = HoleFinder::new(Interval::H1, Some(stored));
        finder.feed([stored + 3 * 3_600_000]);
        assert_eq!(
            finder.holes(),
            [TimeRange::new(stored + 1, stored + 3 * 3_600_000)]
        );
        let mut joined = HoleFinder::new(Interval::H1, Some(stored));
        joined.feed([stored + 3_600_000]);
        assert!(joined.holes().is_empty());
    }

    #[test]
    fn months_of_any_length_are_not_holes() {
        let mut finder = HoleFinder::new(Interval::Mo1, None);
        finder.feed(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"].map(t));
        assert!(finder.holes().is_empty());
        finder.feed([t("2024-06-01")]);
        assert_eq!(
            finder.holes(),
            [TimeRange::new(t("2024-04-01") + 1, t("2024-06-01"))]
        );
        assert!(t("2024-06-01") - t("2024-04-01") > 31 * DAY_MS);
    }
}
