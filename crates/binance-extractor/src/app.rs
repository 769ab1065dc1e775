//! Wiring: settings in, components built, the job run, an exit code out.

use std::{sync::Arc, time::Duration};

use binance_spec::time::format_rfc3339_ms;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    binance::{BinanceClient, ClientConfig, RetryPolicy, WeightBudget},
    cli::{EventsCommand, LogFormat},
    clock::Clock,
    events::{EventPublisher, Events, tools},
    jobs::{extract::Extract, fill_gaps::FillGaps, gaps, sync::Sync},
    metrics::{self, Metrics, RunOutcome},
    pipeline::{self, Context, RunReport},
    progress::Progress,
    settings::{JobSettings, Settings},
    store::Store,
};

/// What the process should exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything succeeded: 0.
    Ok,
    /// Some work failed (a symbol, the database): 1.
    Failed,
    /// Stopped by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM).
    Signal(i32),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Signal(n) => 128 + n,
        }
    }
}

/// A stop request: the token is cancelled, and `signal` says which signal asked.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    pub token: CancellationToken,
    signal: Arc<std::sync::atomic::AtomicI32>,
}

impl Stop {
    /// Asks the run to stop because of signal number `signal`.
    pub fn request(&self, signal: i32) {
        self.signal.store(signal, std::sync::atomic::Ordering::SeqCst);
        self.token.cancel();
    }

    /// The signal that asked, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}

/// Runs the command of `settings` until done or stopped.
pub async fn run(settings: Settings, stop: Stop) -> Exit {
    let run_id = new_run_id();
    let span = tracing::info_span!("run", run_id = %run_id, command = settings.job.name());
    run_command(settings, stop, run_id).instrument(span).await
}

/// An id for this run: the start time in hex and a random part, e.g. `18d0c5a1f40-3f2a91c0`.
/// Logs carry it, and every event id starts with it.
pub fn new_run_id() -> String {
    format!("{:x}-{:08x}", crate::clock::system_now_ms(), fastrand::u32(..))
}

async fn run_command(settings: Settings, stop: Stop, run_id: String) -> Exit {
    match &settings.job {
        JobSettings::Check => {
            let checks = crate::check::run(&settings).await;
            print!("{}", crate::check::render(&checks));
            return if checks.iter().all(|c| c.ok) {
                Exit::Ok
            } else {
                Exit::Failed
            };
        }
        JobSettings::Events(EventsCommand::Test { timeout_secs }) => {
            let publisher = connect_events(&settings, true).await;
            let ok = tools::run_test(
                &publisher,
                crate::clock::system_now_ms(),
                Duration::from_secs(*timeout_secs),
            )
            .await;
            publisher.close().await;
            return if ok { Exit::Ok } else { Exit::Failed };
        }
        JobSettings::Events(EventsCommand::Watch { subject, json, count }) => {
            let publisher = connect_events(&settings, true).await;
            let subject = subject
                .clone()
                .unwrap_or_else(|| format!("{}.>", publisher.prefix()));
            let ok = tools::run_watch(&publisher, &subject, *json, *count, stop.token.clone()).await;
            publisher.close().await;
            return if ok { Exit::Ok } else { Exit::Failed };
        }
        _ => {}
    }
    let store = match Store::connect(&settings.database).await {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("{e}");
            return Exit::Failed;
        }
    };
    tracing::debug!(database = %settings.database, "Store ready.");
    let exit = match &settings.job {
        JobSettings::Gaps { series, json } => {
            match gaps::collect(&store, settings.market, series.interval, &series.symbols).await {
                Ok(report) => {
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&report).expect("serializable"));
                    } else {
                        print!("{}", gaps::render_table(&report));
                    }
                    Exit::Ok
                }
                Err(e) => {
                    tracing::error!("{e}");
                    Exit::Failed
                }
            }
        }
        JobSettings::Events(EventsCommand::Flush) => {
            let events = Events::new(
                connect_events(&settings, true).await,
                Some(store.clone()),
                settings.outbox_warn_age,
                &run_id,
            );
            let report = events.deliver_pending(crate::clock::system_now_ms()).await;
            events.close().await;
            println!(
                "delivered {} event(s); {} still undelivered{}",
                report.delivered,
                report.pending,
                report
                    .oldest_pending
                    .map(|t| format!(" (oldest from {})", format_rfc3339_ms(t)))
                    .unwrap_or_default()
            );
            if report.pending == 0 {
                Exit::Ok
            } else {
                Exit::Failed
            }
        }
        _ => run_job(&settings, store.clone(), &stop, &run_id).await,
    };
    store.close().await;
    exit
}

async fn run_job(settings: &Settings, store: Store, stop: &Stop, run_id: &str) -> Exit {
    let market = settings.market;
    let budget = Arc::new(WeightBudget::new(
        settings
            .max_weight_per_minute
            .unwrap_or(market.default_weight_limit()),
        Duration::from_secs(60),
        0.9,
    ));
    let config = ClientConfig {
        base_url: settings.api_url.clone(),
        market,
        request_timeout: settings.request_timeout,
        retry: RetryPolicy::default(),
    };
    let client = match BinanceClient::new(config, budget.clone()) {
        Ok(c) => c.with_pause_listener(record_bans(store.clone(), market)),
        Err(e) => {
            tracing::error!("{e}");
            return Exit::Failed;
        }
    };
    wait_out_recorded_ban(&store, market, &budget).await;
    // The limit first: weight other runs used shows in the first answer's header, and must be
    // weighed against the real limit, not the published default.
    configure_budget(&client, &budget, settings.max_weight_per_minute).await;
    let clock = anchor_clock(&client).await;

    let (series, workers, dry_run) = match &settings.job {
        JobSettings::Extract { series, workers, .. } => (series, *workers, false),
        JobSettings::Sync {
            series,
            workers,
            dry_run,
            ..
        }
        | JobSettings::FillGaps {
            series,
            workers,
            dry_run,
            ..
        } => (series, *workers, *dry_run),
        JobSettings::Gaps { .. } | JobSettings::Events(_) | JobSettings::Check => {
            unreachable!("handled by run")
        }
    };
    let events = Arc::new(if dry_run {
        tracing::info!("Dry run: nothing will be written or published.");
        Events::new(
            EventPublisher::disabled(&settings.nats.subject_prefix),
            None,
            settings.outbox_warn_age,
            run_id,
        )
    } else {
        let events = Events::new(
            connect_events(settings, false).await,
            Some(store.clone()),
            settings.outbox_warn_age,
            run_id,
        );
        // Events earlier runs could not deliver go first, in order.
        events.deliver_pending(clock.now_ms()).await;
        events
    });
    let progress = Progress::new();
    let metrics = Metrics::new(
        settings.job.name(),
        market.as_str(),
        series.interval.as_str(),
        progress.clone(),
        budget.clone(),
        events.counters().clone(),
    );
    let metrics_stop = CancellationToken::new();
    if let Some(addr) = settings.metrics.listen {
        let stopped = metrics_stop.clone();
        match metrics::spawn(addr, metrics.clone(), async move { stopped.cancelled().await }).await {
            Ok(bound) => tracing::info!(address = %bound, "Serving metrics at http://{bound}/metrics"),
            Err(e) => tracing::warn!(address = %addr, "Cannot serve metrics on {addr}: {e}"),
        }
    }
    let ctx = Arc::new(Context {
        client,
        store,
        clock,
        market,
        interval: series.interval,
        cancel: stop.token.clone(),
        dry_run,
        progress,
    });
    let reporter =
        ctx.progress
            .spawn_reporter(budget.clone(), settings.progress_interval, metrics_stop.clone());
    tracing::info!(
        job = settings.job.name(),
        market = %market,
        period = %series.interval,
        symbols = series.symbols.len(),
        workers,
        api = %settings.api_url,
        database = %settings.database,
        "Run started."
    );
    let symbols = series.symbols.clone();
    let report = match &settings.job {
        JobSettings::Extract { range, .. } => {
            let job = Arc::new(Extract { range: *range });
            pipeline::run(ctx.clone(), job, symbols, workers, events.clone()).await
        }
        JobSettings::Sync { since, .. } => {
            let job = Arc::new(Sync { since: *since });
            pipeline::run(ctx.clone(), job, symbols, workers, events.clone()).await
        }
        JobSettings::FillGaps {
            start, end, recheck, ..
        } => {
            let job = Arc::new(FillGaps {
                start: *start,
                end: *end,
                recheck: *recheck,
            });
            pipeline::run(ctx.clone(), job, symbols, workers, events.clone()).await
        }
        JobSettings::Gaps { .. } | JobSettings::Events(_) | JobSettings::Check => {
            unreachable!("handled by run")
        }
    };
    if let Ok(events) = Arc::try_unwrap(events) {
        if !dry_run {
            // A last chance for what NATS refused during the run; reports any backlog.
            events.deliver_pending(crate::clock::system_now_ms()).await;
        }
        events.close().await;
    }
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    metrics.finish(RunOutcome {
        symbols: report.symbols.len() as u64,
        symbols_failed: report.symbols.iter().filter(|s| !s.success()).count() as u64,
        success: report.success(),
    });
    if let Some(url) = &settings.metrics.push {
        match metrics::push(url, &metrics).await {
            Ok(()) => tracing::info!("Pushed the final metrics."),
            Err(e) => tracing::warn!("Failed to push metrics: {e}"),
        }
    }
    metrics_stop.cancel();
    print_summary(settings, &report, &budget);
    match stop.signal() {
        Some(sig) => Exit::Signal(sig),
        None if report.success() => Exit::Ok,
        None => Exit::Failed,
    }
}

/// Records every pause Binance imposes in the store, so that a process started before it
/// ends waits instead of extending it.
fn record_bans(store: Store, market: binance_spec::Market) -> crate::binance::client::PauseListener {
    Arc::new(move |until_ms, status| {
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store
                .record_ban(market, until_ms, status, crate::clock::system_now_ms())
                .await
            {
                tracing::warn!(error = %e, "Cannot record Binance's ban in the store: {e}");
            }
        });
    })
}

/// Waits (through the budget, so no request leaves) for a ban an earlier run recorded.
async fn wait_out_recorded_ban(store: &Store, market: binance_spec::Market, budget: &WeightBudget) {
    match store.ban_until(market).await {
        Ok(Some(until)) => {
            let left = until - crate::clock::system_now_ms();
            if left > 0 {
                tracing::warn!(
                    until = %format_rfc3339_ms(until),
                    "Binance banned this IP (recorded by an earlier run): no request before {}.",
                    format_rfc3339_ms(until)
                );
                budget.pause_for(Duration::from_millis(left as u64));
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "Cannot read recorded bans: {e}"),
    }
}

/// Connects to NATS as configured (`force` ignores NATS_ENABLED=false: the operator asked
/// for an events command explicitly).
async fn connect_events(settings: &Settings, force: bool) -> EventPublisher {
    let mut nats = settings.nats.clone();
    nats.enabled |= force;
    EventPublisher::connect(&nats).await
}

/// Anchors "now" to Binance's clock, so a skewed local clock never makes a forming candle
/// look closed. Falls back to the local clock (with a warning) if Binance cannot be asked.
async fn anchor_clock(client: &BinanceClient) -> Clock {
    match client.server_time().await {
        Ok(server) => {
            let skew = server - crate::clock::system_now_ms();
            if skew.abs() > 1_000 {
                tracing::warn!(
                    skew_ms = skew,
                    "The local clock differs from Binance's; using Binance's time."
                );
            }
            Clock::anchored(server)
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read Binance's server time; using the local clock.");
            Clock::system()
        }
    }
}

/// Takes the weight limit Binance announces, unless the user set one.
async fn configure_budget(client: &BinanceClient, budget: &WeightBudget, user_limit: Option<u32>) {
    if let Some(limit) = user_limit {
        budget.set_limit(limit, Duration::from_secs(60));
        return;
    }
    match client.announced_weight_limit().await {
        Ok(Some((limit, window))) => {
            tracing::debug!(
                limit,
                window_secs = window.as_secs_f64(),
                "Weight limit from exchangeInfo."
            );
            budget.set_limit(limit, window);
        }
        Ok(None) => tracing::warn!(
            "exchangeInfo announces no request-weight limit; using Binance's published default."
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read exchangeInfo; using Binance's published weight limit.")
        }
    }
}

/// The run's summary: a table on stdout for people, one JSON object in JSON-log mode.
fn print_summary(settings: &Settings, report: &RunReport, budget: &WeightBudget) {
    let stats = budget.stats();
    if settings.log.format == LogFormat::Json {
        let symbols: Vec<serde_json::Value> = report
            .symbols
            .iter()
            .map(|s| {
                serde_json::json!({
                    "symbol": s.symbol.as_str(),
                    "success": s.success(),
                    "records_fetched": s.metrics.records_fetched,
                    "records_written": s.metrics.records_written,
                    "gaps_found": s.metrics.gaps_found,
                    "gaps_filled": s.metrics.gaps_filled,
                    "duration_seconds": s.metrics.duration_seconds,
                    "errors": s.errors,
                })
            })
            .collect();
        let summary = serde_json::json!({
            "summary": settings.job.name(),
            "market": settings.market.as_str(),
            "period": settings.job.series().interval.as_str(),
            "success": report.success(),
            "interrupted": report.interrupted,
            "duration_seconds": crate::events::message::seconds(report.duration),
            "requests": stats.requests,
            "weight_spent": stats.weight_spent,
            "symbols": symbols,
        });
        println!("{summary}");
        return;
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{:<14} {:>10} {:>10} {:>6} {:>6} {:>9}  {}\n",
        "SYMBOL", "FETCHED", "WRITTEN", "HOLES", "FILLED", "SECONDS", "RESULT"
    ));
    for s in &report.symbols {
        let m = &s.metrics;
        let result = if s.success() {
            "ok".to_string()
        } else {
            format!("FAILED: {}", s.errors.join("; "))
        };
        out.push_str(&format!(
            "{:<14} {:>10} {:>10} {:>6} {:>6} {:>9.3}  {}\n",
            s.symbol.as_str(),
            m.records_fetched,
            m.records_written,
            m.gaps_found,
            m.gaps_filled,
            m.duration_seconds,
            result
        ));
    }
    let failed = report.symbols.iter().filter(|s| !s.success()).count();
    out.push_str(&format!(
        "{} {} {}: {} symbol(s), {} failed, {:.1}s, {} requests, weight {}{}; finished {}\n",
        settings.job.name(),
        settings.market,
        settings.job.series().interval,
        report.symbols.len(),
        failed,
        report.duration.as_secs_f64(),
        stats.requests,
        stats.weight_spent,
        if settings.job_is_dry_run() {
            " (dry run: nothing written)"
        } else {
            ""
        },
        format_rfc3339_ms(crate::clock::system_now_ms()),
    ));
    print!("{out}");
}

impl Settings {
    fn job_is_dry_run(&self) -> bool {
        matches!(
            self.job,
            JobSettings::Sync { dry_run: true, .. } | JobSettings::FillGaps { dry_run: true, .. }
        )
    }
}
