//! The workloads of `bx-bench e2e`: which series, which range, which market, and the least
//! request weight Binance's price list allows for them.

use binance_spec::{Interval, Market, time::parse_timestamp};

/// A named extraction: every closed candle of `symbols` × `interval` in `[start, end)`.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Short name, shown in the table.
    pub name: &'static str,
    /// What it stands for, shown in the notes.
    pub what: &'static str,
    pub market: Market,
    pub interval: Interval,
    pub symbols: Vec<&'static str>,
    /// First open time (epoch ms, inclusive).
    pub start: i64,
    /// End of the range (epoch ms, exclusive); the simulator's frozen "now" is set here, so
    /// the last candle of the range is the newest closed one and `sync` stops there too.
    pub end: i64,
}

/// The eight symbols of the jobs we replace (the extractor's and the simulator's default).
const EIGHT: [&str; 8] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT", "SOLUSDT", "LINKUSDT", "LTCUSDT", "XRPUSDT",
];

fn ms(date: &str) -> i64 {
    parse_timestamp(date).expect("a valid date")
}

impl Workload {
    /// The Python extractor's job (issue 8): 8 symbols × 15m × 2023-01-01..2025-01-01 on
    /// USD-M = 561,408 candles.
    pub fn standard() -> Self {
        Workload {
            name: "standard",
            what: "8 symbols × 15m × 2023-01-01..2025-01-01, USD-M",
            market: Market::UsdM,
            interval: Interval::M15,
            symbols: EIGHT.to_vec(),
            start: ms("2023-01-01"),
            end: ms("2025-01-01"),
        }
    }

    /// A long one: 10 symbols × 1m × the year 2024 on USD-M = 5,270,400 candles.
    pub fn long() -> Self {
        let mut symbols = EIGHT.to_vec();
        symbols.extend(["DOGEUSDT", "DOTUSDT"]);
        Workload {
            name: "long",
            what: "10 symbols × 1m × 2024-01-01..2025-01-01, USD-M",
            market: Market::UsdM,
            interval: Interval::M1,
            symbols,
            start: ms("2024-01-01"),
            end: ms("2025-01-01"),
        }
    }

    /// Spot, where a 1000-row page costs 2: 8 symbols × 1m × 2024-01-01..2024-03-01 =
    /// 691,200 candles.
    pub fn spot() -> Self {
        Workload {
            name: "spot",
            what: "8 symbols × 1m × 2024-01-01..2024-03-01, spot",
            market: Market::Spot,
            interval: Interval::M1,
            symbols: EIGHT.to_vec(),
            start: ms("2024-01-01"),
            end: ms("2024-03-01"),
        }
    }

    /// Candles per symbol on the interval grid (the simulator has no holes here).
    pub fn rows_per_symbol(&self) -> u64 {
        self.interval.count_opens(self.start, self.end)
    }

    /// Candles in all.
    pub fn rows(&self) -> u64 {
        self.rows_per_symbol() * self.symbols.len() as u64
    }

    /// The least klines weight that can fetch the workload: per symbol, pages of the
    /// cheapest size at its price and one last page of the rest.
    pub fn weight_floor(&self) -> u64 {
        least_weight(self.market, self.rows_per_symbol()) * self.symbols.len() as u64
    }
}

/// The least klines weight that fetches `rows` consecutive candles on `market`: for each
/// number of pages, the cheapest split, taking Binance's price list as it is (USD-M weight
/// goes by `limit` tier; spot is flat).
pub fn least_weight(market: Market, rows: u64) -> u64 {
    if rows == 0 {
        return 0;
    }
    let max = u64::from(market.max_klines_limit());
    // Every tier's best page is its largest limit; the rest goes in one last page.
    let tiers: Vec<u64> = (1..=max)
        .filter(|&l| l == max || market.klines_weight(l as u32) < market.klines_weight(l as u32 + 1))
        .collect();
    tiers
        .iter()
        .map(|&page| {
            let full = rows / page;
            let rest = rows % page;
            let last = if rest == 0 {
                0
            } else {
                u64::from(market.klines_weight(rest as u32))
            };
            full * u64::from(market.klines_weight(page as u32)) + last
        })
        .min()
        .expect("at least one tier")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_have_the_sizes_of_the_issue() {
        assert_eq!(Workload::standard().rows(), 561_408);
        assert_eq!(Workload::long().rows(), 5_270_400);
        assert_eq!(Workload::spot().rows(), 691_200);
    }

    #[test]
    fn the_floor_takes_the_cheapest_pages() {
        // USD-M: 499 rows for 2; a tail under 100 rows for 1.
        assert_eq!(least_weight(Market::UsdM, 499), 2);
        assert_eq!(least_weight(Market::UsdM, 998), 4);
        assert_eq!(least_weight(Market::UsdM, 1000), 5);
        assert_eq!(least_weight(Market::UsdM, 600), 4);
        // 70,176 = 140 × 499 + 316.
        assert_eq!(least_weight(Market::UsdM, 70_176), 282);
        // Spot: 1000 rows for 2, any tail for 2.
        assert_eq!(least_weight(Market::Spot, 1000), 2);
        assert_eq!(least_weight(Market::Spot, 86_400), 174);
    }
}
