//! Progress a person can read on long runs.
//!
//! On a terminal (text logs, stderr is a TTY): one bar per symbol, and log lines printed
//! above the bars without tearing them ([`LogWriter`] suspends the bars while a line is
//! written). Otherwise (JSON logs, CronJob output): one summary line every
//! `PROGRESS_INTERVAL_SECS` — rows, requests, weight used, ETA.

use std::{
    collections::HashMap,
    io::{IsTerminal, Write},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{binance::WeightBudget, series::Symbol};

/// The terminal's bars, when progress is drawn as bars.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Sets up bars on stderr if it is a terminal; returns whether it did.
pub fn init_bars() -> bool {
    if !std::io::stderr().is_terminal() {
        return false;
    }
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
    true
}

/// A log writer that keeps progress bars intact: each line is written with the bars lifted.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars
                .suspend(|| std::io::stderr().write_all(buf))
                .map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

#[derive(Debug, Default)]
struct Entry {
    expected: u64,
    done: u64,
    /// Open time of the newest closed candle received.
    last_open: Option<i64>,
    bar: Option<ProgressBar>,
}

/// Rows fetched against rows expected, per symbol and in all.
#[derive(Debug, Default)]
pub struct Progress {
    symbols: Mutex<HashMap<Symbol, Entry>>,
    rows: AtomicU64,
    written: AtomicU64,
    expected: AtomicU64,
}

impl Progress {
    /// A new, empty tracker.
    pub fn new() -> Arc<Self> {
        Arc::new(Progress::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Symbol, Entry>> {
        self.symbols.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `symbol` will fetch about `rows` more rows.
    pub fn expect(&self, symbol: &Symbol, rows: u64) {
        self.expected.fetch_add(rows, Ordering::Relaxed);
        let mut symbols = self.lock();
        let entry = symbols.entry(symbol.clone()).or_default();
        entry.expected += rows;
        if let Some(bars) = BARS.get() {
            let bar = entry.bar.get_or_insert_with(|| {
                let bar = bars.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>12} [{bar:30}] {pos:>9}/{len:9} {per_sec:>12} {eta:>6}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(symbol.to_string());
                bar
            });
            bar.set_length(entry.expected.max(entry.done));
        }
    }

    /// `symbol` received `rows` rows, the newest opening at `last_open`.
    pub fn advance(&self, symbol: &Symbol, rows: u64, last_open: Option<i64>) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        let mut symbols = self.lock();
        let entry = symbols.entry(symbol.clone()).or_default();
        entry.done += rows;
        entry.last_open = entry.last_open.max(last_open);
        if let Some(bar) = &entry.bar {
            bar.set_length(entry.expected.max(entry.done));
            bar.set_position(entry.done);
        }
    }

    /// `symbol` is done; its bar is cleared.
    pub fn finish(&self, symbol: &Symbol) {
        if let Some(entry) = self.lock().get_mut(symbol)
            && let Some(bar) = entry.bar.take()
        {
            bar.finish_and_clear();
        }
    }

    /// `rows` rows were inserted or changed in the store.
    pub fn wrote(&self, rows: u64) {
        self.written.fetch_add(rows, Ordering::Relaxed);
    }

    /// Rows written to the store so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Open time of the newest candle received per symbol, sorted by symbol.
    pub fn newest_candles(&self) -> Vec<(Symbol, i64)> {
        let mut out: Vec<(Symbol, i64)> = self
            .lock()
            .iter()
            .filter_map(|(s, e)| e.last_open.map(|t| (s.clone(), t)))
            .collect();
        out.sort();
        out
    }

    /// Rows received and rows expected, in all.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.rows.load(Ordering::Relaxed),
            self.expected.load(Ordering::Relaxed),
        )
    }

    /// Logs one summary line every `every` until `stop` (not on a terminal with bars).
    pub fn spawn_reporter(
        self: &Arc<Self>,
        budget: Arc<WeightBudget>,
        every: Duration,
        stop: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if BARS.get().is_some() || every.is_zero() {
            return None;
        }
        let progress = self.clone();
        Some(tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                let (rows, expected) = progress.totals();
                let stats = budget.stats();
                let elapsed = started.elapsed().as_secs_f64();
                let rate = rows as f64 / elapsed.max(0.001);
                let eta =
                    (rate > 0.0 && expected > rows).then(|| ((expected - rows) as f64 / rate).round() as u64);
                tracing::info!(
                    rows,
                    expected,
                    requests = stats.requests,
                    weight = stats.weight_spent,
                    weight_in_window = stats.used_in_window,
                    weight_limit = stats.limit,
                    rows_per_sec = rate.round() as u64,
                    eta_secs = eta,
                    "Progress."
                );
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rows_against_expectations() {
        let p = Progress::new();
        let (a, b): (Symbol, Symbol) = ("BTCUSDT".parse().unwrap(), "ETHUSDT".parse().unwrap());
        p.expect(&a, 100);
        p.expect(&b, 50);
        p.advance(&a, 60, Some(10));
        p.advance(&b, 50, Some(20));
        p.advance(&a, 1, Some(5));
        p.finish(&b);
        assert_eq!(p.totals(), (111, 150));
        assert_eq!(p.newest_candles(), [(a, 10), (b, 20)]);
    }
}
