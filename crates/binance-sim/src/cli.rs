//! The command line: raw flags (clap, each with a `BINANCE_SIM_…` environment variable) and
//! the one step that resolves them into a listen address and a [`SimConfig`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use binance_spec::time::parse_timestamp;
use clap::Parser;

use crate::{
    clock::Clock,
    config::{ConfigError, FaultConfig, Outage, SimConfig, WeightLimit},
};

/// A Binance-compatible market-data server: spot (/api/v3) and USD-M futures (/fapi/v1)
/// klines, ping, time and exchangeInfo, synthetic or replayed, with Binance's errors, weights
/// and rate limits. Prints `listening on http://HOST:PORT` as its first line.
#[derive(Debug, Clone, Parser)]
#[command(name = "binance-sim", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "BINANCE_SIM_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The synthetic symbol universe, comma-separated.
    #[arg(
        long,
        env = "BINANCE_SIM_SYMBOLS",
        value_delimiter = ',',
        default_value = "BTCUSDT,ETHUSDT,BNBUSDT,ADAUSDT,SOLUSDT,LINKUSDT,LTCUSDT,XRPUSDT"
    )]
    pub symbols: Vec<String>,
    /// Listing date of a symbol (no candles before it); default 2020-01-01. Repeatable.
    #[arg(long = "listed", value_name = "SYMBOL=DATE")]
    pub listed: Vec<String>,
    /// A window [START, END) with no candles, for all symbols or one. Repeatable.
    #[arg(long = "outage", value_name = "[SYMBOL:]START/END")]
    pub outages: Vec<String>,
    /// A local mirror of data.binance.vision's `data/` tree to replay.
    #[arg(long, env = "BINANCE_SIM_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the synthetic prices and of the fault draws.
    #[arg(long, env = "BINANCE_SIM_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Freeze the sim clock at this date (default: the system clock).
    #[arg(long, env = "BINANCE_SIM_NOW", value_name = "DATE")]
    pub now: Option<String>,
    /// Request weight per client IP, market and window; `unlimited` disables enforcement.
    /// Default: Binance's (6000 spot, 2400 USD-M).
    #[arg(long, env = "BINANCE_SIM_WEIGHT_LIMIT", value_name = "N|unlimited")]
    pub weight_limit: Option<String>,
    /// Length of a rate-limit window in seconds.
    #[arg(
        long,
        env = "BINANCE_SIM_WEIGHT_WINDOW",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub weight_window: u64,
    /// How long a client that ignores a 429 is banned (418), in seconds.
    #[arg(
        long,
        env = "BINANCE_SIM_BAN_SECS",
        value_name = "SECS",
        default_value_t = 120
    )]
    pub ban_secs: u64,
    /// Probability of a 5xx answer to a klines request (503 JSON, 502, 504 in turn).
    #[arg(long, env = "BINANCE_SIM_FAIL_RATE", value_name = "P", default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Probability of closing the connection without an answer.
    #[arg(long, env = "BINANCE_SIM_RESET_RATE", value_name = "P", default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Probability of a 200 whose JSON body is cut in the middle.
    #[arg(
        long,
        env = "BINANCE_SIM_TRUNCATE_RATE",
        value_name = "P",
        default_value_t = 0.0
    )]
    pub truncate_rate: f64,
    /// Probability of answering only after --slow-ms.
    #[arg(long, env = "BINANCE_SIM_SLOW_RATE", value_name = "P", default_value_t = 0.0)]
    pub slow_rate: f64,
    /// Delay of a slow answer, in milliseconds.
    #[arg(long, env = "BINANCE_SIM_SLOW_MS", value_name = "MS", default_value_t = 1000)]
    pub slow_ms: u64,
}

impl Args {
    /// Resolves the flags into the listen address and a validated configuration.
    pub fn resolve(self) -> Result<(SocketAddr, SimConfig), ConfigError> {
        let invalid = |option: &'static str, input: &str, reason: String| ConfigError::Invalid {
            option,
            input: input.to_string(),
            reason,
        };
        let date = |option: &'static str, input: &str| {
            parse_timestamp(input).map_err(|e| invalid(option, input, e.to_string()))
        };

        let symbols: Vec<String> = self
            .symbols
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let mut listed = std::collections::BTreeMap::new();
        for item in &self.listed {
            let (symbol, when) = item.split_once('=').ok_or_else(|| {
                invalid(
                    "--listed",
                    item,
                    "expected SYMBOL=DATE, like BTCUSDT=2017-08-17".into(),
                )
            })?;
            listed.insert(symbol.trim().to_string(), date("--listed", when.trim())?);
        }
        let mut outages = Vec::new();
        for item in &self.outages {
            outages.push(parse_outage(item).map_err(|reason| invalid("--outage", item, reason))?);
        }
        let weight_limit = match self.weight_limit.as_deref().map(str::trim) {
            None => WeightLimit::BinanceDefault,
            Some(s) if s.eq_ignore_ascii_case("unlimited") => WeightLimit::Unlimited,
            Some(s) => match s.parse::<u32>() {
                Ok(n) if n > 0 => WeightLimit::PerWindow(n),
                _ => {
                    return Err(invalid(
                        "--weight-limit",
                        s,
                        "use a positive number or 'unlimited'".into(),
                    ));
                }
            },
        };
        let clock = match &self.now {
            Some(now) => Clock::Fixed(date("--now", now)?),
            None => Clock::System,
        };
        let config = SimConfig {
            symbols,
            listed,
            outages,
            data_dir: self.data,
            seed: self.seed,
            clock,
            weight_limit,
            weight_window: Duration::from_secs(self.weight_window),
            ban: Duration::from_secs(self.ban_secs),
            faults: FaultConfig {
                fail_rate: self.fail_rate,
                reset_rate: self.reset_rate,
                truncate_rate: self.truncate_rate,
                slow_rate: self.slow_rate,
                slow: Duration::from_millis(self.slow_ms),
            },
            ..SimConfig::default()
        };
        config.validate()?;
        Ok((self.listen, config))
    }
}

/// `START/END` or `SYMBOL:START/END`. Dates may hold ':' themselves (RFC 3339), but never
/// before a '-', and a symbol never holds a '-'.
fn parse_outage(input: &str) -> Result<Outage, String> {
    let (symbol, range) = match input.split_once(':') {
        Some((head, rest))
            if !head.contains('-') && !head.is_empty() && !head.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (Some(head.trim().to_string()), rest)
        }
        _ => (None, input),
    };
    let (start, end) = range.split_once('/').ok_or(
        "expected START/END or SYMBOL:START/END, like BTCUSDT:2021-02-11T04:00:00Z/2021-02-11T05:00:00Z",
    )?;
    let start_ms = parse_timestamp(start.trim()).map_err(|e| e.to_string())?;
    let end_ms = parse_timestamp(end.trim()).map_err(|e| e.to_string())?;
    Ok(Outage {
        symbol,
        start_ms,
        end_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<(SocketAddr, SimConfig), ConfigError> {
        let argv = std::iter::once("binance-sim").chain(extra.iter().copied());
        Args::try_parse_from(argv).unwrap().resolve()
    }

    #[test]
    fn no_flags_is_the_default_config() {
        let (listen, config) = args(&[]).unwrap();
        assert_eq!(listen.to_string(), "127.0.0.1:0");
        assert_eq!(config, SimConfig::default());
    }

    #[test]
    fn flags_resolve_to_typed_settings() {
        let (_, c) = args(&[
            "--symbols",
            "BTCUSDT, ETHBTC",
            "--listed",
            "ETHBTC=2021-01-01",
            "--outage",
            "2021-02-11T04:00:00Z/2021-02-11T05:00:00Z",
            "--outage",
            "ETHBTC:2022-01-01/2022-01-02",
            "--now",
            "2024-01-01T00:00:00Z",
            "--weight-limit",
            "unlimited",
            "--weight-window",
            "2",
            "--ban-secs",
            "3",
            "--reset-rate",
            "0.25",
            "--slow-ms",
            "50",
        ])
        .unwrap();
        assert_eq!(c.symbols, ["BTCUSDT", "ETHBTC"]);
        assert_eq!(c.listed["ETHBTC"], 1_609_459_200_000);
        assert_eq!(
            c.outages,
            [
                Outage {
                    symbol: None,
                    start_ms: 1_613_016_000_000,
                    end_ms: 1_613_019_600_000
                },
                Outage {
                    symbol: Some("ETHBTC".into()),
                    start_ms: 1_640_995_200_000,
                    end_ms: 1_641_081_600_000
                },
            ]
        );
        assert_eq!(c.clock, Clock::Fixed(1_704_067_200_000));
        assert_eq!(c.weight_limit, WeightLimit::Unlimited);
        assert_eq!(
            (c.weight_window, c.ban),
            (Duration::from_secs(2), Duration::from_secs(3))
        );
        assert_eq!(
            (c.faults.reset_rate, c.faults.slow),
            (0.25, Duration::from_millis(50))
        );
        let (_, c) = args(&["--weight-limit", "100", "--outage", "1700000000000/1700003600000"]).unwrap();
        assert_eq!(c.weight_limit, WeightLimit::PerWindow(100));
        assert_eq!(c.outages[0].symbol, None);
    }

    #[test]
    fn bad_flags_say_which_and_why() {
        let cases: [(&[&str], &str); 7] = [
            (
                &["--listed", "BTCUSDT"],
                "--listed 'BTCUSDT': expected SYMBOL=DATE",
            ),
            (&["--listed", "BTCUSDT=soon"], "invalid date/time 'soon'"),
            (&["--outage", "2021-01-01"], "expected START/END"),
            (&["--outage", "2021-01-02/2021-01-01"], "END must be after START"),
            (&["--weight-limit", "lots"], "--weight-limit 'lots'"),
            (&["--fail-rate", "1.5"], "--fail-rate 1.5 is not a probability"),
            (&["--fail-rate", "0.6", "--reset-rate", "0.6"], "more than 1"),
        ];
        for (flags, want) in cases {
            let err = args(flags).unwrap_err().to_string();
            assert!(err.contains(want), "{flags:?}: {err}");
        }
    }
}
