//! `gaps`: the ledger and the current holes, as a table for people or JSON for programs.

use std::fmt::Write;

use binance_spec::{Interval, Market, time::format_rfc3339_ms};
use serde::Serialize;

use crate::{
    series::{SeriesKey, Symbol, TimeRange},
    store::{GapState, LedgerEntry, Store, StoreError},
};

/// One symbol's holes.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolGaps {
    pub symbol: String,
    pub market: &'static str,
    pub period: &'static str,
    /// Candles stored.
    pub stored: u64,
    /// Open time of the oldest and newest stored candle.
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// Holes in the store now, with what the ledger knows of each.
    pub holes: Vec<GapRow>,
    /// Ledger entries that are no longer holes (filled).
    pub filled: Vec<GapRow>,
}

/// One hole.
#[derive(Debug, Clone, Serialize)]
pub struct GapRow {
    /// First open time that may be missing (inclusive), RFC 3339.
    pub from: String,
    /// Open time of the stored candle after the hole (exclusive), RFC 3339.
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Candles missing on the interval grid.
    pub missing: u64,
    /// `new` (not in the ledger yet), `open`, `filled` or `exchange_empty`.
    pub state: &'static str,
    pub attempts: u32,
    pub first_seen: Option<String>,
    pub last_attempt: Option<String>,
}

fn row(interval: Interval, range: TimeRange, entry: Option<&LedgerEntry>) -> GapRow {
    GapRow {
        from: format_rfc3339_ms(range.start),
        to: format_rfc3339_ms(range.end),
        from_ms: range.start,
        to_ms: range.end,
        missing: interval.count_opens(range.start, range.end),
        state: entry.map_or("new", |e| e.state.as_str()),
        attempts: entry.map_or(0, |e| e.attempts),
        first_seen: entry.map(|e| format_rfc3339_ms(e.first_seen)),
        last_attempt: entry.and_then(|e| e.last_attempt).map(format_rfc3339_ms),
    }
}

/// Reads the holes and the ledger of each symbol.
pub async fn collect(
    store: &Store,
    market: Market,
    interval: Interval,
    symbols: &[Symbol],
) -> Result<Vec<SymbolGaps>, StoreError> {
    let mut out = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        let key = SeriesKey {
            market,
            symbol: symbol.clone(),
            interval,
        };
        let (oldest, newest) = (
            store.oldest_open_time(&key).await?,
            store.newest_open_time(&key).await?,
        );
        let holes = match (oldest, newest) {
            (Some(a), Some(b)) => store.holes(&key, TimeRange::new(a, b + 1)).await?,
            _ => Vec::new(),
        };
        let ledger = store.ledger(&key).await?;
        let find = |r: &TimeRange| ledger.iter().find(|e| e.range == *r);
        out.push(SymbolGaps {
            symbol: symbol.to_string(),
            market: market.as_str(),
            period: interval.as_str(),
            stored: store.count(&key).await?,
            oldest: oldest.map(format_rfc3339_ms),
            newest: newest.map(format_rfc3339_ms),
            holes: holes.iter().map(|h| row(interval, *h, find(h))).collect(),
            filled: ledger
                .iter()
                .filter(|e| e.state == GapState::Filled && !holes.contains(&e.range))
                .map(|e| row(interval, e.range, Some(e)))
                .collect(),
        });
    }
    Ok(out)
}

/// A table for people.
pub fn render_table(report: &[SymbolGaps]) -> String {
    let mut out = String::new();
    let header = [
        "SYMBOL",
        "PERIOD",
        "FROM",
        "TO",
        "MISSING",
        "STATE",
        "ATTEMPTS",
        "FIRST SEEN",
    ];
    let mut lines: Vec<[String; 8]> = Vec::new();
    for s in report {
        for g in s.holes.iter().chain(&s.filled) {
            lines.push([
                s.symbol.clone(),
                s.period.to_string(),
                g.from.clone(),
                g.to.clone(),
                g.missing.to_string(),
                g.state.to_string(),
                g.attempts.to_string(),
                g.first_seen.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for l in &lines {
        for (w, cell) in widths.iter_mut().zip(l) {
            *w = (*w).max(cell.len());
        }
    }
    let mut push_line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    push_line(&header);
    for l in &lines {
        push_line(&l.iter().map(String::as_str).collect::<Vec<_>>());
    }
    for s in report {
        let open = s.holes.iter().filter(|g| g.state != "exchange_empty").count();
        let empty = s.holes.len() - open;
        let _ = writeln!(
            out,
            "{} {}: {} stored ({} .. {}), {} hole(s) to fill, {} known empty on the exchange, {} filled",
            s.symbol,
            s.period,
            s.stored,
            s.oldest.as_deref().unwrap_or("-"),
            s.newest.as_deref().unwrap_or("-"),
            open,
            empty,
            s.filled.len()
        );
    }
    out
}
