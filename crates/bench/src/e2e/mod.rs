//! `bx-bench e2e`: the extractor end to end, as a user runs it, against the simulator.
//!
//! For each workload ([`workload`]) and database, the harness starts a fresh `binance-sim`
//! in-process (frozen clock at the workload's end; weight unlimited unless the run is the
//! rate-limited one), creates a fresh database, and runs the real release binary
//! ([`child`]) — `extract` for the throughput runs, `sync` for the rate-limited one. It then
//! reads what the simulator saw (`/sim/stats`: every klines request with its `limit`) and
//! counts what the database holds, against what the simulator serves for the range.
//!
//! Figures, per run: klines/s (rows stored ÷ the process's wall time, start-up and
//! migrations included), peak RSS and CPU time of the extractor process (`wait4`), klines
//! requests and weight per 1,000 rows beside the least weight Binance's price list allows,
//! and 429/418 answers. The rate-limited run adds its wall time against the minimum the
//! weight budget allows. One table, with the targets of issue 8 beside the figures.

mod child;
mod report;
mod workload;

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, bail, ensure};
use binance_extractor::{
    series::{SeriesKey, Symbol},
    store::{DatabaseUrl, Store, scratch::ScratchDatabase},
};
use binance_sim::{Clock, SimConfig, WeightLimit};
use binance_spec::time::format_rfc3339_ms;

use child::Measured;
use report::RunResult;
use workload::Workload;

/// Workloads `--workload` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadName {
    /// 8 symbols × 15m × 2023-01-01..2025-01-01, USD-M: 561,408 candles, every backend.
    Standard,
    /// 10 symbols × 1m × 2024, USD-M: 5,270,400 candles, every backend.
    Long,
    /// 8 symbols × 1m × 2024-01..02, spot: 691,200 candles, first backend only.
    Spot,
    /// The standard workload with `sync` under a small weight limit, first backend only.
    RateLimited,
    /// All of the above.
    All,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workloads, comma-separated: standard, long, spot, rate-limited, all.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    workload: Vec<WorkloadName>,
    /// Backends, comma-separated: sqlite, postgres, mysql. Spot and the rate-limited run use
    /// the first.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres,mysql")]
    backends: Vec<String>,
    /// Runs of each throughput measurement; the fastest is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// `--workers` passed to the extractor [default: the extractor's own default].
    #[arg(long)]
    workers: Option<usize>,
    /// The extractor binary [default: build the release binary with cargo and use it].
    #[arg(long)]
    extractor: Option<PathBuf>,
    /// Weight limit per window of the rate-limited run.
    #[arg(long, default_value_t = 100)]
    rate_limit: u32,
    /// Window of the rate-limited run, seconds.
    #[arg(long, default_value_t = 1)]
    rate_window_secs: u64,
    #[command(flatten)]
    servers: crate::Servers,
}

/// The share of the limit the extractor uses by default (its safety ceiling).
const CEILING: f64 = 0.9;

/// One run to make.
#[derive(Debug, Clone)]
struct Spec {
    workload: Workload,
    backend: String,
    /// `Some((limit, window))` for the rate-limited run.
    limit: Option<(u32, Duration)>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure!(!args.backends.is_empty(), "--backends names no backend");
    for backend in &args.backends {
        ensure!(
            matches!(backend.as_str(), "sqlite" | "postgres" | "mysql"),
            "unknown backend '{backend}': use sqlite, postgres or mysql"
        );
    }
    let all = args.workload.contains(&WorkloadName::All);
    let wants = |w| all || args.workload.contains(&w);
    let first = args.backends[0].clone();
    let mut specs = Vec::new();
    for (name, workload) in [
        (WorkloadName::Standard, Workload::standard()),
        (WorkloadName::Long, Workload::long()),
    ] {
        if wants(name) {
            for backend in &args.backends {
                specs.push(Spec {
                    workload: workload.clone(),
                    backend: backend.clone(),
                    limit: None,
                });
            }
        }
    }
    if wants(WorkloadName::Spot) {
        specs.push(Spec {
            workload: Workload::spot(),
            backend: first.clone(),
            limit: None,
        });
    }
    if wants(WorkloadName::RateLimited) {
        ensure!(args.rate_window_secs > 0, "--rate-window-secs must be at least 1");
        specs.push(Spec {
            workload: Workload::standard(),
            backend: first,
            limit: Some((args.rate_limit, Duration::from_secs(args.rate_window_secs))),
        });
    }

    let extractor = match &args.extractor {
        Some(path) => path.clone(),
        None => child::build_extractor()?,
    };
    eprintln!("extractor: {}", extractor.display());
    let before = report::machine();
    let mut results = Vec::new();
    for spec in &specs {
        let runs = if spec.limit.is_some() { 1 } else { args.runs.max(1) };
        let mut best: Option<RunResult> = None;
        for _ in 0..runs {
            let result = run_one(&args, &extractor, spec).await?;
            eprintln!("{}", result.one_line());
            if best.as_ref().is_none_or(|b| result.wall < b.wall) {
                best = Some(result);
            }
        }
        results.push(best.expect("at least one run"));
    }
    println!(
        "Finished {}. Machine: {before} before the runs, {} after.\n",
        binance_spec::time::format_rfc3339_ms(binance_extractor::clock::system_now_ms()),
        report::machine().rsplit("; ").next().unwrap_or("")
    );
    print!("{}", report::render(&results, CEILING));
    let failed: Vec<&RunResult> = results.iter().filter(|r| !r.problems.is_empty()).collect();
    if !failed.is_empty() {
        for r in failed {
            eprintln!("{} / {}: {}", r.workload, r.backend, r.problems.join("; "));
        }
        bail!("some runs did not store exactly what the simulator serves");
    }
    Ok(())
}

/// The server URL of `backend`, for [`ScratchDatabase::create`].
fn server_url(args: &Args, backend: &str, dir: &std::path::Path) -> anyhow::Result<DatabaseUrl> {
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.join("server.db").display()),
        "postgres" => args.servers.postgres_url.clone(),
        _ => args.servers.mysql_url.clone(),
    };
    Ok(url.parse()?)
}

/// Fresh simulator and database, one extractor run, and what came of it.
async fn run_one(args: &Args, extractor: &std::path::Path, spec: &Spec) -> anyhow::Result<RunResult> {
    let w = &spec.workload;
    let dir = tempfile::tempdir().context("a temporary folder")?;
    let server = server_url(args, &spec.backend, dir.path())?;
    let db = ScratchDatabase::create(&server)
        .await
        .with_context(|| format!("creating a fresh {} database", spec.backend))?;
    let (weight_limit, weight_window) = match spec.limit {
        Some((limit, window)) => (WeightLimit::PerWindow(limit), window),
        None => (WeightLimit::Unlimited, Duration::from_secs(60)),
    };
    let sim = binance_sim::spawn(SimConfig {
        symbols: w.symbols.iter().map(|s| s.to_string()).collect(),
        clock: Clock::Fixed(w.end),
        weight_limit,
        weight_window,
        ..SimConfig::default()
    })
    .await
    .context("starting the simulator")?;

    let mut command = Command::new(extractor);
    for var in [
        "DATABASE_URL",
        "BINANCE_MARKET",
        "BINANCE_API_URL",
        "BINANCE_MAX_WEIGHT",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "RUST_LOG",
        "NATS_URL",
        "NATS_ENABLED",
        "DEFAULT_SYMBOLS",
        "DEFAULT_START_DATE",
        "MAX_WORKERS",
        "METRICS_LISTEN",
        "METRICS_PUSH_URL",
    ] {
        command.env_remove(var);
    }
    command
        .env("DATABASE_URL", db.url().expose_secret())
        .env("BINANCE_API_URL", sim.base_url())
        .env("BINANCE_MARKET", w.market.as_str())
        .env("NATS_ENABLED", "false")
        .env("LOG_FORMAT", "json");
    let symbols = w.symbols.join(",");
    let start = format_rfc3339_ms(w.start);
    if spec.limit.is_some() {
        command.args(["sync", "--since", &start]);
    } else {
        let end = format_rfc3339_ms(w.end);
        command.args(["extract", "--start", &start, "--end", &end]);
    }
    command.args(["--symbols", &symbols, "--period", w.interval.as_str()]);
    if let Some(workers) = args.workers {
        command.args(["--workers", &workers.to_string()]);
    }
    let measured = child::run_measured(command, dir.path(), Duration::from_secs(900)).await?;
    let stats = sim.stats();

    let store = Store::connect(db.url()).await?;
    let mut stored = 0;
    let mut served = 0;
    for symbol in &w.symbols {
        let key = SeriesKey {
            market: w.market,
            symbol: symbol.parse::<Symbol>()?,
            interval: w.interval,
        };
        stored += store.count(&key).await?;
        served += sim
            .dataset()
            .klines(w.market, symbol, w.interval, w.start, w.end - 1)
            .len() as u64;
    }
    store.close().await;
    db.drop_database().await?;
    sim.shutdown().await;
    Ok(RunResult::new(spec, &measured, &stats, stored, served))
}

/// The JSON summary the extractor prints on stdout in JSON-log mode.
fn summary(measured: &Measured) -> Option<serde_json::Value> {
    measured
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("summary").is_some())
}
