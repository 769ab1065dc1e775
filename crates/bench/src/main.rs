//! `bx-bench`: benchmarks of the extractor, each side by side with the fastest path the
//! underlying tool offers for the same work, so the figure that matters is the ratio.
//!
//! - `ingest` ([`ingest`]): the store's bulk write on SQLite, PostgreSQL and MySQL/MariaDB
//!   against each database's own bulk loader (`sqlite3 .import`, `psql \copy`,
//!   `LOAD DATA LOCAL INFILE`).
//! - `e2e` ([`e2e`]): the release binary end to end against the simulator — klines/s into
//!   each database, peak memory, requests and weight per 1,000 rows, and wall time under a
//!   weight limit against the minimum the budget allows — with the targets beside.
//!
//! Results and the exact commands are recorded in `docs/BENCHMARKS.md`.

mod e2e;
mod ingest;

use clap::{Args, Parser, Subcommand};

/// The database servers a benchmark connects through; each run creates and drops its own
/// database on them.
#[derive(Debug, Args)]
struct Servers {
    /// A PostgreSQL database to connect through.
    #[arg(
        long,
        env = "TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// A MySQL/MariaDB database to connect through.
    #[arg(
        long,
        env = "TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    mysql_url: String,
}

#[derive(Debug, Parser)]
#[command(
    name = "bx-bench",
    about = "Benchmarks of binance-extractor against the native fast paths"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store ingest: the same klines through Store::write_klines and through each
    /// database's own bulk loader.
    Ingest(ingest::Args),
    /// End to end: the extractor binary against the simulator into each database, with
    /// klines/s, peak RSS, weight per 1,000 rows and the rate-limited wall time.
    E2e(e2e::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest::run(args).await,
        Command::E2e(args) => e2e::run(args).await,
    }
}
