//! Logs: structured fields first, then a short message; text for people, one JSON object per
//! line for collectors. Logs go to stderr; stdout carries only the command's output (the run
//! summary, the `gaps` report).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{cli::LogFormat, progress};

/// Installs the global subscriber. `filter` is a tracing filter such as `info` or
/// `debug,sqlx=warn`; an invalid one falls back to `info` with a warning.
pub fn init(format: LogFormat, filter: &str) {
    let (env_filter, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    };
    // sqlx logs every statement at info and slow ones (with their full SQL) at warn: neither
    // is news for an operator. Its errors reach the log through our own error messages.
    let env_filter = env_filter
        .add_directive("sqlx=error".parse().expect("valid directive"))
        .add_directive("async_nats=warn".parse().expect("valid directive"));
    let registry = tracing_subscriber::registry().with(env_filter);
    match format {
        LogFormat::Text => {
            // On a terminal, progress bars are drawn below the log lines.
            progress::init_bars();
            registry
                .with(
                    fmt::layer()
                        .with_writer(progress::LogWriter)
                        .with_target(false)
                        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
                )
                .init()
        }
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    // The run's span: {"run_id": …, "command": …} on every line.
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    if let Some(e) = bad {
        tracing::warn!("Ignoring LOG_LEVEL '{filter}': {e}; logging at info.");
    }
}
