//! Synthetic klines: every candle is a pure function of (seed, market, symbol, interval,
//! open time), so any paging of any range gives the same rows, and nothing is stored.
//!
//! All arithmetic is fixed-point on integers (prices are mantissas at the symbol's tick
//! scale), hashed with splitmix64; nothing goes through floats, so output is exact and fast.
//!
//! - **Price path** `P(t)`: a symbol's base price times `1 + Σ value-noise octaves` (periods
//!   from 64 days down to 10 seconds, linear between hashed knots). It depends on the seed and
//!   the symbol only, so spot and USD-M track each other and a candle's open is the same on
//!   every interval. `open = P(open_time)`, `close = P(next_open)`, so a candle's close is the
//!   next candle's open; high/low extend past them by a hashed, interval-sized range.
//! - **Volumes**: a symbol's quote turnover per minute × interval length × hashed noise,
//!   divided by the candle's mean price; quote volume = volume × mean price; taker buy is 25-75 %
//!   of it; trades = turnover / a typical trade size.
//! - **Quirks**: about 1 candle in 500 has no trades (O=H=L=C, volumes 0, trades 0).
//! - **Forming candle**: the candle containing "now" closes at `P(now)` and carries only the
//!   elapsed fraction of its volume; its close time is its normal (future) one.
//! - **Scales like real data**: spot prints prices and volumes with 8 decimals (prices on a
//!   tick of 0.01 for a 30000 price); USD-M prints prices at the tick (2 decimals at 30000,
//!   more for small prices), volumes with 3, quote volumes with 3 + price decimals.

use binance_spec::{Decimal, Interval, Kline, Market};

use super::json::{push_i64, push_quoted_fixed, push_u64};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const PPM: u64 = 1_000_000;

/// The splitmix64 finaliser: a good 64-bit mix of `x`.
pub(crate) fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `n`-th output of the splitmix64 stream seeded with `key`.
pub(crate) fn stream(key: u64, n: u64) -> u64 {
    mix64(key.wrapping_add(n.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// A uniform draw in `[0, n)` from the high bits of `h`.
fn below(h: u64, n: u64) -> u64 {
    (((h >> 32) * n) >> 32).min(n.saturating_sub(1))
}

/// FNV-1a of a symbol name.
pub(crate) fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Octaves of the price path: (period ms, amplitude in ppm of the base price).
const OCTAVES: [(i64, i64); 7] = [
    (64 * 86_400_000, 300_000),
    (8 * 86_400_000, 120_000),
    (86_400_000, 40_000),
    (3 * 3_600_000, 15_000),
    (20 * 60_000, 5_000),
    (2 * 60_000, 1_500),
    (10_000, 400),
];

const STABLE_QUOTES: [&str; 6] = ["USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI"];
const CRYPTO_QUOTES: [&str; 3] = ["BTC", "ETH", "BNB"];

/// Splits `BTCUSDT` into (`BTC`, `USDT`); a symbol with no known quote asset is all base,
/// quoted in USDT.
pub(crate) fn split_symbol(symbol: &str) -> (String, String) {
    let quotes = STABLE_QUOTES
        .iter()
        .chain(CRYPTO_QUOTES.iter())
        .chain(["EUR", "TRY", "BRL", "JPY"].iter());
    for quote in quotes {
        if let Some(base) = symbol.strip_suffix(quote)
            && !base.is_empty()
        {
            return (base.to_string(), quote.to_string());
        }
    }
    (symbol.to_string(), "USDT".to_string())
}

/// What makes one symbol's numbers its own: price level and tick, turnover, trade size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SymbolProfile {
    /// Keys of the price-path octaves (seed and symbol).
    octave_keys: [u64; OCTAVES.len()],
    /// The base price as a mantissa at `price_scale`.
    base_price: u64,
    /// Decimals of the tick: 2 for a 30000 price, 5 for 0.38, at most 8.
    pub(crate) price_scale: u32,
    /// Spot turnover per minute in hundredths of the quote asset.
    quote_cents_per_min: u64,
    /// Typical trade size in hundredths of the quote asset.
    trade_cents: u64,
    name_hash: u64,
}

impl SymbolProfile {
    pub(crate) fn new(seed: u64, symbol: &str) -> Self {
        let (base, quote) = split_symbol(symbol);
        let hash = name_hash(symbol);
        let (h1, h2, h3, h4) = (stream(hash, 1), stream(hash, 2), stream(hash, 3), stream(hash, 4));
        let stable = STABLE_QUOTES.contains(&quote.as_str());
        // Price = lead × 10^(int_digits − 3), lead in 100..1000.
        let (lead, int_digits, quote_cents_per_min, trade_cents) = if base == "BTC" && stable {
            (300, 5, 120_000_000, 110_000)
        } else if stable {
            let digits = below(h1, 6) as i32 - 1; // 0.0x .. xxxx.
            let turnover = (100 + below(h3, 900)) * 10u64.pow(4 + below(h4, 3) as u32);
            (
                100 + below(h2, 900),
                digits,
                turnover,
                20_000 + below(h4, 180_000),
            )
        } else {
            let digits = below(h1, 4) as i32 - 4; // 0.0000x .. 0.0x
            let turnover = (100 + below(h3, 900)) * 10u64.pow(1 + below(h4, 2) as u32);
            (100 + below(h2, 900), digits, turnover, 1)
        };
        let price_scale = (5 - int_digits).clamp(2, 8) as u32;
        let exponent = (int_digits - 3 + price_scale as i32) as u32;
        let key = mix64(seed ^ mix64(hash ^ 0x5052_4943_4550_4154));
        Self {
            octave_keys: std::array::from_fn(|i| stream(key, i as u64)),
            base_price: lead * 10u64.pow(exponent),
            price_scale,
            quote_cents_per_min,
            trade_cents,
            name_hash: hash,
        }
    }

    /// `P(t)`: the price at `t` as a mantissa at `price_scale`.
    pub(crate) fn price(&self, t: i64) -> u64 {
        let mut dev_ppm = 0i64;
        for (key, &(period, amp)) in self.octave_keys.iter().zip(OCTAVES.iter()) {
            let knot = t.div_euclid(period);
            let into = t.rem_euclid(period);
            let value = |k: i64| below(stream(*key, k as u64), 2 * amp as u64 + 1) as i64 - amp;
            let (v0, v1) = (value(knot), value(knot + 1));
            dev_ppm += v0 + (v1 - v0) * into / period;
        }
        let price = self.base_price as i64 * (PPM as i64 + dev_ppm) / PPM as i64;
        price.max(1) as u64
    }
}

/// Typical high-low range of a candle, in ppm of its price (≈ 300 ppm × √minutes).
const fn range_ppm(interval: Interval) -> u64 {
    match interval {
        Interval::S1 => 40,
        Interval::M1 => 300,
        Interval::M3 => 520,
        Interval::M5 => 670,
        Interval::M15 => 1_160,
        Interval::M30 => 1_640,
        Interval::H1 => 2_320,
        Interval::H2 => 3_290,
        Interval::H4 => 4_650,
        Interval::H6 => 5_690,
        Interval::H8 => 6_570,
        Interval::H12 => 8_050,
        Interval::D1 => 11_400,
        Interval::D3 => 19_700,
        Interval::W1 => 30_100,
        Interval::Mo1 => 62_000,
    }
}

/// One candle in fixed point, at its series' scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candle {
    pub open_time: i64,
    pub open: u64,
    pub high: u64,
    pub low: u64,
    pub close: u64,
    pub volume: u128,
    pub close_time: i64,
    pub quote_volume: u128,
    pub trades: u64,
    pub taker_base: u128,
    pub taker_quote: u128,
}

/// The generator of one (market, symbol, interval).
#[derive(Debug, Clone)]
pub(crate) struct SynthSeries<'a> {
    profile: &'a SymbolProfile,
    interval: Interval,
    key: u64,
    /// Multiplier from the tick scale to the printed price scale (10^(8 − tick) on spot).
    price_mult: u64,
    price_out_scale: u32,
    volume_scale: u32,
    quote_scale: u32,
    /// 10^(volume_scale + price_scale) / 100: volume × price → hundredths of quote.
    per_cent: u128,
    /// 10^(volume_scale + price_scale − quote_scale).
    quote_div: u128,
    quote_cents_per_min: u128,
}

impl<'a> SynthSeries<'a> {
    pub(crate) fn new(seed: u64, market: Market, profile: &'a SymbolProfile, interval: Interval) -> Self {
        let d = profile.price_scale;
        let (price_mult, price_out_scale, volume_scale, quote_scale, turnover_mult) = match market {
            Market::Spot => (10u64.pow(8 - d), 8, 8, 8, 1),
            Market::UsdM => (1, d, 3, 3 + d, 3),
        };
        let market_salt = match market {
            Market::Spot => 0x5350_4f54,
            Market::UsdM => 0x5553_444d,
        };
        let interval_salt = interval.as_str().bytes().fold(0u64, |h, b| h << 8 | u64::from(b));
        let key = mix64(seed ^ mix64(profile.name_hash ^ mix64(market_salt ^ mix64(interval_salt))));
        Self {
            profile,
            interval,
            key,
            price_mult,
            price_out_scale,
            volume_scale,
            quote_scale,
            per_cent: 10u128.pow(volume_scale + d) / 100,
            quote_div: 10u128.pow(volume_scale + d - quote_scale),
            quote_cents_per_min: u128::from(profile.quote_cents_per_min * turnover_mult),
        }
    }

    /// The candle opening at `open` (next candle at `next_open`) as seen at `now`, given the
    /// path prices at its open and at its close (`P(now)` if it is still forming).
    fn candle(&self, open: i64, next_open: i64, p_open: u64, p_close: u64, now: i64) -> Candle {
        let h = stream(self.key, open as u64);
        let close_time = next_open - 1;
        let quiet = Candle {
            open_time: open,
            open: p_open,
            high: p_open,
            low: p_open,
            close: p_open,
            volume: 0,
            close_time,
            quote_volume: 0,
            trades: 0,
            taker_base: 0,
            taker_quote: 0,
        };
        if h.is_multiple_of(500) {
            return quiet;
        }
        let (o, c) = (p_open, p_close);
        let range = range_ppm(self.interval) * (200_000 + below(stream(h, 1), 1_300_000)) / PPM;
        let up = range * below(stream(h, 2), 1_001) / 1_000;
        let down = range - up;
        let (top, bottom) = (o.max(c), o.min(c));
        let high = top + top * up / PPM;
        let low = (bottom - bottom * down / PPM).max(1);
        let vwap = u128::from((o + high + low + c) / 4).max(1);

        let duration = (next_open - open) as u128;
        let noise = u128::from(350_000 + below(stream(h, 3), 2_500_000));
        let mut cents = self.quote_cents_per_min * duration * noise / (60_000 * u128::from(PPM));
        let forming = now < next_open;
        if forming {
            let elapsed = (now - open).max(0) as u128;
            cents = cents * elapsed / duration;
        }
        let volume = cents * self.per_cent / vwap;
        if volume == 0 {
            return quiet;
        }
        let quote_full = volume * vwap;
        let taker_share = u128::from(250_000 + below(stream(h, 4), 500_000));
        let taker_base = volume * taker_share / u128::from(PPM);
        let trade_noise = u128::from(700_000 + below(stream(h, 5), 700_000));
        let trades = (quote_full / self.per_cent) * trade_noise
            / (u128::from(self.profile.trade_cents) * u128::from(PPM));
        Candle {
            open_time: open,
            open: o,
            high,
            low,
            close: c,
            volume,
            close_time,
            quote_volume: quote_full / self.quote_div,
            trades: (trades as u64).max(1),
            taker_base,
            taker_quote: taker_base * vwap / self.quote_div,
        }
    }

    /// The candles opening at each of `opens` (ascending, all at or before `now`), passed to
    /// `each` in order. Consecutive candles share the path price at their boundary.
    pub(crate) fn for_each(&self, opens: &[i64], now: i64, mut each: impl FnMut(&Candle)) {
        let mut cached: Option<(i64, u64)> = None;
        let price_at = |t: i64, cached: &mut Option<(i64, u64)>| match *cached {
            Some((at, p)) if at == t => p,
            _ => self.profile.price(t),
        };
        for &open in opens {
            let next = self.interval.next_open(open);
            let p_open = price_at(open, &mut cached);
            let candle = if now < next {
                let p_now = self.profile.price(now);
                self.candle(open, next, p_open, p_now, now)
            } else {
                let p_close = self.profile.price(next);
                cached = Some((next, p_close));
                self.candle(open, next, p_open, p_close, now)
            };
            each(&candle);
        }
    }

    /// Appends `candle` as Binance's JSON array.
    pub(crate) fn write_json(&self, candle: &Candle, out: &mut Vec<u8>) {
        let price = |p: u64| u128::from(p * self.price_mult);
        out.push(b'[');
        push_i64(out, candle.open_time);
        for p in [candle.open, candle.high, candle.low, candle.close] {
            out.push(b',');
            push_quoted_fixed(out, price(p), self.price_out_scale);
        }
        out.push(b',');
        push_quoted_fixed(out, candle.volume, self.volume_scale);
        out.push(b',');
        push_i64(out, candle.close_time);
        out.push(b',');
        push_quoted_fixed(out, candle.quote_volume, self.quote_scale);
        out.push(b',');
        push_u64(out, candle.trades);
        out.push(b',');
        push_quoted_fixed(out, candle.taker_base, self.volume_scale);
        out.push(b',');
        push_quoted_fixed(out, candle.taker_quote, self.quote_scale);
        out.extend_from_slice(b",\"0\"]");
    }

    /// `candle` as a [`Kline`] with the same values and scales as [`Self::write_json`].
    pub(crate) fn to_kline(&self, candle: &Candle) -> Kline {
        let dec = |m: u128, scale: u32| Decimal::from_i128_with_scale(m as i128, scale);
        let price = |p: u64| dec(u128::from(p * self.price_mult), self.price_out_scale);
        Kline {
            open_time: candle.open_time,
            open: price(candle.open),
            high: price(candle.high),
            low: price(candle.low),
            close: price(candle.close),
            volume: dec(candle.volume, self.volume_scale),
            close_time: candle.close_time,
            quote_volume: dec(candle.quote_volume, self.quote_scale),
            trades: candle.trades,
            taker_buy_base_volume: dec(candle.taker_base, self.volume_scale),
            taker_buy_quote_volume: dec(candle.taker_quote, self.quote_scale),
            ignore: Decimal::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use binance_spec::time::parse_timestamp;

    fn t(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    fn candles(
        market: Market,
        symbol: &str,
        interval: Interval,
        from: i64,
        n: usize,
        now: i64,
    ) -> Vec<Kline> {
        let profile = SymbolProfile::new(7, symbol);
        let series = SynthSeries::new(7, market, &profile, interval);
        let mut opens = vec![interval.open_containing(from)];
        while opens.len() < n {
            opens.push(interval.next_open(*opens.last().unwrap()));
        }
        let mut out = Vec::new();
        series.for_each(&opens, now, |c| out.push(series.to_kline(c)));
        out
    }

    #[test]
    fn symbols_split_into_assets() {
        let cases = [
            ("BTCUSDT", "BTC", "USDT"),
            ("ETHBTC", "ETH", "BTC"),
            ("1INCHUSDT", "1INCH", "USDT"),
            ("BNBFDUSD", "BNB", "FDUSD"),
            ("USDT", "USDT", "USDT"),
        ];
        for (symbol, base, quote) in cases {
            assert_eq!(
                split_symbol(symbol),
                (base.to_string(), quote.to_string()),
                "{symbol}"
            );
        }
    }

    #[test]
    fn price_levels_and_ticks_look_real() {
        let btc = SymbolProfile::new(0, "BTCUSDT");
        assert_eq!(btc.price_scale, 2);
        let p = btc.price(t("2024-01-01")) as f64 / 100.0;
        assert!((10_000.0..50_000.0).contains(&p), "BTC at {p}");
        let levels: Vec<u64> = ["ETHUSDT", "ADAUSDT", "XRPUSDT", "SOLUSDT"]
            .iter()
            .map(|s| SymbolProfile::new(0, s).base_price)
            .collect();
        let mut distinct = levels.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), levels.len(), "{levels:?}");
    }

    #[test]
    fn candles_are_valid_and_continuous() {
        let now = t("2030-01-01");
        for market in Market::ALL {
            for symbol in ["BTCUSDT", "ADAUSDT", "ETHBTC"] {
                for interval in [Interval::M1, Interval::H1, Interval::D1, Interval::Mo1] {
                    let rows = candles(market, symbol, interval, t("2023-01-01"), 600, now);
                    for (i, k) in rows.iter().enumerate() {
                        let ctx = format!("{market} {symbol} {interval} row {i}: {k:?}");
                        assert!(k.low <= k.open && k.low <= k.close, "{ctx}");
                        assert!(k.high >= k.open && k.high >= k.close, "{ctx}");
                        assert!(k.taker_buy_base_volume <= k.volume, "{ctx}");
                        assert!(k.taker_buy_quote_volume <= k.quote_volume, "{ctx}");
                        assert_eq!(k.close_time, interval.close_time(k.open_time), "{ctx}");
                        if k.trades > 0 && k.volume > Decimal::ZERO {
                            let mean = k.quote_volume / k.volume;
                            assert!(
                                mean >= k.low * Decimal::new(99, 2) && mean <= k.high * Decimal::new(101, 2),
                                "{ctx}"
                            );
                        }
                        if let Some(next) = rows.get(i + 1)
                            && k.trades > 0
                        {
                            assert_eq!(k.close, next.open, "{ctx}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn about_one_candle_in_500_is_quiet() {
        let rows = candles(
            Market::Spot,
            "ETHUSDT",
            Interval::M1,
            t("2022-01-01"),
            100_000,
            t("2030-01-01"),
        );
        let quiet: Vec<&Kline> = rows.iter().filter(|k| k.trades == 0).collect();
        assert!((120..300).contains(&quiet.len()), "{} quiet candles", quiet.len());
        for k in quiet {
            assert!(k.open == k.high && k.high == k.low && k.low == k.close, "{k:?}");
            assert!(k.volume.is_zero() && k.quote_volume.is_zero() && k.taker_buy_base_volume.is_zero());
        }
    }

    #[test]
    fn scales_follow_the_market() {
        let now = t("2030-01-01");
        let spot = &candles(Market::Spot, "BTCUSDT", Interval::H1, t("2024-01-01"), 1, now)[0];
        let usdm = &candles(Market::UsdM, "BTCUSDT", Interval::H1, t("2024-01-01"), 1, now)[0];
        assert_eq!(
            (spot.open.scale(), spot.volume.scale(), spot.quote_volume.scale()),
            (8, 8, 8)
        );
        assert_eq!(
            (usdm.open.scale(), usdm.volume.scale(), usdm.quote_volume.scale()),
            (2, 3, 5)
        );
        // Spot prices sit on a 0.01 tick, printed with 8 decimals: "28923.63000000".
        assert!(spot.open.to_string().ends_with("000000"), "{}", spot.open);
        // The two markets follow one price path.
        assert_eq!(spot.open, usdm.open);
        let ada = &candles(Market::UsdM, "ADAUSDT", Interval::H1, t("2024-01-01"), 1, now)[0];
        assert!(ada.open.scale() > 2, "{}", ada.open);
    }

    #[test]
    fn the_forming_candle_carries_the_elapsed_share() {
        let open = t("2024-01-01T10:00:00Z");
        let half = open + 30 * 60_000;
        let forming = &candles(Market::Spot, "BTCUSDT", Interval::H1, open, 1, half)[0];
        let closed = &candles(Market::Spot, "BTCUSDT", Interval::H1, open, 1, t("2030-01-01"))[0];
        assert_eq!(forming.open, closed.open);
        assert_eq!(
            forming.close_time, closed.close_time,
            "a forming candle keeps its future close time"
        );
        assert!(forming.volume < closed.volume);
        assert_ne!(forming.close, closed.close);
    }
}
