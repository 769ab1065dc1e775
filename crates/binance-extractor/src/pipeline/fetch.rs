//! The one loop that moves klines: Binance pages → validation → batched writes.
//!
//! [`fetch_into_store`] pages through a time range by open time, asking each time for the
//! cheapest page that covers what is left, and streams the pages through a bounded channel
//! to a writer that upserts them in batches, in order. Fetching the next page overlaps with
//! writing the previous batch; memory holds a few pages and one batch, however long the
//! range. Because batches are written in order, the newest stored candle always has every
//! earlier candle of the run stored before it — a run killed at any moment resumes from
//! there with nothing lost and nothing duplicated.

use binance_spec::Kline;
use tokio::sync::mpsc;

use super::{Context, PipelineError, holes::HoleFinder};
use crate::{
    binance::{BinanceError, KlinesQuery},
    series::{SeriesKey, TimeRange},
};

/// Pages in flight between the fetcher and the writer.
const PAGES_IN_FLIGHT: usize = 4;

/// What one range gave.
#[derive(Debug, Clone, Default)]
pub struct FetchOutcome {
    /// Closed candles received within the range.
    pub fetched: u64,
    /// Candles inserted or changed in the store.
    pub written: u64,
    /// Open time of the first candle received.
    pub first_open: Option<i64>,
    /// Open time of the last candle received.
    pub last_open: Option<i64>,
    /// Holes between consecutive candles (the first one measured from `after`, when given):
    /// Binance was asked for them and returned nothing.
    pub holes: Vec<TimeRange>,
    /// Klines requests sent.
    pub requests: u64,
    /// Whether the run was asked to stop before the range was covered.
    pub interrupted: bool,
    /// Why the range could not be completed (what came before the failure is stored).
    pub error: Option<PipelineError>,
}

/// Fetches every closed candle with open time in `range` and stores it (unless the run is a
/// dry run). `after` is the open time of the stored candle just before the range, if any, so
/// that a hole at the junction is found too.
///
/// On error, every page received before the failure is still written, and the outcome
/// counts it.
pub async fn fetch_into_store(
    ctx: &Context,
    key: &SeriesKey,
    range: TimeRange,
    after: Option<i64>,
) -> FetchOutcome {
    ctx.progress
        .expect(&key.symbol, key.interval.count_opens(range.start, range.end));
    let (tx, rx) = mpsc::channel::<Vec<Kline>>(PAGES_IN_FLIGHT);
    let (fetched, written) = tokio::join!(produce(ctx, key, range, tx), consume(ctx, key, rx, after));
    let (mut outcome, fetch_result) = fetched;
    let (written, write_result) = written;
    outcome.fetched = written.fetched;
    outcome.written = written.written;
    outcome.first_open = written.first_open;
    outcome.last_open = written.last_open;
    outcome.holes = written.holes;
    // A store failure stops the fetcher too, so it is the cause to report.
    outcome.error = match (write_result, fetch_result) {
        (Err(e), _) => Some(e),
        (Ok(()), Err(e)) => Some(PipelineError::Binance(e)),
        (Ok(()), Ok(())) => None,
    };
    outcome
}

/// Pages through `range`, sending each page's closed in-range candles to `tx`.
async fn produce(
    ctx: &Context,
    key: &SeriesKey,
    range: TimeRange,
    tx: mpsc::Sender<Vec<Kline>>,
) -> (FetchOutcome, Result<(), BinanceError>) {
    let mut outcome = FetchOutcome::default();
    let now = ctx.clock.now_ms();
    let mut cursor = range.start;
    let mut previous: Option<i64> = None;
    while cursor < range.end {
        if ctx.cancel.is_cancelled() {
            outcome.interrupted = true;
            break;
        }
        // Ask for one more row than the grid predicts: a page that comes back short then
        // proves the range is covered, with no extra request, even if rows are off-grid.
        // No candle can open in what is left of the range (any hole longer than one
        // interval contains a grid point, so this never skips one).
        let wanted = key.interval.count_opens(cursor, range.end);
        if wanted == 0 {
            break;
        }
        let limit = ctx.market.page_limit(wanted.saturating_add(1));
        let query = KlinesQuery {
            symbol: &key.symbol,
            interval: key.interval,
            start: cursor,
            end_inclusive: range.end - 1,
            limit,
        };
        let mut page = match ctx.client.klines(query).await {
            Ok(page) => page,
            Err(e) => return (outcome, Err(e)),
        };
        outcome.requests += 1;
        let full = page.len() >= limit as usize;
        let Some(last) = page.last().map(|k| k.open_time) else {
            break;
        };
        for (index, k) in page.iter().enumerate() {
            if previous.is_some_and(|p| k.open_time <= p) {
                let err = crate::binance::decode::DecodeError::Row {
                    index,
                    open_time: Some(k.open_time),
                    problem: "rows are not in ascending open-time order".into(),
                };
                return (outcome, Err(err.into()));
            }
            previous = Some(k.open_time);
        }
        // The page itself goes to the writer, less what is outside the range or not closed.
        page.retain(|k| range.contains(k.open_time) && k.is_closed_at(now));
        if !page.is_empty() && tx.send(page).await.is_err() {
            // The writer stopped (its error is reported by the caller).
            break;
        }
        if !full {
            break;
        }
        cursor = last + 1;
    }
    (outcome, Ok(()))
}

/// What the writer saw and stored.
#[derive(Debug, Default)]
struct Written {
    fetched: u64,
    written: u64,
    first_open: Option<i64>,
    last_open: Option<i64>,
    holes: Vec<TimeRange>,
}

/// Receives pages, finds holes between consecutive candles, and writes in batches.
async fn consume(
    ctx: &Context,
    key: &SeriesKey,
    mut rx: mpsc::Receiver<Vec<Kline>>,
    after: Option<i64>,
) -> (Written, Result<(), PipelineError>) {
    let batch_rows = ctx.store.batch_rows();
    let mut holes = HoleFinder::new(key.interval, after);
    let mut out = Written::default();
    let mut batch: Vec<Kline> = Vec::with_capacity(batch_rows);
    while let Some(page) = rx.recv().await {
        holes.feed(page.iter().map(|k| k.open_time));
        out.fetched += page.len() as u64;
        ctx.progress
            .advance(&key.symbol, page.len() as u64, page.last().map(|k| k.open_time));
        out.first_open = out.first_open.or(page.first().map(|k| k.open_time));
        out.last_open = page.last().map(|k| k.open_time).or(out.last_open);
        batch.extend_from_slice(&page);
        if batch.len() >= batch_rows {
            match write(ctx, key, &batch).await {
                Ok(n) => out.written += n,
                Err(e) => {
                    out.holes = holes.into_holes();
                    return (out, Err(e));
                }
            }
            batch.clear();
        }
    }
    out.holes = holes.into_holes();
    let result = write(ctx, key, &batch).await.map(|n| out.written += n);
    (out, result)
}

async fn write(ctx: &Context, key: &SeriesKey, rows: &[Kline]) -> Result<u64, PipelineError> {
    if ctx.dry_run || rows.is_empty() {
        return Ok(0);
    }
    let written = ctx
        .store
        .write_klines(key, rows)
        .await
        .map_err(PipelineError::Store)?;
    ctx.progress.wrote(written);
    Ok(written)
}
