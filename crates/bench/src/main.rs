//! `bx-bench`: benchmarks of the extractor, each side by side with the fastest path the
//! underlying tool offers for the same work, so the figure that matters is the ratio.
//!
//! - `ingest` ([`ingest`]): the store's bulk write on SQLite, PostgreSQL and MySQL/MariaDB
//!   against each database's own bulk loader (`sqlite3 .import`, `psql \copy`,
//!   `LOAD DATA LOCAL INFILE`).
//!
//! Results and the exact commands are recorded in `docs/BENCHMARKS.md`.

mod ingest;

use clap::{Parser, Subcommand};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ingest(args) => ingest::run(args).await,
    }
}
