//! The kline (candlestick) row, exactly as Binance serves it.
//!
//! ```json
//! [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
//!  1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "17928899.62484339"]
//! ```
//!
//! Every price and volume is a decimal string; [`Decimal`] keeps its value and its scale, so
//! `"0.01634790"` prints back as `"0.01634790"`, never as a float.

pub use rust_decimal::Decimal;

/// One kline: the 12 fields of Binance's row, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kline {
    /// Open time, epoch ms: the row's identity.
    pub open_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Base-asset volume.
    pub volume: Decimal,
    /// Close time, epoch ms; normally `next open - 1`, earlier for a candle cut short at a halt,
    /// and in the future while the candle is still forming.
    pub close_time: i64,
    /// Quote-asset volume.
    pub quote_volume: Decimal,
    /// Number of trades.
    pub trades: u64,
    /// Taker buy base-asset volume.
    pub taker_buy_base_volume: Decimal,
    /// Taker buy quote-asset volume.
    pub taker_buy_quote_volume: Decimal,
    /// The 12th field, documented as "Unused field, ignore" (`"0"` today, a number in old rows).
    pub ignore: Decimal,
}

impl Kline {
    /// Appends the row as Binance's JSON array.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            r#"[{},"{}","{}","{}","{}","{}",{},"{}",{},"{}","{}","{}"]"#,
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.close_time,
            self.quote_volume,
            self.trades,
            self.taker_buy_base_volume,
            self.taker_buy_quote_volume,
            self.ignore,
        );
    }

    /// Whether the candle had closed at `now_ms` (its close time is in the past).
    pub fn is_closed_at(&self, now_ms: i64) -> bool {
        self.close_time < now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_docs_row_byte_for_byte() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let k = Kline {
            open_time: 1_499_040_000_000,
            open: d("0.01634790"),
            high: d("0.80000000"),
            low: d("0.01575800"),
            close: d("0.01577100"),
            volume: d("148976.11427815"),
            close_time: 1_499_644_799_999,
            quote_volume: d("2434.19055334"),
            trades: 308,
            taker_buy_base_volume: d("1756.87402397"),
            taker_buy_quote_volume: d("28.46694368"),
            ignore: d("17928899.62484339"),
        };
        let mut s = String::new();
        k.write_json(&mut s);
        assert_eq!(
            s,
            r#"[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","17928899.62484339"]"#
        );
    }
}
