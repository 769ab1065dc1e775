//! `bx-bench ingest`: how fast the store takes klines, against the database's own bulk loader
//! on the same rows.
//!
//! For each backend: the same deterministic klines (8 USD-M symbols × 1m, realistic prices
//! and volumes with each symbol's own decimals) are written through [`Store::write_klines`]
//! in batches of [`Store::batch_rows`] into a fresh database; then the same rows, as a CSV
//! file, are loaded by the database's own tool into the same `klines` table (created by the
//! store's migrations) of another fresh database: `sqlite3 .import`, `psql \copy`,
//! `LOAD DATA LOCAL INFILE` through the `mariadb`/`mysql` client. Only the loading is
//! timed — not connecting, migrating or writing the CSV. Both results are counted back, and
//! the store's reported `records_written` must equal the rows stored.
//!
//! The store then writes the same rows once more over the stored ones, every 100th corrected:
//! its upsert path, reported beside (no native loader upserts), and checked to count exactly
//! the corrected rows.

use std::{
    fmt::Write as _,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use binance_extractor::{
    series::{SeriesKey, Symbol},
    store::{Backend, DatabaseUrl, Store, scratch::ScratchDatabase},
};
use binance_spec::{Decimal, Interval, Kline, Market, time::MINUTE_MS};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Klines to ingest (spread over 8 symbols).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Backends to measure, comma-separated: sqlite, postgres, mysql.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres,mysql")]
    backends: Vec<String>,
    /// Runs per method; the best is reported (1 = a single cold-ish run).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    #[command(flatten)]
    servers: crate::Servers,
}

/// The symbols of the benchmark: each with its price, tick and volume decimals as on
/// Binance USD-M futures.
const SYMBOLS: [SymbolModel; 8] = [
    SymbolModel::new("BTCUSDT", 30_000, 2, 3),
    SymbolModel::new("ETHUSDT", 1_900, 2, 3),
    SymbolModel::new("BNBUSDT", 320, 3, 2),
    SymbolModel::new("SOLUSDT", 22, 4, 0),
    SymbolModel::new("XRPUSDT", 1, 4, 1),
    SymbolModel::new("ADAUSDT", 1, 5, 0),
    SymbolModel::new("DOGEUSDT", 1, 6, 0),
    SymbolModel::new("1000PEPEUSDT", 1, 7, 0),
];

/// 2023-01-01T00:00:00Z.
const START_MS: i64 = 1_672_531_200_000;

/// One measured load.
#[derive(Debug, Clone, Copy)]
struct Timing {
    rows: usize,
    elapsed: Duration,
}

impl Timing {
    fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure!(
        args.rows >= SYMBOLS.len(),
        "--rows must be at least {}",
        SYMBOLS.len()
    );
    let started = Instant::now();
    let series = generate(args.rows);
    let workdir = tempfile::tempdir().context("a temporary folder")?;
    let csv = workdir.path().join("klines.csv");
    std::fs::write(&csv, to_csv(&series)).context("writing the CSV")?;
    eprintln!(
        "generated {} klines ({} symbols × 1m, {:.1} MB of CSV) in {:.1} s",
        args.rows,
        series.len(),
        std::fs::metadata(&csv)?.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let mut table = String::from(
        "| backend | store rows/s | native loader | native rows/s | store / native | store re-write rows/s (1% corrected) |\n\
         |---|---:|---|---:|---:|---:|\n",
    );
    for name in &args.backends {
        let (server, loader) = match name.as_str() {
            "sqlite" => (
                format!("sqlite://{}", workdir.path().join("server.db").display()),
                "sqlite3 .import",
            ),
            "postgres" => (args.servers.postgres_url.clone(), "psql \\copy"),
            "mysql" => (args.servers.mysql_url.clone(), "LOAD DATA LOCAL INFILE"),
            other => bail!("unknown backend '{other}': use sqlite, postgres or mysql"),
        };
        let server: DatabaseUrl = server.parse()?;
        let store = best(
            args.runs,
            |t: &StoreTimings| t.fresh.elapsed,
            || through_store(&server, &series),
        )
        .await?;
        let native = best(
            args.runs,
            |t: &Timing| t.elapsed,
            || through_native_loader(&server, &csv, args.rows),
        )
        .await?;
        let ratio = store.fresh.rows_per_sec() / native.rows_per_sec();
        eprintln!(
            "{name}: store {:.0} rows/s ({:.2} s), {loader} {:.0} rows/s ({:.2} s), ratio {ratio:.2}; \
             store re-write {:.0} rows/s ({:.2} s)",
            store.fresh.rows_per_sec(),
            store.fresh.elapsed.as_secs_f64(),
            native.rows_per_sec(),
            native.elapsed.as_secs_f64(),
            store.rewrite.rows_per_sec(),
            store.rewrite.elapsed.as_secs_f64(),
        );
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {loader} | {:.0} | {ratio:.2} | {:.0} |",
            store.fresh.rows_per_sec(),
            native.rows_per_sec(),
            store.rewrite.rows_per_sec()
        );
    }
    print!("{table}");
    Ok(())
}

/// The fastest of `runs` runs of `measure`, by `elapsed`.
async fn best<T, F, Fut>(runs: usize, elapsed: impl Fn(&T) -> Duration, mut measure: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut fastest: Option<T> = None;
    for _ in 0..runs.max(1) {
        let t = measure().await?;
        if fastest.as_ref().is_none_or(|f| elapsed(&t) < elapsed(f)) {
            fastest = Some(t);
        }
    }
    Ok(fastest.expect("at least one run"))
}

/// What the store did with the rows.
#[derive(Debug, Clone, Copy)]
struct StoreTimings {
    /// Into an empty database: the ingest figure.
    fresh: Timing,
    /// The same rows again over the stored ones, every 100th corrected: the upsert path.
    rewrite: Timing,
}

/// Writes every series through the store, in batches of its `batch_rows`, one writer; then
/// writes them again with every 100th candle corrected.
async fn through_store(
    server: &DatabaseUrl,
    series: &[(SeriesKey, Vec<Kline>)],
) -> anyhow::Result<StoreTimings> {
    let db = ScratchDatabase::create(server).await?;
    let store = Store::connect(db.url()).await?;
    let rows: usize = series.iter().map(|(_, r)| r.len()).sum();
    let (fresh, written) = write_all(&store, series).await?;
    ensure!(
        written as usize == rows,
        "the store reported {written} rows written of {rows}"
    );
    let corrected: Vec<(SeriesKey, Vec<Kline>)> = series
        .iter()
        .map(|(key, rows)| {
            let rows = rows
                .iter()
                .enumerate()
                .map(|(i, k)| match i % 100 {
                    0 => Kline {
                        trades: k.trades + 1,
                        ..*k
                    },
                    _ => *k,
                })
                .collect();
            (key.clone(), rows)
        })
        .collect();
    let (rewrite, changed) = write_all(&store, &corrected).await?;
    let stored = count(&store, series).await?;
    store.close().await;
    db.drop_database().await?;
    ensure!(stored == rows, "{stored} rows are stored of {rows}");
    let want = series.iter().map(|(_, r)| r.len().div_ceil(100)).sum::<usize>();
    ensure!(
        changed as usize == want,
        "the store reported {changed} rows changed, {want} were corrected"
    );
    Ok(StoreTimings { fresh, rewrite })
}

/// Writes `series` in batches of `batch_rows`; the time taken and the rows reported written.
async fn write_all(store: &Store, series: &[(SeriesKey, Vec<Kline>)]) -> anyhow::Result<(Timing, u64)> {
    let batch = store.batch_rows();
    let started = Instant::now();
    let mut written = 0;
    let mut rows = 0;
    for (key, klines) in series {
        for chunk in klines.chunks(batch) {
            written += store.write_klines(key, chunk).await?;
            rows += chunk.len();
        }
    }
    let elapsed = started.elapsed();
    Ok((Timing { rows, elapsed }, written))
}

/// Loads the CSV with the database's own tool into the store's `klines` table of a fresh
/// database.
async fn through_native_loader(server: &DatabaseUrl, csv: &Path, expected: usize) -> anyhow::Result<Timing> {
    let db = ScratchDatabase::create(server).await?;
    // The migrations create the very table the store writes to.
    let store = Store::connect(db.url()).await?;
    let mut command = loader_command(db.url(), csv)?;
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {:?}", command.as_std().get_program()))?;
    let elapsed = started.elapsed();
    ensure!(
        output.status.success(),
        "{:?} failed: {}",
        command.as_std().get_program(),
        String::from_utf8_lossy(&output.stderr)
    );
    let series: Vec<(SeriesKey, Vec<Kline>)> = SYMBOLS.iter().map(|s| (s.key(), Vec::new())).collect();
    let rows = count(&store, &series).await?;
    store.close().await;
    db.drop_database().await?;
    ensure!(rows == expected, "the loader stored {rows} rows of {expected}");
    Ok(Timing { rows, elapsed })
}

/// Rows stored for the benchmark's series.
async fn count(store: &Store, series: &[(SeriesKey, Vec<Kline>)]) -> anyhow::Result<usize> {
    let mut rows = 0;
    for (key, _) in series {
        rows += store.count(key).await? as usize;
    }
    Ok(rows)
}

/// The command that bulk-loads `csv` into `klines` of `db`; passwords go through the
/// environment, not the command line.
fn loader_command(db: &DatabaseUrl, csv: &Path) -> anyhow::Result<tokio::process::Command> {
    let csv = csv.to_str().context("a UTF-8 temporary path")?;
    if db.backend() == Backend::Sqlite {
        let mut c = tokio::process::Command::new("sqlite3");
        c.args([
            db.database_name().as_str(),
            ".mode csv",
            &format!(".import {csv} klines"),
        ]);
        return Ok(c);
    }
    let url = url::Url::parse(db.expose_secret())?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let name = db.database_name();
    let password = url.password().unwrap_or("").to_string();
    Ok(match db.backend() {
        Backend::Postgres => {
            let mut c = tokio::process::Command::new("psql");
            c.env("PGPASSWORD", password).args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &host,
                "-p",
                &url.port().unwrap_or(5432).to_string(),
                "-U",
                url.username(),
                "-d",
                &name,
                "-c",
                &format!("\\copy klines FROM '{csv}' WITH (FORMAT csv)"),
            ]);
            c
        }
        _ => {
            let client = if which("mariadb") { "mariadb" } else { "mysql" };
            let mut c = tokio::process::Command::new(client);
            c.env("MYSQL_PWD", password).args([
                "--local-infile=1",
                "-h",
                &host,
                "-P",
                &url.port().unwrap_or(3306).to_string(),
                "-u",
                url.username(),
                &name,
                "-e",
                &format!(
                    "LOAD DATA LOCAL INFILE '{csv}' INTO TABLE klines FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'"
                ),
            ]);
            c
        }
    })
}

/// Whether `program` is on the PATH.
fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A symbol's starting price (whole units), price decimals and volume decimals.
#[derive(Debug, Clone, Copy)]
struct SymbolModel {
    name: &'static str,
    start_price: i64,
    price_scale: u32,
    volume_scale: u32,
}

impl SymbolModel {
    const fn new(name: &'static str, start_price: i64, price_scale: u32, volume_scale: u32) -> Self {
        SymbolModel {
            name,
            start_price,
            price_scale,
            volume_scale,
        }
    }

    fn key(&self) -> SeriesKey {
        SeriesKey {
            market: Market::UsdM,
            symbol: self.name.parse::<Symbol>().expect("valid symbol"),
            interval: Interval::M1,
        }
    }
}

/// `rows` 1m klines over the 8 symbols, the same on every call: a random walk per symbol
/// (fixed seed), prices and volumes in each symbol's decimals, quote volume = price ×
/// volume as Binance computes it.
fn generate(rows: usize) -> Vec<(SeriesKey, Vec<Kline>)> {
    let mut rng = fastrand::Rng::with_seed(0x5eed_b1a5);
    let per_symbol = rows / SYMBOLS.len();
    SYMBOLS
        .iter()
        .enumerate()
        .map(|(i, model)| {
            let n = per_symbol + usize::from(i < rows % SYMBOLS.len());
            let tick = Decimal::new(1, model.price_scale);
            // ~1,000 ticks above the minimum, so tiny coins still move in small steps.
            let mut close = Decimal::from(model.start_price).max(tick * Decimal::from(1000));
            let klines = (0..n)
                .map(|j| {
                    let open_time = START_MS + j as i64 * MINUTE_MS;
                    let open = close;
                    let step = tick * Decimal::from(rng.i64(-40..=40));
                    close = (open + step).max(tick * Decimal::from(100));
                    let high = open.max(close) + tick * Decimal::from(rng.i64(0..=20));
                    let low = (open.min(close) - tick * Decimal::from(rng.i64(0..=20))).max(tick);
                    let volume = Decimal::new(rng.i64(1..=5_000_000), model.volume_scale);
                    let taker_base =
                        (volume * Decimal::new(rng.i64(20..=80), 2)).round_dp(model.volume_scale);
                    Kline {
                        open_time,
                        open,
                        high,
                        low,
                        close,
                        volume,
                        close_time: open_time + MINUTE_MS - 1,
                        quote_volume: volume * close,
                        trades: rng.u64(1..=20_000),
                        taker_buy_base_volume: taker_base,
                        taker_buy_quote_volume: taker_base * close,
                        ignore: Decimal::ZERO,
                    }
                })
                .collect();
            (model.key(), klines)
        })
        .collect()
}

/// The rows as the loaders read them: the `klines` columns in table order, no header.
fn to_csv(series: &[(SeriesKey, Vec<Kline>)]) -> String {
    let mut out = String::with_capacity(series.iter().map(|(_, r)| r.len()).sum::<usize>() * 150);
    for (key, rows) in series {
        for k in rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                key.market.as_str(),
                key.symbol,
                key.interval.as_str(),
                k.open_time,
                k.close_time,
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
                k.quote_volume,
                k.trades,
                k.taker_buy_base_volume,
                k.taker_buy_quote_volume
            );
        }
    }
    out
}
