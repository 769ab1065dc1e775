//! Running a job over many symbols: bounded parallelism, one event per symbol, one batch
//! event per run.
//!
//! A job ([`SymbolJob`]) only says what to do for one symbol; the runner does the rest, the
//! same way for `extract`, `sync` and `fill-gaps`: symbols run concurrently (at most
//! `workers` at once) over one HTTP client and one store; a failing symbol never stops the
//! others; each symbol's outcome is announced as soon as it is known; the batch message
//! closes the run.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::Semaphore, task::JoinSet};
use tracing::Instrument;

use super::Context;
use crate::{
    events::{
        BatchExtractionCompleted, Events, ExtractionCompleted, ExtractionType, SymbolMetrics, SymbolSummary,
        message::seconds,
    },
    series::{Symbol, TimeRange},
};

/// What a job did for one symbol (the runner adds the duration).
#[derive(Debug, Clone, Default)]
pub struct SymbolOutcome {
    pub records_fetched: u64,
    pub records_written: u64,
    pub gaps_found: u64,
    pub gaps_filled: u64,
    /// Full sentences, each starting with the symbol.
    pub errors: Vec<String>,
    /// The range the job asked Binance for, if it asked.
    pub range: Option<TimeRange>,
    /// Whether a stop signal cut the symbol short.
    pub interrupted: bool,
}

/// One of the jobs, seen per symbol.
pub trait SymbolJob: Send + Sync + 'static {
    /// Which extraction this is, for the events.
    fn extraction_type(&self) -> ExtractionType;

    /// Does the job's work for one symbol.
    fn run_symbol(&self, ctx: Arc<Context>, symbol: Symbol) -> impl Future<Output = SymbolOutcome> + Send;
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Every symbol, in the order given.
    pub symbols: Vec<SymbolSummary>,
    /// Wall time of the run.
    pub duration: Duration,
    /// Whether a stop signal ended the run early.
    pub interrupted: bool,
}

impl RunReport {
    /// Whether every symbol succeeded.
    pub fn success(&self) -> bool {
        self.symbols.iter().all(SymbolSummary::success)
    }
}

/// Runs `job` for every symbol, at most `workers` at a time, announcing each outcome.
pub async fn run<J: SymbolJob>(
    ctx: Arc<Context>,
    job: Arc<J>,
    symbols: Vec<Symbol>,
    workers: usize,
    events: Arc<Events>,
) -> RunReport {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(workers.max(1)));
    let mut tasks = JoinSet::new();
    for (index, symbol) in symbols.iter().cloned().enumerate() {
        // Symbols start in the order given: a slot is taken before the task exists.
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (ctx, job, events) = (ctx.clone(), job.clone(), events.clone());
        let span = tracing::Span::current();
        tasks.spawn(
            async move {
                let _permit = permit;
                let symbol_started = Instant::now();
                let outcome = if ctx.cancel.is_cancelled() {
                    SymbolOutcome {
                        interrupted: true,
                        errors: vec![format!("{symbol}: not started, the run was stopped")],
                        ..SymbolOutcome::default()
                    }
                } else {
                    job.run_symbol(ctx.clone(), symbol.clone()).await
                };
                let summary = SymbolSummary {
                    symbol,
                    metrics: SymbolMetrics {
                        records_fetched: outcome.records_fetched,
                        records_written: outcome.records_written,
                        duration_seconds: seconds(symbol_started.elapsed()),
                        gaps_found: outcome.gaps_found,
                        gaps_filled: outcome.gaps_filled,
                    },
                    errors: outcome.errors,
                    range: outcome.range,
                };
                log_symbol(&ctx, &summary);
                if !ctx.dry_run {
                    let now = ctx.clock.now_ms();
                    let message = ExtractionCompleted::new(
                        job.extraction_type(),
                        ctx.market,
                        ctx.interval,
                        &summary,
                        now,
                    );
                    events.announce(message, now).await;
                }
                (index, summary, outcome.interrupted)
            }
            .instrument(span),
        );
    }
    let mut done: Vec<Option<SymbolSummary>> = vec![None; symbols.len()];
    let mut interrupted = false;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, summary, cut)) => {
                interrupted |= cut;
                done[index] = Some(summary);
            }
            Err(e) => tracing::error!(error = %e, "A symbol task panicked."),
        }
    }
    let summaries: Vec<SymbolSummary> = done
        .into_iter()
        .zip(symbols)
        .map(|(summary, symbol)| {
            summary.unwrap_or_else(|| SymbolSummary {
                errors: vec![format!("{symbol}: internal error, the symbol's task panicked")],
                symbol,
                metrics: SymbolMetrics::default(),
                range: None,
            })
        })
        .collect();
    let duration = started.elapsed();
    if !ctx.dry_run {
        let now = ctx.clock.now_ms();
        let batch = BatchExtractionCompleted::new(
            job.extraction_type(),
            ctx.market,
            ctx.interval,
            &summaries,
            duration,
            now,
        );
        events.announce(batch, now).await;
    }
    RunReport {
        symbols: summaries,
        duration,
        interrupted: interrupted || ctx.cancel.is_cancelled(),
    }
}

fn log_symbol(ctx: &Context, s: &SymbolSummary) {
    let m = &s.metrics;
    if s.success() {
        tracing::info!(
            symbol = %s.symbol,
            period = %ctx.interval,
            market = %ctx.market,
            fetched = m.records_fetched,
            written = m.records_written,
            gaps_found = m.gaps_found,
            gaps_filled = m.gaps_filled,
            seconds = m.duration_seconds,
            dry_run = ctx.dry_run,
            "Symbol done."
        );
    } else {
        for e in &s.errors {
            tracing::error!(
                symbol = %s.symbol,
                period = %ctx.interval,
                market = %ctx.market,
                fetched = m.records_fetched,
                written = m.records_written,
                "{e}"
            );
        }
    }
}
