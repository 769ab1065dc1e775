//! The jobs. Each says only what differs for one symbol — which ranges to fetch and what to
//! record afterwards — and leaves paging, writing, parallelism and events to
//! [`crate::pipeline`].
//!
//! - [`extract`]: a given time range.
//! - [`sync`]: resume each symbol from its newest stored candle (the production job).
//! - [`fill_gaps`]: find holes, fetch them, keep the ledger.
//! - [`gaps`]: show the ledger and the current holes.

pub mod extract;
pub mod fill_gaps;
pub mod gaps;
pub mod sync;

use binance_spec::time::format_rfc3339_ms;

use crate::{
    pipeline::{Context, FetchOutcome, SymbolOutcome},
    series::{SeriesKey, TimeRange},
    store::GapOutcome,
};

/// Turns a range's fetch into the symbol's outcome, recording the holes Binance left in it
/// as `exchange_empty` in the ledger (Binance was asked for them and had nothing).
async fn finish_range(
    ctx: &Context,
    key: &SeriesKey,
    range: TimeRange,
    fetch: FetchOutcome,
) -> SymbolOutcome {
    let mut outcome = SymbolOutcome {
        records_fetched: fetch.fetched,
        records_written: fetch.written,
        gaps_found: fetch.holes.len() as u64,
        range: Some(range),
        ..SymbolOutcome::default()
    };
    if !ctx.dry_run {
        let now = ctx.clock.now_ms();
        for hole in &fetch.holes {
            if let Err(e) = ctx
                .store
                .record_gap(key, *hole, GapOutcome::ExchangeEmpty, now)
                .await
            {
                outcome.errors.push(format!("{}: {e}", key.symbol));
                break;
            }
        }
    }
    for hole in &fetch.holes {
        tracing::info!(
            symbol = %key.symbol,
            period = %key.interval,
            from = %format_rfc3339_ms(hole.start),
            to = %format_rfc3339_ms(hole.end),
            "Binance has no klines in this range (outage or halt)."
        );
    }
    note_failure(&mut outcome, key, &fetch);
    outcome
}

/// Adds the fetch's error or interruption to the outcome.
fn note_failure(outcome: &mut SymbolOutcome, key: &SeriesKey, fetch: &FetchOutcome) {
    if let Some(e) = &fetch.error {
        outcome.errors.push(format!("{}: {e}", key.symbol));
    }
    if fetch.interrupted {
        outcome.interrupted = true;
        let upto = fetch
            .last_open
            .map(|t| format!("stored up to {}", format_rfc3339_ms(t)))
            .unwrap_or_else(|| "nothing stored yet".into());
        outcome.errors.push(format!(
            "{}: stopped by a signal ({upto}); run again to continue",
            key.symbol
        ));
    }
}

/// The series of `symbol` in this run.
fn series(ctx: &Context, symbol: crate::series::Symbol) -> SeriesKey {
    SeriesKey {
        market: ctx.market,
        symbol,
        interval: ctx.interval,
    }
}
