//! Where klines come from: the symbol universe and, per (market, symbol, interval), either
//! the synthetic generator (`synthetic.rs`) or the replayed archive rows (`replay.rs`).
//!
//! [`Dataset`] answers one question — which rows open in a range, as seen at the sim clock's
//! "now" — for the server (which writes them as JSON) and for tests (which get [`Kline`]s: the
//! dataset is the oracle of what the server serves). Selection is on open time, inclusive at
//! both ends, exactly as Binance selects:
//!
//! | sent | rows |
//! |---|---|
//! | startTime only | the oldest `limit` opening at or after startTime |
//! | endTime only | the most recent `limit` opening at or before endTime |
//! | both | the oldest `limit` from startTime, never past endTime |
//! | neither | the most recent `limit`, the still-forming candle included |
//!
//! Nothing opens after "now" (the candle containing "now" is the forming one). A synthetic
//! symbol has candles from the one containing its listing date; `--outage` windows remove
//! synthetic candles. Replayed series are served as the files have them.

pub(crate) mod json;
pub(crate) mod replay;
pub(crate) mod synthetic;

use std::{collections::HashMap, ops::Range};

use binance_spec::{Interval, Kline, Market};

pub use replay::LoadError;

use crate::{
    clock::SimClock,
    config::{Outage, SimConfig},
};
use replay::{Replay, ReplaySeries};
use synthetic::{SymbolProfile, SynthSeries, split_symbol};

/// Why a dataset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot load the replay data: {0}")]
    Load(#[from] LoadError),
    #[error("invalid symbol '{0}': use upper-case letters and digits, like BTCUSDT")]
    BadSymbol(String),
    #[error("{option} names {symbol}, which is neither in --symbols nor in the replay data")]
    UnknownSymbol { option: &'static str, symbol: String },
}

/// One symbol of the universe.
#[derive(Debug, Clone)]
pub struct SymbolInfo {
    /// `BTCUSDT`.
    pub symbol: String,
    /// `BTC`.
    pub base_asset: String,
    /// `USDT`.
    pub quote_asset: String,
    /// First candle time per market (listing date, or a replayed series' first row).
    listed_ms: [i64; 2],
    /// Whether the market's klines come from replay files.
    replayed: [bool; 2],
    pub(crate) profile: SymbolProfile,
}

impl SymbolInfo {
    /// When the symbol is listed on `market` (UTC epoch ms).
    pub fn listed_ms(&self, market: Market) -> i64 {
        self.listed_ms[market_index(market)]
    }

    /// Whether `market`'s klines of this symbol are replayed from files.
    pub fn is_replayed(&self, market: Market) -> bool {
        self.replayed[market_index(market)]
    }

    /// The synthetic tick size's decimals (used for `exchangeInfo` filters).
    pub(crate) fn price_scale(&self) -> u32 {
        self.profile.price_scale
    }
}

fn market_index(market: Market) -> usize {
    match market {
        Market::Spot => 0,
        Market::UsdM => 1,
    }
}

/// Which rows to select (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Selection {
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub limit: usize,
}

/// The rows a [`Selection`] picked, ready to write.
pub(crate) enum Rows<'a> {
    Synthetic {
        series: SynthSeries<'a>,
        opens: Vec<i64>,
        now: i64,
    },
    Replay {
        series: &'a ReplaySeries,
        range: Range<usize>,
    },
}

impl Rows<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Synthetic { opens, .. } => opens.len(),
            Rows::Replay { range, .. } => range.len(),
        }
    }

    /// Appends the rows as one JSON array.
    pub(crate) fn write_json_array(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        match self {
            Rows::Synthetic { series, opens, now } => {
                out.reserve(opens.len() * 170 + 1);
                let mut first = true;
                series.for_each(opens, *now, |candle| {
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                    series.write_json(candle, out);
                });
            }
            Rows::Replay { series, range } => {
                out.reserve(series.json_len(range.clone()) + 1);
                series.write_json(range.clone(), out);
            }
        }
        out.push(b']');
    }

    pub(crate) fn to_klines(&self) -> Vec<Kline> {
        match self {
            Rows::Synthetic { series, opens, now } => {
                let mut out = Vec::with_capacity(opens.len());
                series.for_each(opens, *now, |candle| out.push(series.to_kline(candle)));
                out
            }
            Rows::Replay { series, range } => series.klines()[range.clone()].to_vec(),
        }
    }
}

/// The symbol universe and its klines: the oracle of what the server serves.
#[derive(Debug)]
pub struct Dataset {
    clock: SimClock,
    seed: u64,
    symbols: Vec<SymbolInfo>,
    by_name: HashMap<String, usize>,
    replay: Replay,
    outages: Vec<Outage>,
}

impl Dataset {
    /// Builds the universe of `config` and loads its replay data, on `clock`.
    pub fn new(config: &SimConfig, clock: SimClock) -> Result<Self, DataError> {
        let replay = match &config.data_dir {
            Some(dir) => replay::load_dir(dir)?,
            None => Replay::new(),
        };
        let mut names: Vec<String> = Vec::new();
        for symbol in &config.symbols {
            if symbol.is_empty()
                || !symbol
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(DataError::BadSymbol(symbol.clone()));
            }
            if !names.contains(symbol) {
                names.push(symbol.clone());
            }
        }
        for (_, symbol) in replay.keys() {
            if !names.contains(symbol) {
                names.push(symbol.clone());
            }
        }
        let known = |option, symbol: &String| {
            if names.contains(symbol) {
                Ok(())
            } else {
                Err(DataError::UnknownSymbol {
                    option,
                    symbol: symbol.clone(),
                })
            }
        };
        for symbol in config.listed.keys() {
            known("--listed", symbol)?;
        }
        for symbol in config.outages.iter().filter_map(|o| o.symbol.as_ref()) {
            known("--outage", symbol)?;
        }
        let symbols: Vec<SymbolInfo> = names
            .iter()
            .map(|name| {
                let (base_asset, quote_asset) = split_symbol(name);
                let mut listed_ms = [config.listing_ms(name); 2];
                let mut replayed = [false; 2];
                for market in Market::ALL {
                    if let Some(series) = replay.get(&(market, name.clone())) {
                        replayed[market_index(market)] = true;
                        let first = series
                            .values()
                            .filter_map(|s| s.klines().first())
                            .map(|k| k.open_time)
                            .min();
                        if let (None, Some(first)) = (config.listed.get(name), first) {
                            listed_ms[market_index(market)] = first;
                        }
                    }
                }
                SymbolInfo {
                    symbol: name.clone(),
                    base_asset,
                    quote_asset,
                    listed_ms,
                    replayed,
                    profile: SymbolProfile::new(config.seed, name),
                }
            })
            .collect();
        let by_name = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.symbol.clone(), i))
            .collect();
        Ok(Self {
            clock,
            seed: config.seed,
            symbols,
            by_name,
            replay,
            outages: config.outages.clone(),
        })
    }

    /// Exactly the closed and forming rows the server would serve for open times in
    /// `[start_ms, end_ms]` (inclusive, like Binance), ignoring `limit`, at the sim clock's now.
    /// Empty for a symbol outside the universe or an interval the market does not have.
    pub fn klines(
        &self,
        market: Market,
        symbol: &str,
        interval: Interval,
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<Kline> {
        let selection = Selection {
            start: Some(start_ms),
            end: Some(end_ms),
            limit: usize::MAX,
        };
        self.rows(market, symbol, interval, selection, self.now_ms())
            .map(|rows| rows.to_klines())
            .unwrap_or_default()
    }

    /// Exactly the page `GET klines` answers for these (valid) parameters at the sim clock's now.
    pub fn page(
        &self,
        market: Market,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: u32,
    ) -> Vec<Kline> {
        let selection = Selection {
            start: start_ms,
            end: end_ms,
            limit: limit as usize,
        };
        self.rows(market, symbol, interval, selection, self.now_ms())
            .map(|rows| rows.to_klines())
            .unwrap_or_default()
    }

    /// Appends the JSON body `GET klines` answers for these (valid) parameters at the sim
    /// clock's now (the server's own fast path: one buffer, no per-row allocation); returns the
    /// number of rows. Unknown symbols write `[]`.
    #[allow(clippy::too_many_arguments)]
    pub fn write_page_json(
        &self,
        market: Market,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: u32,
        out: &mut Vec<u8>,
    ) -> usize {
        let selection = Selection {
            start: start_ms,
            end: end_ms,
            limit: limit as usize,
        };
        match self.rows(market, symbol, interval, selection, self.now_ms()) {
            Some(rows) => {
                rows.write_json_array(out);
                rows.len()
            }
            None => {
                out.extend_from_slice(b"[]");
                0
            }
        }
    }

    /// Now on the sim clock (UTC epoch ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The sim clock (tests freeze and move it here).
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// The symbol universe, in configuration order (replayed symbols last).
    pub fn symbols(&self) -> &[SymbolInfo] {
        &self.symbols
    }

    /// One symbol of the universe.
    pub fn symbol(&self, symbol: &str) -> Option<&SymbolInfo> {
        self.by_name.get(symbol).map(|&i| &self.symbols[i])
    }

    /// The rows `selection` picks at `now`; `None` for a symbol outside the universe.
    pub(crate) fn rows(
        &self,
        market: Market,
        symbol: &str,
        interval: Interval,
        selection: Selection,
        now: i64,
    ) -> Option<Rows<'_>> {
        let info = self.symbol(symbol)?;
        if !market.supports(interval) {
            return Some(Rows::Replay {
                series: empty_series(),
                range: 0..0,
            });
        }
        if info.is_replayed(market) {
            let series = self
                .replay
                .get(&(market, info.symbol.clone()))
                .and_then(|by_interval| by_interval.get(&interval))
                .unwrap_or(empty_series());
            return Some(Rows::Replay {
                range: select_replay(series, selection, now),
                series,
            });
        }
        let outages: Vec<(i64, i64)> = self
            .outages
            .iter()
            .filter(|o| o.applies_to(symbol) && o.start_ms < o.end_ms)
            .map(|o| (o.start_ms, o.end_ms))
            .collect();
        let first = interval.open_containing(info.listed_ms(market));
        Some(Rows::Synthetic {
            series: SynthSeries::new(self.seed, market, &info.profile, interval),
            opens: synthetic_opens(interval, first, &outages, selection, now),
            now,
        })
    }
}

fn empty_series() -> &'static ReplaySeries {
    static EMPTY: std::sync::OnceLock<ReplaySeries> = std::sync::OnceLock::new();
    EMPTY.get_or_init(ReplaySeries::default)
}

/// The index range of replayed rows `selection` picks at `now`.
fn select_replay(series: &ReplaySeries, selection: Selection, now: i64) -> Range<usize> {
    let last = selection.end.map_or(now, |end| end.min(now));
    let end = series.end_at_or_before(last);
    match selection.start {
        Some(start) => {
            let from = series.first_at_or_after(start).min(end);
            from..end.min(from.saturating_add(selection.limit))
        }
        None => end.saturating_sub(selection.limit)..end,
    }
}

/// The open times of synthetic candles `selection` picks at `now`, for a series whose first
/// candle opens at `first`, without the candles opening inside `outages` (`[start, end)`).
fn synthetic_opens(
    interval: Interval,
    first: i64,
    outages: &[(i64, i64)],
    selection: Selection,
    now: i64,
) -> Vec<i64> {
    let last = selection.end.map_or(now, |end| end.min(now));
    let mut opens = Vec::new();
    if last < first {
        return opens;
    }
    let outage_at = |t: i64| outages.iter().find(|&&(s, e)| s <= t && t < e).copied();
    match selection.start {
        Some(start) => {
            let mut t = if start <= first {
                first
            } else {
                interval.open_at_or_after(start)
            };
            while t <= last && opens.len() < selection.limit {
                match outage_at(t) {
                    Some((_, end)) => t = interval.open_at_or_after(end),
                    None => {
                        opens.push(t);
                        t = interval.next_open(t);
                    }
                }
            }
        }
        None => {
            let mut t = interval.open_containing(last);
            while t >= first && opens.len() < selection.limit {
                match outage_at(t) {
                    Some((start, _)) => t = interval.open_containing(start - 1),
                    None => {
                        opens.push(t);
                        t = interval.open_containing(t - 1);
                    }
                }
            }
            opens.reverse();
        }
    }
    opens
}

#[cfg(test)]
mod tests;
