//! `fill-gaps`: find every hole in what is stored, fetch it, and keep the gap ledger.
//!
//! Holes come from the database in one query (consecutive stored open times further apart
//! than one interval). Each hole is fetched whole, however large, through the shared
//! pipeline. What Binance had nothing for is recorded as `exchange_empty` and skipped by
//! later runs unless `--recheck`.

use std::{collections::HashSet, sync::Arc};

use binance_spec::time::format_rfc3339_ms;

use super::{note_failure, series};
use crate::{
    binance::KlinesQuery,
    events::ExtractionType,
    pipeline::{Context, FetchOutcome, SymbolJob, SymbolOutcome, fetch_into_store},
    series::{SeriesKey, Symbol, TimeRange},
    store::{GapOutcome, GapState, StoreError},
};

/// The `fill-gaps` job.
#[derive(Debug, Clone, Default)]
pub struct FillGaps {
    /// Look for holes from here (default: the first stored kline). Time before the symbol's
    /// first kline on Binance is never a hole.
    pub start: Option<i64>,
    /// Look for holes up to here (default: the newest stored kline).
    pub end: Option<i64>,
    /// Fetch holes known to be empty on the exchange again.
    pub recheck: bool,
}

impl SymbolJob for FillGaps {
    fn extraction_type(&self) -> ExtractionType {
        ExtractionType::KlinesGapFilling
    }

    async fn run_symbol(&self, ctx: Arc<Context>, symbol: Symbol) -> SymbolOutcome {
        let key = series(&ctx, symbol);
        let mut outcome = SymbolOutcome::default();
        let plan = match self.plan(&ctx, &key).await {
            Ok(plan) => plan,
            Err(e) => {
                outcome.errors.push(format!("{}: {e}", key.symbol));
                return outcome;
            }
        };
        outcome.range = plan.range;
        outcome.gaps_found = plan.holes.len() as u64;
        if plan.skipped > 0 {
            tracing::info!(
                symbol = %key.symbol,
                period = %key.interval,
                skipped = plan.skipped,
                "Skipping holes Binance is known to have no klines for (use --recheck to fetch them again)."
            );
        }
        for hole in plan.holes {
            if ctx.cancel.is_cancelled() {
                outcome.interrupted = true;
                outcome.errors.push(format!(
                    "{}: stopped by a signal; run again to fill the remaining holes",
                    key.symbol
                ));
                break;
            }
            let now = ctx.clock.now_ms();
            if !ctx.dry_run
                && let Err(e) = ctx.store.record_gap(&key, hole, GapOutcome::Seen, now).await
            {
                outcome.errors.push(format!("{}: {e}", key.symbol));
                break;
            }
            let after = (hole.start > plan.first_bound).then_some(hole.start - 1);
            let fetch = fetch_into_store(&ctx, &key, hole, after).await;
            outcome.records_fetched += fetch.fetched;
            outcome.records_written += fetch.written;
            if fetch.error.is_some() || fetch.interrupted {
                note_failure(&mut outcome, &key, &fetch);
                break;
            }
            if fetch.fetched > 0 {
                outcome.gaps_filled += 1;
            }
            if let Err(e) = record_fetched_hole(&ctx, &key, hole, &fetch).await {
                outcome.errors.push(format!("{}: {e}", key.symbol));
                break;
            }
        }
        outcome
    }
}

/// The holes of one symbol to fetch.
struct Plan {
    /// Holes to fetch, ascending.
    holes: Vec<TimeRange>,
    /// Holes skipped because Binance is known to have nothing there.
    skipped: usize,
    /// The range examined.
    range: Option<TimeRange>,
    /// Lower bound of the examination: a hole starting here has no stored candle before it.
    first_bound: i64,
}

impl FillGaps {
    async fn plan(&self, ctx: &Context, key: &SeriesKey) -> Result<Plan, PlanError> {
        let (Some(oldest), Some(newest)) = (
            ctx.store.oldest_open_time(key).await?,
            ctx.store.newest_open_time(key).await?,
        ) else {
            tracing::info!(symbol = %key.symbol, period = %key.interval, "No klines stored: nothing to fill (run extract or sync first).");
            return Ok(Plan {
                holes: Vec::new(),
                skipped: 0,
                range: None,
                first_bound: 0,
            });
        };
        let lo = self.start.unwrap_or(oldest);
        let hi = self.end.map_or(newest + 1, |e| e.min(newest + 1));
        // From the first stored candle, so that a hole straddling --start is found whole (the
        // database returns only the holes, however long the history).
        let mut holes = ctx.store.holes(key, TimeRange::new(oldest, hi)).await?;
        holes.retain(|h| h.end > lo);
        // Before the first stored kline: a hole only from Binance's own first kline on.
        if lo < oldest {
            let query = KlinesQuery {
                symbol: &key.symbol,
                interval: key.interval,
                start: lo,
                end_inclusive: oldest - 1,
                limit: 1,
            };
            if let Some(first) = ctx.client.klines(query).await?.first() {
                holes.insert(0, TimeRange::new(first.open_time, oldest));
            }
        }
        let known_empty: HashSet<TimeRange> = if self.recheck {
            HashSet::new()
        } else {
            ctx.store
                .ledger(key)
                .await?
                .into_iter()
                .filter(|e| e.state == GapState::ExchangeEmpty)
                .map(|e| e.range)
                .collect()
        };
        let found = holes.len();
        holes.retain(|h| !known_empty.contains(h));
        for h in &holes {
            tracing::info!(
                symbol = %key.symbol,
                period = %key.interval,
                from = %format_rfc3339_ms(h.start),
                to = %format_rfc3339_ms(h.end),
                missing = key.interval.count_opens(h.start, h.end),
                "Hole found."
            );
        }
        Ok(Plan {
            skipped: found - holes.len(),
            holes,
            range: Some(TimeRange::new(lo, hi)),
            first_bound: lo.min(oldest),
        })
    }
}

/// Records what fetching `hole` gave: filled (with any part Binance had nothing for recorded
/// as its own `exchange_empty` hole), or `exchange_empty` as a whole.
async fn record_fetched_hole(
    ctx: &Context,
    key: &SeriesKey,
    hole: TimeRange,
    fetch: &FetchOutcome,
) -> Result<(), StoreError> {
    if ctx.dry_run {
        return Ok(());
    }
    let now = ctx.clock.now_ms();
    if fetch.fetched == 0 {
        tracing::info!(
            symbol = %key.symbol,
            from = %format_rfc3339_ms(hole.start),
            to = %format_rfc3339_ms(hole.end),
            "Binance has no klines for this hole; recorded as exchange_empty."
        );
        return ctx
            .store
            .record_gap(key, hole, GapOutcome::ExchangeEmpty, now)
            .await;
    }
    ctx.store
        .record_gap(key, hole, GapOutcome::Filled { rows: fetch.written }, now)
        .await?;
    // Parts still missing: between fetched candles, and between the last one and the end.
    let mut rest = fetch.holes.clone();
    if let Some(last) = fetch.last_open
        && hole.end - last > key.interval.max_step_ms()
    {
        rest.push(TimeRange::new(last + 1, hole.end));
    }
    for part in rest {
        ctx.store
            .record_gap(key, part, GapOutcome::ExchangeEmpty, now)
            .await?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Binance(#[from] crate::binance::BinanceError),
}
