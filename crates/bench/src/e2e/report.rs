//! Figures of one run, checked against the targets of issue 8, and the table they make.

use std::{fmt::Write as _, time::Duration};

use binance_sim::Stats;
use binance_spec::Market;

use super::{Spec, child::Measured, summary};

/// The Python extractor we replace, on the standard workload into MariaDB (issue 8).
const PYTHON_KLINES_PER_SEC: f64 = 15_000.0;
const PYTHON_PEAK_MIB: f64 = 263.0;

/// Peak RSS target, every workload.
const RSS_TARGET_MIB: f64 = 64.0;

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub workload: &'static str,
    /// What the workload is, for the legend.
    pub what: &'static str,
    pub backend: String,
    pub market: Market,
    /// `(limit, window)` of the rate-limited run.
    pub limit: Option<(u32, Duration)>,
    /// Rows the database holds for the workload's series after the run.
    pub stored: u64,
    /// Rows the simulator serves for the workload's range (the oracle).
    pub served: u64,
    /// Rows the simulator sent in complete 200 answers (each row once, if nothing was
    /// fetched twice).
    pub sent: u64,
    pub wall: Duration,
    pub max_rss_kib: u64,
    pub cpu: Duration,
    /// Klines requests the simulator received.
    pub klines_requests: u64,
    /// Their weight, by each request's `limit` (refused ones not charged).
    pub klines_weight: u64,
    /// The least klines weight the workload can cost.
    pub weight_floor: u64,
    /// Every request and its weight, as the extractor counted them (setup included).
    pub tool_requests: u64,
    pub tool_weight: u64,
    pub rate_limited_429: u64,
    pub banned_418: u64,
    /// Highest weight used in one window of the simulator.
    pub max_window_weight: u64,
    /// What went wrong with the data or the process (empty when all is well).
    pub problems: Vec<String>,
}

impl RunResult {
    pub(super) fn new(spec: &Spec, m: &Measured, stats: &Stats, stored: u64, served: u64) -> Self {
        let w = &spec.workload;
        let market = w.market;
        let klines_weight = stats
            .klines_log
            .iter()
            .filter(|e| e.status != 429 && e.status != 418)
            .map(|e| u64::from(market.klines_weight(e.limit.unwrap_or(market.default_klines_limit()))))
            .sum();
        let summary = summary(m);
        let number = |name: &str| {
            summary
                .as_ref()
                .and_then(|s| s.get(name))
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        };
        let mut problems = Vec::new();
        if m.code != 0 {
            let tail: Vec<&str> = m.stderr.lines().rev().take(5).collect();
            problems.push(format!(
                "the extractor exited with {}: {}",
                m.code,
                tail.join(" | ")
            ));
        }
        if stored != served {
            problems.push(format!("{stored} rows stored, the simulator serves {served}"));
        }
        if served != w.rows() {
            problems.push(format!(
                "the simulator serves {served} rows, the workload has {}",
                w.rows()
            ));
        }
        if stats.klines_log.len() as u64 != stats.klines_requests {
            problems.push("the simulator's klines log overflowed: weight undercounted".into());
        }
        RunResult {
            workload: if spec.limit.is_some() {
                "rate-limited"
            } else {
                w.name
            },
            what: w.what,
            backend: spec.backend.clone(),
            market,
            limit: spec.limit,
            stored,
            served,
            sent: stats.rows_served,
            wall: m.wall,
            max_rss_kib: m.max_rss_kib,
            cpu: m.cpu,
            klines_requests: stats.klines_requests,
            klines_weight,
            weight_floor: w.weight_floor(),
            tool_requests: number("requests"),
            tool_weight: number("weight_spent"),
            rate_limited_429: stats.rate_limited_429,
            banned_418: stats.banned_418,
            max_window_weight: stats.max_weight_in_any_window.get(market),
            problems,
        }
    }

    pub fn klines_per_sec(&self) -> f64 {
        self.stored as f64 / self.wall.as_secs_f64()
    }

    pub fn peak_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }

    fn per_thousand(&self, n: u64) -> f64 {
        n as f64 * 1000.0 / self.stored.max(1) as f64
    }

    /// The least wall time the weight budget allows: the extractor's allowance (`ceiling` of
    /// the limit) spent in full in every window from the first, the requests of the last
    /// window sent at its start — `(⌈W / ⌊ceiling·L⌋⌉ − 1) × window` for the weight W the run
    /// spent in all (setup requests included). The same at the full limit, for reference.
    pub fn minimum_wall(&self, ceiling: f64) -> Option<(Duration, Duration)> {
        let (limit, window) = self.limit?;
        let at = |share: f64| {
            let allowance = ((f64::from(limit) * share).floor() as u64).max(1);
            let windows = self.tool_weight.div_ceil(allowance).max(1);
            window * (windows - 1) as u32
        };
        Some((at(ceiling), at(1.0)))
    }

    /// The klines/s target of the backend on the standard workload.
    fn throughput_target(&self) -> Option<f64> {
        let target = match self.backend.as_str() {
            "mysql" => 150_000.0,
            _ => 300_000.0,
        };
        (self.workload == "standard").then_some(target)
    }

    fn weight_target(&self) -> f64 {
        match self.market {
            Market::Spot => 2.0,
            Market::UsdM => 4.1,
        }
    }

    /// A line for the progress log.
    pub fn one_line(&self) -> String {
        format!(
            "{} / {}: {} rows in {:.2} s = {:.0} klines/s, peak RSS {:.1} MiB, CPU {:.2} s, \
             {} klines requests, weight {} (floor {}); the extractor counted {} requests, weight {}; \
             busiest window {}; 429: {}, 418: {}{}",
            self.workload,
            self.backend,
            self.stored,
            self.wall.as_secs_f64(),
            self.klines_per_sec(),
            self.peak_mib(),
            self.cpu.as_secs_f64(),
            self.klines_requests,
            self.klines_weight,
            self.weight_floor,
            self.tool_requests,
            self.tool_weight,
            self.max_window_weight,
            self.rate_limited_429,
            self.banned_418,
            if self.problems.is_empty() {
                String::new()
            } else {
                format!(" — PROBLEMS: {}", self.problems.join("; "))
            }
        )
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The machine and its load, for the record: CPU model and count, memory, load average.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{cpus} × {model}, {memory_gib:.0} GiB; load average {}",
        load.join(" ")
    )
}

/// The table (Markdown), then a line comparing with the Python extractor.
pub fn render(results: &[RunResult], ceiling: f64) -> String {
    let mut out = String::from(
        "| workload | backend | rows stored = served | wall s | klines/s | peak RSS MiB | CPU s | \
         requests / 1k rows | weight / 1k rows (floor) | 429 / 418 | targets |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in results {
        let rows = if r.stored == r.served && r.sent == r.served {
            thousands(r.stored)
        } else {
            format!(
                "{} ≠ {} (sent {})",
                thousands(r.stored),
                thousands(r.served),
                thousands(r.sent)
            )
        };
        let weight = r.per_thousand(r.klines_weight);
        let floor = r.per_thousand(r.weight_floor);
        let mut targets = Vec::new();
        let mut wall = format!("{:.2}", r.wall.as_secs_f64());
        if let Some((minimum, at_full)) = r.minimum_wall(ceiling) {
            let ratio = r.wall.as_secs_f64() / minimum.as_secs_f64().max(1e-9);
            wall = format!("{wall} (min {:.0}; {:.2}×)", minimum.as_secs_f64(), ratio);
            targets.push(format!(
                "wall ≤ 1.1 × min {} (min at {:.0} % of {} / {} s: {:.0} s; at 100 %: {:.0} s)",
                mark(ratio <= 1.1),
                ceiling * 100.0,
                r.limit.map_or(0, |l| l.0),
                r.limit.map_or(0, |l| l.1.as_secs()),
                minimum.as_secs_f64(),
                at_full.as_secs_f64()
            ));
            targets.push(format!(
                "no 429 {} (busiest window: {} of {})",
                mark(r.rate_limited_429 == 0 && r.banned_418 == 0),
                r.max_window_weight,
                r.limit.map_or(0, |l| l.0)
            ));
        } else if let Some(target) = r.throughput_target() {
            targets.push(format!(
                "≥ {} klines/s {}",
                thousands(target as u64),
                mark(r.klines_per_sec() >= target)
            ));
        }
        targets.push(format!("≤ 64 MiB {}", mark(r.peak_mib() <= RSS_TARGET_MIB)));
        // Where each symbol's last, partial page puts the floor above the target, no client
        // can do better than the floor: that is what is checked then, and said.
        let above_floor = floor > r.weight_target();
        let weight_ok = weight <= r.weight_target().max(floor) + 1e-9;
        targets.push(if above_floor {
            format!(
                "weight ≤ {} {} (at the floor, which each symbol's partial last page puts above it)",
                r.weight_target(),
                mark(weight_ok)
            )
        } else {
            format!("weight ≤ {} {}", r.weight_target(), mark(weight_ok))
        });
        if !r.problems.is_empty() {
            targets.push(format!("**data: {}**", r.problems.join("; ")));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.3} | {:.3} ({:.3}) | {} / {} | {} |",
            r.workload,
            r.backend,
            rows,
            wall,
            thousands(r.klines_per_sec().round() as u64),
            r.peak_mib(),
            r.cpu.as_secs_f64(),
            r.per_thousand(r.klines_requests),
            weight,
            floor,
            r.rate_limited_429,
            r.banned_418,
            targets.join(" · ")
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    out.push('\n');
    for r in results {
        if !seen.contains(&r.workload) {
            seen.push(r.workload);
            let how = if r.limit.is_some() {
                "`sync` of the standard workload under the weight limit"
            } else {
                "`extract`"
            };
            let _ = writeln!(out, "- {}: {} ({how})", r.workload, r.what);
        }
    }
    if let Some(r) = results
        .iter()
        .find(|r| r.workload == "standard" && r.backend == "mysql")
        .or_else(|| results.iter().find(|r| r.workload == "standard"))
    {
        let _ = writeln!(
            out,
            "\nAgainst the Python extractor (standard workload into MariaDB: {} klines/s, {} MiB peak): \
             {} here is {:.1}× faster with {:.1}× less memory.",
            thousands(PYTHON_KLINES_PER_SEC as u64),
            PYTHON_PEAK_MIB,
            r.backend,
            r.klines_per_sec() / PYTHON_KLINES_PER_SEC,
            PYTHON_PEAK_MIB / r.peak_mib()
        );
    }
    out
}
