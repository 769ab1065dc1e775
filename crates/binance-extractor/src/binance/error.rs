//! What can go wrong talking to Binance, and whether trying again can help.

use std::time::Duration;

use super::decode::DecodeError;

/// A failed request to Binance.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BinanceError {
    /// Binance answered with its error body `{"code": …, "msg": …}`.
    #[error("Binance says {code} {msg}")]
    Api {
        /// HTTP status of the answer.
        status: u16,
        /// Binance's error code, e.g. -1121.
        code: i64,
        /// Binance's message, e.g. "Invalid symbol.".
        msg: String,
    },
    /// Over the weight limit (HTTP 429) or banned for it (HTTP 418).
    #[error("{}", rate_limited_text(*.status, *.retry_after))]
    RateLimited {
        /// 429 or 418.
        status: u16,
        /// How long Binance asked us to wait (`Retry-After`).
        retry_after: Duration,
    },
    /// An HTTP error without Binance's error body (a proxy, a WAF, an outage page).
    #[error("Binance answered HTTP {status}: {snippet}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The start of the body, for the log.
        snippet: String,
    },
    /// No answer within the request timeout.
    #[error("no answer from Binance within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made or broke before the answer was complete.
    #[error("connection to Binance failed: {0}")]
    Connection(String),
    /// The answer could not be used.
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

fn rate_limited_text(status: u16, retry_after: Duration) -> String {
    let what = if status == 418 {
        "this IP is banned by Binance for exceeding the request weight limit"
    } else {
        "Binance request weight limit reached"
    };
    format!("{what} (HTTP {status}); retry after {}s", retry_after.as_secs())
}

impl BinanceError {
    /// Whether the same request may succeed later: server-side trouble, timeouts, broken
    /// connections, truncated bodies and rate limits (after waiting). Invalid symbols,
    /// invalid intervals, other 4xx answers and malformed rows are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            BinanceError::Api { status, .. } | BinanceError::Http { status, .. } => {
                *status >= 500 || *status == 408
            }
            BinanceError::RateLimited { .. } | BinanceError::Timeout(_) | BinanceError::Connection(_) => true,
            BinanceError::Decode(e) => e.is_retryable(),
        }
    }

    /// For rate limits: how long every request to this host must pause.
    pub fn pause(&self) -> Option<Duration> {
        match self {
            BinanceError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        let api = |status, code| BinanceError::Api {
            status,
            code,
            msg: "x".into(),
        };
        let cases: &[(BinanceError, bool)] = &[
            (api(400, -1121), false),
            (api(400, -1120), false),
            (api(400, -1130), false),
            (api(503, -1001), true),
            (api(408, -1007), true),
            (
                BinanceError::Http {
                    status: 403,
                    snippet: "WAF".into(),
                },
                false,
            ),
            (
                BinanceError::Http {
                    status: 502,
                    snippet: "bad gateway".into(),
                },
                true,
            ),
            (
                BinanceError::RateLimited {
                    status: 429,
                    retry_after: Duration::from_secs(3),
                },
                true,
            ),
            (BinanceError::Timeout(Duration::from_secs(30)), true),
            (BinanceError::Connection("reset".into()), true),
            (DecodeError::Truncated("eof".into()).into(), true),
            (
                DecodeError::Row {
                    index: 0,
                    open_time: Some(1),
                    problem: "x".into(),
                }
                .into(),
                false,
            ),
        ];
        for (err, retry) in cases {
            assert_eq!(err.is_retryable(), *retry, "{err}");
        }
    }

    #[test]
    fn messages_read_well() {
        let e = BinanceError::Api {
            status: 400,
            code: -1121,
            msg: "Invalid symbol.".into(),
        };
        assert_eq!(
            format!("BTCXYZ: {e}"),
            "BTCXYZ: Binance says -1121 Invalid symbol."
        );
        let e = BinanceError::RateLimited {
            status: 418,
            retry_after: Duration::from_secs(120),
        };
        assert!(e.to_string().contains("banned") && e.to_string().contains("120s"));
    }
}
