//! Metrics for operators: Prometheus text at `/metrics` while a job runs
//! (`--metrics-listen`), and the final values pushed to a Pushgateway-compatible endpoint at
//! the end (`--metrics-push`), since a CronJob may finish before anyone scrapes it.
//!
//! Nothing is counted twice: the figures are read, when asked for, from where they are kept
//! — the [`Progress`] tracker (rows), the [`WeightBudget`] (requests, weight, 429/418,
//! retries) and the [`EventCounters`] (events, outbox backlog).

use std::{fmt::Write, future::Future, net::SocketAddr, sync::Arc, sync::Mutex, time::Instant};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use tokio::net::TcpListener;

use crate::{binance::WeightBudget, events::EventCounters, progress::Progress};

/// What a run ended with (set once, at the end).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOutcome {
    pub symbols: u64,
    pub symbols_failed: u64,
    pub success: bool,
}

/// Where the figures live, and the labels that name the run.
#[derive(Debug)]
pub struct Metrics {
    command: String,
    market: &'static str,
    period: &'static str,
    started: Instant,
    progress: Arc<Progress>,
    budget: Arc<WeightBudget>,
    events: Arc<EventCounters>,
    outcome: Mutex<Option<RunOutcome>>,
}

impl Metrics {
    /// Metrics of one run.
    pub fn new(
        command: &str,
        market: &'static str,
        period: &'static str,
        progress: Arc<Progress>,
        budget: Arc<WeightBudget>,
        events: Arc<EventCounters>,
    ) -> Arc<Self> {
        Arc::new(Metrics {
            command: command.replace(' ', "_"),
            market,
            period,
            started: Instant::now(),
            progress,
            budget,
            events,
            outcome: Mutex::new(None),
        })
    }

    /// Records how the run ended (adds the run-level gauges).
    pub fn finish(&self, outcome: RunOutcome) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    }

    /// The Prometheus text exposition of every figure.
    pub fn render(&self) -> String {
        let labels = format!(
            r#"command="{}",market="{}",period="{}""#,
            self.command, self.market, self.period
        );
        let b = self.budget.stats();
        let (fetched, _) = self.progress.totals();
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP binance_extractor_{name} {help}");
            let _ = writeln!(out, "# TYPE binance_extractor_{name} {kind}");
            for (extra, value) in samples {
                let sep = if extra.is_empty() { "" } else { "," };
                let _ = writeln!(out, "binance_extractor_{name}{{{labels}{sep}{extra}}} {value}");
            }
        };
        let one = |v: u64| vec![(String::new(), v as f64)];
        metric(
            "klines_fetched_total",
            "counter",
            "Closed klines received from Binance.",
            &one(fetched),
        );
        metric(
            "klines_written_total",
            "counter",
            "Klines inserted or changed in the store.",
            &one(self.progress.written()),
        );
        metric(
            "requests_total",
            "counter",
            "Requests sent to Binance.",
            &one(b.requests),
        );
        metric(
            "request_weight_total",
            "counter",
            "Request weight spent at Binance.",
            &one(b.weight_spent),
        );
        metric(
            "request_weight_window",
            "gauge",
            "Weight used in Binance's current window, as far as known.",
            &one(u64::from(b.used_in_window)),
        );
        metric(
            "request_weight_limit",
            "gauge",
            "Binance's weight limit per window.",
            &one(u64::from(b.limit)),
        );
        metric(
            "refusals_total",
            "counter",
            "Requests Binance refused for weight: 429 (limit) and 418 (IP banned).",
            &[
                (r#"status="429""#.to_string(), b.rate_limited as f64),
                (r#"status="418""#.to_string(), b.banned as f64),
            ],
        );
        metric(
            "retries_total",
            "counter",
            "Requests sent again after a failure.",
            &one(b.retries),
        );
        let e = self.events.snapshot();
        metric(
            "events_published_total",
            "counter",
            "Events NATS confirmed.",
            &one(e.published),
        );
        metric(
            "events_failed_total",
            "counter",
            "Events NATS did not take.",
            &one(e.failed),
        );
        metric(
            "outbox_backlog",
            "gauge",
            "Events recorded but not yet delivered.",
            &one(e.backlog),
        );
        let newest: Vec<(String, f64)> = self
            .progress
            .newest_candles()
            .into_iter()
            .map(|(symbol, open)| (format!(r#"symbol="{symbol}""#), open as f64 / 1000.0))
            .collect();
        metric(
            "last_closed_candle_open_time_seconds",
            "gauge",
            "Open time (Unix seconds) of the newest closed candle received, per symbol.",
            &newest,
        );
        metric(
            "run_duration_seconds",
            "gauge",
            "Seconds since the run started.",
            &[(
                String::new(),
                (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            )],
        );
        if let Some(o) = *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) {
            metric("symbols", "gauge", "Symbols the run processed.", &one(o.symbols));
            metric(
                "symbols_failed",
                "gauge",
                "Symbols that failed.",
                &one(o.symbols_failed),
            );
            metric(
                "run_success",
                "gauge",
                "1 when every symbol succeeded.",
                &one(u64::from(o.success)),
            );
        }
        out
    }
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            metrics.render(),
        )
    }
    let app = Router::new().route("/metrics", get(scrape)).with_state(metrics);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, metrics, shutdown).await {
            tracing::warn!(error = %e, "The metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}

/// PUTs the final figures to a Pushgateway: `url` as given when it already names a job
/// (`…/metrics/job/NAME…`), otherwise under `/metrics/job/binance_extractor/command/…`.
pub async fn push(url: &url::Url, metrics: &Metrics) -> Result<(), String> {
    let target = if url.path().contains("/metrics/job/") {
        url.clone()
    } else {
        let base = url.as_str().trim_end_matches('/');
        url::Url::parse(&format!(
            "{base}/metrics/job/binance_extractor/command/{}/market/{}/period/{}",
            metrics.command, metrics.market, metrics.period
        ))
        .map_err(|e| e.to_string())?
    };
    let response = reqwest::Client::new()
        .put(target.clone())
        .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(metrics.render())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{} answered HTTP {}", redact(&target), response.status()))
    }
}

fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let progress = Progress::new();
        let symbol = "BTCUSDT".parse().unwrap();
        progress.expect(&symbol, 10);
        progress.advance(&symbol, 7, Some(1_704_067_200_000));
        progress.wrote(5);
        let budget = Arc::new(WeightBudget::new(2400, Duration::from_secs(60), 0.9));
        budget.note_refusal(429);
        let events = Arc::new(EventCounters::default());
        events.published();
        let m = Metrics::new("sync", "usdm", "15m", progress, budget, events);
        m.finish(RunOutcome {
            symbols: 1,
            symbols_failed: 0,
            success: true,
        });
        let text = m.render();
        let l = r#"command="sync",market="usdm",period="15m""#;
        for line in [
            format!("binance_extractor_klines_fetched_total{{{l}}} 7"),
            format!("binance_extractor_klines_written_total{{{l}}} 5"),
            format!(r#"binance_extractor_refusals_total{{{l},status="429"}} 1"#),
            format!("binance_extractor_events_published_total{{{l}}} 1"),
            format!(
                r#"binance_extractor_last_closed_candle_open_time_seconds{{{l},symbol="BTCUSDT"}} 1704067200"#
            ),
            format!("binance_extractor_run_success{{{l}}} 1"),
            "# TYPE binance_extractor_outbox_backlog gauge".to_string(),
        ] {
            assert!(text.lines().any(|x| x == line), "missing {line}\n{text}");
        }
    }
}
