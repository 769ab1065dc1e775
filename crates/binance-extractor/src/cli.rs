//! The command line, raw: what clap parses from flags and environment variables.
//!
//! Every option can also be set by the environment variable named in its help. Values that
//! clap can check alone (a period, a symbol, a date) are typed here already; everything else
//! is checked once by [`crate::settings::Settings::resolve`].

use std::path::PathBuf;

use binance_spec::{Interval, Market, time::parse_timestamp};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum, builder::BoolishValueParser};

use crate::series::Symbol;

/// The symbols of the jobs we replace.
pub const DEFAULT_SYMBOLS: &str = "BTCUSDT,ETHUSDT,BNBUSDT,ADAUSDT,SOLUSDT,LINKUSDT,LTCUSDT,XRPUSDT";

/// Pulls Binance klines into a database, fills the holes, and announces every finished
/// extraction on NATS.
#[derive(Debug, Parser)]
#[command(
    name = "binance-extractor",
    version,
    propagate_version = true,
    max_term_width = 110
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where klines are stored: sqlite://FILE (created when absent), postgres://USER:PASS@HOST:5432/DB or mysql://USER:PASS@HOST:3306/DB
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://binance-klines.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Binance market: usdm (USD-M futures) or spot
    #[arg(long, env = "BINANCE_MARKET", default_value = "usdm", global = true, value_parser = parse_market)]
    pub market: Market,

    /// Binance REST base URL [default: the official host of the market]
    #[arg(long, env = "BINANCE_API_URL", global = true)]
    pub api_url: Option<String>,

    /// Request weight per minute to stay under [default: what Binance announces in exchangeInfo]
    #[arg(long = "max-weight-per-minute", env = "BINANCE_MAX_WEIGHT", global = true)]
    pub max_weight_per_minute: Option<u32>,

    /// Time limit of one HTTP request to Binance, seconds
    #[arg(long, env = "BINANCE_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub request_timeout_secs: u64,

    /// Log format: text for people, json for log collectors (one object per line)
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Seconds between progress lines when no terminal shows progress bars (0: none)
    #[arg(long, env = "PROGRESS_INTERVAL_SECS", default_value_t = 30, global = true)]
    pub progress_interval_secs: u64,

    /// Log level (error, warn, info, debug, trace) or a filter like info,sqlx=warn [default: RUST_LOG, else info]
    #[arg(long, env = "LOG_LEVEL", global = true)]
    pub log_level: Option<String>,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// Serve Prometheus metrics at http://ADDR/metrics while a job runs (e.g. 0.0.0.0:9100)
    #[arg(long, env = "METRICS_LISTEN", global = true, help_heading = "Metrics")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Push the final metrics to this Pushgateway URL when a job ends
    #[arg(
        long,
        env = "METRICS_PUSH_URL",
        global = true,
        help_heading = "Metrics",
        hide_env_values = true
    )]
    pub metrics_push: Option<String>,
}

/// How events reach NATS.
#[derive(Debug, Args)]
#[command(next_help_heading = "NATS events")]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated; user:password@ or a token@ may be included
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://localhost:4222",
        global = true,
        hide_env_values = true
    )]
    pub url: String,

    /// Publish extraction events on NATS
    #[arg(long = "nats-enabled", env = "NATS_ENABLED", default_value = "true", global = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub enabled: bool,

    /// First tokens of every event subject
    #[arg(
        long = "nats-subject-prefix",
        env = "NATS_SUBJECT_PREFIX",
        default_value = "binance.extraction",
        global = true
    )]
    pub subject_prefix: String,

    /// Time limit for connecting to NATS, seconds
    #[arg(
        long = "nats-connect-timeout-secs",
        env = "NATS_CONNECT_TIMEOUT_SECS",
        default_value_t = 5,
        global = true
    )]
    pub connect_timeout_secs: u64,

    /// Time limit for NATS to confirm a message, and for the final flush, seconds
    #[arg(
        long = "nats-flush-timeout-secs",
        env = "NATS_FLUSH_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub flush_timeout_secs: u64,

    /// A NATS credentials file (JWT and NKey seed)
    #[arg(long = "nats-creds", env = "NATS_CREDS", global = true)]
    pub creds: Option<PathBuf>,

    /// An NKey seed to authenticate with
    #[arg(long = "nats-nkey", env = "NATS_NKEY", global = true, hide_env_values = true)]
    pub nkey: Option<String>,

    /// CA certificate (PEM) to trust for TLS; implies TLS
    #[arg(long = "nats-tls-ca", env = "NATS_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS (with --nats-tls-key)
    #[arg(
        long = "nats-tls-cert",
        env = "NATS_TLS_CERT",
        global = true,
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Client key (PEM) for mutual TLS (with --nats-tls-cert)
    #[arg(
        long = "nats-tls-key",
        env = "NATS_TLS_KEY",
        global = true,
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Publish to JetStream with acknowledgements and deduplication (instead of core NATS)
    #[arg(long = "nats-jetstream", env = "NATS_JETSTREAM", default_value = "false", global = true, action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub jetstream: bool,

    /// JetStream stream name (created with subjects PREFIX.> when missing; used as it is otherwise)
    #[arg(
        long = "nats-stream",
        env = "NATS_STREAM",
        default_value = "BINANCE_EXTRACTION",
        global = true
    )]
    pub stream: String,

    /// How long a created stream keeps messages (e.g. 30d, 12h; 0 = forever)
    #[arg(
        long = "nats-stream-max-age",
        env = "NATS_STREAM_MAX_AGE",
        default_value = "30d",
        global = true
    )]
    pub stream_max_age: String,

    /// Retention policy of a created stream
    #[arg(long = "nats-stream-retention", env = "NATS_STREAM_RETENTION", value_enum,
          default_value_t = Retention::Limits, global = true)]
    pub stream_retention: Retention,

    /// Window in which a re-sent event is stored once (JetStream deduplication)
    #[arg(
        long = "nats-stream-duplicate-window",
        env = "NATS_STREAM_DUPLICATE_WINDOW",
        default_value = "2m",
        global = true
    )]
    pub stream_duplicate_window: String,

    /// Report events left undelivered for longer than this (e.g. 1h)
    #[arg(
        long = "nats-outbox-warn-age",
        env = "NATS_OUTBOX_WARN_AGE",
        default_value = "1h",
        global = true
    )]
    pub outbox_warn_age: String,
}

/// JetStream retention policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Retention {
    Limits,
    Interest,
    Workqueue,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The jobs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store every closed kline whose open time is in [--start, --end)
    Extract(ExtractArgs),
    /// Continue each symbol from its newest stored kline up to the newest closed one (the production job)
    Sync(SyncArgs),
    /// Find the holes in what is stored and fetch them; remember what Binance never had
    FillGaps(FillGapsArgs),
    /// Show the gap ledger and the current holes
    Gaps(GapsArgs),
    /// Check the database, Binance and NATS; exit 0 only if all pass
    Check,
    /// Work with the NATS events: deliver the undelivered, test the connection, watch
    #[command(subcommand)]
    Events(EventsCommand),
}

/// `events …`
#[derive(Debug, Clone, Subcommand)]
pub enum EventsCommand {
    /// Deliver the events left in the outbox by earlier runs (exit 1 if some remain)
    Flush,
    /// Publish the seed's four sample messages and prove each arrives (exit 1 if not)
    Test {
        /// How long to wait for the messages to come back, seconds
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Print every extraction event as it arrives
    Watch {
        /// Subject to subscribe to [default: PREFIX.>]
        #[arg(long)]
        subject: Option<String>,
        /// Print the raw JSON of each message
        #[arg(long)]
        json: bool,
        /// Exit after this many messages
        #[arg(long)]
        count: Option<u64>,
    },
}

/// Which series a command works on.
#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// Symbols, comma-separated
    #[arg(long, env = "DEFAULT_SYMBOLS", value_delimiter = ',', default_value = DEFAULT_SYMBOLS, value_parser = parse_symbol)]
    pub symbols: Vec<Symbol>,

    /// Kline interval: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M
    #[arg(long, default_value = "15m", value_parser = parse_interval)]
    pub period: Interval,
}

/// How many symbols run at once.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Symbols processed in parallel
    #[arg(long, env = "MAX_WORKERS", default_value_t = 4)]
    pub workers: usize,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// First open time: YYYY-MM-DD or RFC 3339 (2024-01-01T00:00:00Z)
    #[arg(long, value_parser = parse_time)]
    pub start: i64,
    /// End of the range, exclusive [default: now]
    #[arg(long, value_parser = parse_time)]
    pub end: Option<i64>,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Where a symbol with nothing stored starts (or at its listing, if later)
    #[arg(long, env = "DEFAULT_START_DATE", default_value = "2023-01-01T00:00:00Z", value_parser = parse_time)]
    pub since: i64,
    /// Fetch and report, but write nothing and publish nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

#[derive(Debug, Args)]
pub struct FillGapsArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Look for holes from here [default: the first stored kline]
    #[arg(long, value_parser = parse_time)]
    pub start: Option<i64>,
    /// Look for holes up to here [default: the newest stored kline]
    #[arg(long, value_parser = parse_time)]
    pub end: Option<i64>,
    /// Fetch again holes that Binance had no klines for last time
    #[arg(long)]
    pub recheck: bool,
    /// Fetch and report, but write nothing and publish nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

#[derive(Debug, Args)]
pub struct GapsArgs {
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

fn parse_market(s: &str) -> Result<Market, String> {
    s.parse()
        .map_err(|e: binance_spec::ParseMarketError| e.to_string())
}

fn parse_interval(s: &str) -> Result<Interval, String> {
    s.parse()
        .map_err(|e: binance_spec::ParseIntervalError| e.to_string())
}

fn parse_symbol(s: &str) -> Result<Symbol, String> {
    s.parse().map_err(|e: crate::series::SymbolError| e.to_string())
}

fn parse_time(s: &str) -> Result<i64, String> {
    parse_timestamp(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_periods_list_the_valid_ones() {
        let err = Cli::try_parse_from([
            "binance-extractor",
            "extract",
            "--period",
            "7m",
            "--start",
            "2024-01-01",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("invalid period '7m'") && text.contains("15m") && text.contains("1M"),
            "{text}"
        );
    }

    #[test]
    fn symbols_split_on_commas_and_are_checked() {
        let cli = Cli::try_parse_from([
            "binance-extractor",
            "sync",
            "--symbols",
            "btcusdt,ETHUSDT",
            "--period",
            "1h",
        ])
        .unwrap();
        let Command::Sync(args) = cli.command else {
            panic!()
        };
        let names: Vec<&str> = args.series.symbols.iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["BTCUSDT", "ETHUSDT"]);
        assert_eq!(args.series.period, Interval::H1);
        let err = Cli::try_parse_from(["binance-extractor", "sync", "--symbols", "BTC.USDT"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("NATS subjects"), "{err}");
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        for (value, want) in [
            ("true", true),
            ("false", false),
            ("0", false),
            ("yes", true),
            ("off", false),
        ] {
            let cli = Cli::try_parse_from(["binance-extractor", "--nats-enabled", value, "gaps"]).unwrap();
            assert_eq!(cli.global.nats.enabled, want, "{value}");
        }
    }
}
