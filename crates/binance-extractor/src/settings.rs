//! Raw command line in, validated settings out.
//!
//! [`Settings::resolve`] is the one place where strings from flags and the environment are
//! checked and turned into typed values; nothing downstream handles raw input. A problem is
//! a [`UsageError`]: one line naming the setting and the fix, exit code 2.

use std::time::Duration;

use binance_spec::{Interval, Market};
use url::Url;

use crate::{
    cli::{Cli, Command, EventsCommand, LogFormat, NatsArgs, Retention, SeriesArgs},
    events::{JetStreamSettings, NatsSettings, validate_subject_prefix},
    series::{Symbol, TimeRange},
    store::DatabaseUrl,
};

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseUrl,
    pub market: Market,
    /// Binance's REST base URL.
    pub api_url: Url,
    /// Weight per minute to stay under, when set by the user.
    pub max_weight_per_minute: Option<u32>,
    pub request_timeout: Duration,
    /// Between progress lines (zero: none).
    pub progress_interval: Duration,
    pub nats: NatsSettings,
    /// Undelivered events older than this are reported.
    pub outbox_warn_age: Duration,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
    pub job: JobSettings,
}

/// Where metrics go.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// Serve `/metrics` here while a job runs.
    pub listen: Option<std::net::SocketAddr>,
    /// Push the final values here (a Pushgateway).
    pub push: Option<Url>,
}

/// How to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter (`info`, `debug,sqlx=warn`).
    pub filter: String,
}

/// The series a job works on.
#[derive(Debug, Clone)]
pub struct Series {
    pub symbols: Vec<Symbol>,
    pub interval: Interval,
}

/// The command and its options.
#[derive(Debug, Clone)]
pub enum JobSettings {
    Extract {
        series: Series,
        range: TimeRange,
        workers: usize,
    },
    Sync {
        series: Series,
        since: i64,
        workers: usize,
        dry_run: bool,
    },
    FillGaps {
        series: Series,
        start: Option<i64>,
        end: Option<i64>,
        recheck: bool,
        workers: usize,
        dry_run: bool,
    },
    Gaps {
        series: Series,
        json: bool,
    },
    Events(EventsCommand),
    Check,
}

impl JobSettings {
    /// The series of the command.
    pub fn series(&self) -> &Series {
        match self {
            JobSettings::Extract { series, .. }
            | JobSettings::Sync { series, .. }
            | JobSettings::FillGaps { series, .. }
            | JobSettings::Gaps { series, .. } => series,
            JobSettings::Events(_) | JobSettings::Check => &NO_SERIES,
        }
    }

    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            JobSettings::Extract { .. } => "extract",
            JobSettings::Sync { .. } => "sync",
            JobSettings::FillGaps { .. } => "fill-gaps",
            JobSettings::Gaps { .. } => "gaps",
            JobSettings::Events(EventsCommand::Flush) => "events flush",
            JobSettings::Events(EventsCommand::Test { .. }) => "events test",
            JobSettings::Events(EventsCommand::Watch { .. }) => "events watch",
            JobSettings::Check => "check",
        }
    }
}

static NO_SERIES: Series = Series {
    symbols: Vec::new(),
    interval: Interval::M15,
};

/// A setting that cannot be used: one line naming it and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Settings {
    /// Checks the command line and the environment, once.
    pub fn resolve(cli: Cli) -> Result<Settings, UsageError> {
        let g = cli.global;
        let database: DatabaseUrl = g.database_url.parse().map_err(|e| UsageError(format!("{e}")))?;
        let api_url = match &g.api_url {
            Some(raw) => parse_api_url(raw)?,
            None => Url::parse(g.market.official_base_url()).expect("official URL is valid"),
        };
        let (nats, outbox_warn_age) = nats_settings(g.nats)?;
        if g.max_weight_per_minute == Some(0) {
            return Err(UsageError(
                "--max-weight-per-minute (BINANCE_MAX_WEIGHT) must be at least 1".into(),
            ));
        }
        if g.request_timeout_secs == 0 {
            return Err(UsageError(
                "--request-timeout-secs (BINANCE_TIMEOUT_SECS) must be at least 1".into(),
            ));
        }
        let market = g.market;
        let job = match cli.command {
            Command::Extract(a) => {
                let series = series(a.series, market)?;
                let end = a.end.unwrap_or(i64::MAX);
                if end <= a.start {
                    return Err(UsageError(format!(
                        "--end must be after --start (got {} .. {})",
                        binance_spec::time::format_rfc3339_ms(a.start),
                        binance_spec::time::format_rfc3339_ms(end)
                    )));
                }
                JobSettings::Extract {
                    series,
                    range: TimeRange::new(a.start, end),
                    workers: workers(a.workers.workers)?,
                }
            }
            Command::Sync(a) => JobSettings::Sync {
                series: series(a.series, market)?,
                since: a.since,
                workers: workers(a.workers.workers)?,
                dry_run: a.dry_run,
            },
            Command::FillGaps(a) => {
                if let (Some(s), Some(e)) = (a.start, a.end)
                    && e <= s
                {
                    return Err(UsageError("--end must be after --start".into()));
                }
                JobSettings::FillGaps {
                    series: series(a.series, market)?,
                    start: a.start,
                    end: a.end,
                    recheck: a.recheck,
                    workers: workers(a.workers.workers)?,
                    dry_run: a.dry_run,
                }
            }
            Command::Gaps(a) => JobSettings::Gaps {
                series: series(a.series, market)?,
                json: a.json,
            },
            Command::Events(e) => JobSettings::Events(e),
            Command::Check => JobSettings::Check,
        };
        let filter = g
            .log_level
            .filter(|s| !s.trim().is_empty())
            .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()))
            .map(|s| normalize_level(&s))
            .unwrap_or_else(|| "info".to_string());
        Ok(Settings {
            database,
            market,
            api_url,
            max_weight_per_minute: g.max_weight_per_minute,
            request_timeout: Duration::from_secs(g.request_timeout_secs),
            progress_interval: Duration::from_secs(g.progress_interval_secs),
            nats,
            outbox_warn_age,
            metrics: MetricsSettings {
                listen: g.metrics_listen,
                push: g
                    .metrics_push
                    .as_deref()
                    .map(|raw| {
                        Url::parse(raw.trim())
                            .ok()
                            .filter(|u| matches!(u.scheme(), "http" | "https"))
                            .ok_or_else(|| {
                                UsageError(format!(
                                    "invalid METRICS_PUSH_URL '{raw}': use a Pushgateway URL like http://pushgateway:9091"
                                ))
                            })
                    })
                    .transpose()?,
            },
            log: LogSettings {
                format: g.log_format,
                filter,
            },
            job,
        })
    }
}

fn nats_settings(a: NatsArgs) -> Result<(NatsSettings, Duration), UsageError> {
    validate_subject_prefix(&a.subject_prefix).map_err(|e| UsageError(e.to_string()))?;
    if a.url.trim().is_empty() {
        return Err(UsageError(
            "NATS_URL is empty: set it like nats://localhost:4222, or set NATS_ENABLED=false".into(),
        ));
    }
    for path in [&a.creds, &a.tls_ca, &a.tls_cert, &a.tls_key]
        .into_iter()
        .flatten()
    {
        if !path.is_file() {
            return Err(UsageError(format!(
                "NATS file {} does not exist: check NATS_CREDS / NATS_TLS_CA / NATS_TLS_CERT / NATS_TLS_KEY",
                path.display()
            )));
        }
    }
    let jetstream = if a.jetstream {
        if a.stream.is_empty() || a.stream.contains(['.', '*', '>', ' ']) {
            return Err(UsageError(format!(
                "invalid NATS_STREAM '{}': use a name without dots, spaces or wildcards",
                a.stream
            )));
        }
        Some(JetStreamSettings {
            stream: a.stream,
            max_age: duration("NATS_STREAM_MAX_AGE", &a.stream_max_age)?,
            duplicate_window: duration("NATS_STREAM_DUPLICATE_WINDOW", &a.stream_duplicate_window)?,
            retention: match a.stream_retention {
                Retention::Limits => async_nats::jetstream::stream::RetentionPolicy::Limits,
                Retention::Interest => async_nats::jetstream::stream::RetentionPolicy::Interest,
                Retention::Workqueue => async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
            },
        })
    } else {
        None
    };
    let settings = NatsSettings {
        enabled: a.enabled,
        url: a.url,
        subject_prefix: a.subject_prefix,
        connect_timeout: Duration::from_secs(a.connect_timeout_secs.max(1)),
        flush_timeout: Duration::from_secs(a.flush_timeout_secs.max(1)),
        creds_file: a.creds,
        nkey_seed: a.nkey,
        tls_ca: a.tls_ca,
        tls_client: a.tls_cert.zip(a.tls_key),
        jetstream,
    };
    Ok((settings, duration("NATS_OUTBOX_WARN_AGE", &a.outbox_warn_age)?))
}

/// Reads `30d`, `12h`, `90m`, `45s`, `500ms` or `0`.
fn duration(name: &str, raw: &str) -> Result<Duration, UsageError> {
    let s = raw.trim();
    let fail = || {
        UsageError(format!(
            "invalid {name} '{raw}': use a duration like 30d, 12h, 90m, 45s or 0"
        ))
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| fail())?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(fail()),
    };
    Ok(Duration::from_secs(secs))
}

fn series(args: SeriesArgs, market: Market) -> Result<Series, UsageError> {
    if !market.supports(args.period) {
        return Err(UsageError(format!(
            "--period {} is not available on the {market} market: it is spot only (use --market spot)",
            args.period
        )));
    }
    let mut symbols: Vec<Symbol> = Vec::with_capacity(args.symbols.len());
    for s in args.symbols {
        if !symbols.contains(&s) {
            symbols.push(s);
        }
    }
    if symbols.is_empty() {
        return Err(UsageError(
            "no symbols given: use --symbols BTCUSDT,ETHUSDT".into(),
        ));
    }
    Ok(Series {
        symbols,
        interval: args.period,
    })
}

fn workers(n: usize) -> Result<usize, UsageError> {
    if n == 0 || n > 64 {
        return Err(UsageError(format!(
            "--workers (MAX_WORKERS) must be between 1 and 64, got {n}"
        )));
    }
    Ok(n)
}

fn parse_api_url(raw: &str) -> Result<Url, UsageError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        UsageError(format!(
            "invalid BINANCE_API_URL '{raw}': {e}; use a base URL like https://fapi.binance.com or http://127.0.0.1:PORT"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(UsageError(format!(
            "invalid BINANCE_API_URL '{raw}': use an http(s) base URL like https://fapi.binance.com"
        )));
    }
    Ok(url)
}

/// Accepts Python-style level names (`INFO`, `WARNING`) as well as tracing filters.
fn normalize_level(s: &str) -> String {
    match s.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".into(),
        "critical" | "fatal" => "error".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn resolve(args: &[&str]) -> Result<Settings, UsageError> {
        Settings::resolve(Cli::try_parse_from(args).expect("clap accepts"))
    }

    #[test]
    fn defaults() {
        let s = resolve(&["bx", "--database-url", "sqlite://x.db", "sync"]).unwrap();
        assert_eq!(s.market, Market::UsdM);
        assert_eq!(s.api_url.as_str(), "https://fapi.binance.com/");
        let JobSettings::Sync { since, workers, .. } = s.job else {
            panic!()
        };
        assert_eq!(since, 1_672_531_200_000, "2023-01-01T00:00:00Z");
        assert_eq!(workers, 4);
    }

    #[test]
    fn usage_errors_name_the_setting_and_the_fix() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["bx", "extract", "--start", "2024-02-01", "--end", "2024-01-01"],
                "--end must be after --start",
            ),
            (
                &["bx", "--nats-subject-prefix", "a..b", "gaps"],
                "NATS_SUBJECT_PREFIX",
            ),
            (&["bx", "--database-url", "oracle://x/y", "gaps"], "DATABASE_URL"),
            (&["bx", "--api-url", "ftp://x", "gaps"], "BINANCE_API_URL"),
            (&["bx", "sync", "--workers", "0"], "--workers"),
            (&["bx", "sync", "--period", "1s"], "spot only"),
        ];
        for (args, want) in cases {
            let err = resolve(args).unwrap_err().to_string();
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn durations() {
        for (raw, want) in [
            ("30d", 30 * 86_400_000),
            ("12h", 43_200_000),
            ("2m", 120_000),
            ("45s", 45_000),
            ("500ms", 500),
            ("0", 0),
        ] {
            assert_eq!(duration("X", raw).unwrap().as_millis(), want, "{raw}");
        }
        for bad in ["", "d", "3w", "1.5h", "-1s"] {
            assert!(
                duration("X", bad).unwrap_err().to_string().contains("invalid X"),
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicate_symbols_are_dropped_in_order() {
        let s = resolve(&["bx", "gaps", "--symbols", "ETHUSDT,BTCUSDT,ethusdt"]).unwrap();
        let names: Vec<&str> = s.job.series().symbols.iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["ETHUSDT", "BTCUSDT"]);
    }
}
