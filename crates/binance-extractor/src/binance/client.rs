//! The HTTP client for Binance's public market-data endpoints.
//!
//! One [`BinanceClient`] serves a whole process: every worker shares its connection pool and
//! its [`WeightBudget`]. Every request goes through one place ([`BinanceClient::get`]),
//! which charges the request's weight before sending, reads `X-MBX-USED-WEIGHT-1M` from the
//! answer, turns error bodies into [`BinanceError`]s, and retries what is worth retrying —
//! the only retry layer in the program.

use std::{sync::Arc, time::Duration};

use binance_spec::{Endpoint, Interval, Kline, Market, market::USED_WEIGHT_HEADER};
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::{
    budget::WeightBudget,
    decode::decode_klines,
    error::BinanceError,
    retry::{RetryPolicy, Retrying},
};
use crate::series::Symbol;

/// How the client talks to Binance.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme, host and port of the REST API (`https://fapi.binance.com`, or a simulator).
    pub base_url: Url,
    /// Which market's paths and weights to use.
    pub market: Market,
    /// Time limit of one request, answer included.
    pub request_timeout: Duration,
    /// When to try again.
    pub retry: RetryPolicy,
}

/// One page of klines to ask for.
#[derive(Debug, Clone, Copy)]
pub struct KlinesQuery<'a> {
    pub symbol: &'a Symbol,
    pub interval: Interval,
    /// First open time wanted (inclusive).
    pub start: i64,
    /// Last open time wanted (inclusive, as Binance's `endTime`).
    pub end_inclusive: i64,
    /// Rows to ask for.
    pub limit: u32,
}

/// Told when Binance makes every request wait: the wall-clock end of the pause (epoch ms)
/// and the HTTP status (429 or 418). The process uses it to record a ban in the store, so
/// that a process started during the ban waits instead of extending it.
pub type PauseListener = Arc<dyn Fn(i64, u16) + Send + Sync>;

/// A Binance REST client for one market.
#[derive(Clone)]
pub struct BinanceClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    budget: Arc<WeightBudget>,
    on_pause: Option<PauseListener>,
}

impl std::fmt::Debug for BinanceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceClient")
            .field("config", &self.config)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl BinanceClient {
    /// A client with its own connection pool, charging requests to `budget`.
    pub fn new(config: ClientConfig, budget: Arc<WeightBudget>) -> Result<Self, BinanceError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("binance-extractor/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| BinanceError::Connection(format!("cannot build the HTTP client: {e}")))?;
        Ok(BinanceClient {
            http,
            config: Arc::new(config),
            budget,
            on_pause: None,
        })
    }

    /// Calls `listener` whenever Binance pauses every request (429/418).
    pub fn with_pause_listener(mut self, listener: PauseListener) -> Self {
        self.on_pause = Some(listener);
        self
    }

    /// The market this client reads.
    pub fn market(&self) -> Market {
        self.config.market
    }

    /// The shared weight budget.
    pub fn budget(&self) -> &Arc<WeightBudget> {
        &self.budget
    }

    /// One page of klines, ascending by open time, exactly as Binance sent them.
    pub async fn klines(&self, q: KlinesQuery<'_>) -> Result<Vec<Kline>, BinanceError> {
        let market = self.config.market;
        let query = [
            ("symbol", q.symbol.as_str().to_string()),
            ("interval", q.interval.as_str().to_string()),
            ("startTime", q.start.to_string()),
            ("endTime", q.end_inclusive.to_string()),
            ("limit", q.limit.to_string()),
        ];
        let weight = market.klines_weight(q.limit);
        self.get(Endpoint::Klines, &query, weight, |body| Ok(decode_klines(body)?))
            .await
    }

    /// Whether the REST API answers (`ping`).
    pub async fn ping(&self) -> Result<(), BinanceError> {
        let weight = self.config.market.weight(Endpoint::Ping);
        self.get(Endpoint::Ping, &[], weight, |body| {
            serde_json::from_slice::<serde_json::Value>(body)
                .map(|_| ())
                .map_err(|e| not_json("ping", e))
        })
        .await
    }

    /// Binance's clock, epoch milliseconds.
    pub async fn server_time(&self) -> Result<i64, BinanceError> {
        #[derive(Deserialize)]
        struct ServerTime {
            #[serde(rename = "serverTime")]
            server_time: i64,
        }
        let weight = self.config.market.weight(Endpoint::Time);
        self.get(Endpoint::Time, &[], weight, |body| {
            serde_json::from_slice::<ServerTime>(body)
                .map(|t| t.server_time)
                .map_err(|e| not_json("time", e))
        })
        .await
    }

    /// The request-weight limit and its window as `exchangeInfo.rateLimits` announces them
    /// (the most restrictive `REQUEST_WEIGHT` entry), if any.
    pub async fn announced_weight_limit(&self) -> Result<Option<(u32, Duration)>, BinanceError> {
        #[derive(Deserialize)]
        struct Info {
            #[serde(rename = "rateLimits", default)]
            rate_limits: Vec<RateLimit>,
        }
        #[derive(Deserialize)]
        struct RateLimit {
            #[serde(rename = "rateLimitType")]
            kind: String,
            interval: String,
            #[serde(rename = "intervalNum")]
            interval_num: u64,
            limit: u64,
        }
        let weight = self.config.market.weight(Endpoint::ExchangeInfo);
        self.get(Endpoint::ExchangeInfo, &[], weight, |body| {
            let info: Info = serde_json::from_slice(body).map_err(|e| not_json("exchangeInfo", e))?;
            Ok(info
                .rate_limits
                .iter()
                .filter(|r| r.kind == "REQUEST_WEIGHT")
                .filter_map(|r| {
                    let unit = match r.interval.as_str() {
                        "SECOND" => 1,
                        "MINUTE" => 60,
                        "HOUR" => 3600,
                        "DAY" => 86_400,
                        _ => return None,
                    };
                    let window = Duration::from_secs(unit * r.interval_num.max(1));
                    let limit = u32::try_from(r.limit).unwrap_or(u32::MAX);
                    Some((limit, window))
                })
                // Most restrictive: the lowest weight per second.
                .min_by(|a, b| {
                    let rate = |(l, w): &(u32, Duration)| f64::from(*l) / w.as_secs_f64();
                    rate(a).total_cmp(&rate(b))
                }))
        })
        .await
    }

    /// Sends one GET (with retries) and decodes a successful body with `decode`.
    async fn get<T>(
        &self,
        endpoint: Endpoint,
        query: &[(&str, String)],
        weight: u32,
        decode: impl Fn(&[u8]) -> Result<T, BinanceError>,
    ) -> Result<T, BinanceError> {
        let mut url = self.config.base_url.clone();
        url.set_path(&self.config.market.path(endpoint));
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut retrying = Retrying::new(&self.config.retry, Instant::now());
        loop {
            self.budget.acquire(weight).await;
            let result = match self.send_once(&url).await {
                Ok(body) => decode(&body),
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(err) => {
                    if let (Some(pause), BinanceError::RateLimited { status, .. }) = (err.pause(), &err) {
                        self.budget.note_refusal(*status);
                        if self.budget.pause_for(pause) {
                            self.announce_pause(pause, *status);
                        }
                    }
                    match retrying.next_delay(&err) {
                        Some(delay) => {
                            tracing::warn!(
                                endpoint = url.path(),
                                error = %err,
                                retry_in_ms = delay.as_millis() as u64,
                                "Binance request failed, retrying."
                            );
                            tokio::time::sleep(delay).await;
                            self.budget.note_retry();
                        }
                        None => return Err(err),
                    }
                }
            }
        }
    }

    /// One log line (and the listener) for a pause Binance imposed on every request.
    fn announce_pause(&self, pause: Duration, status: u16) {
        let until = crate::clock::system_now_ms() + pause.as_millis() as i64;
        let shown = binance_spec::time::format_rfc3339_ms(until);
        if status == 418 {
            tracing::warn!(status, until = %shown, "Binance banned this IP for exceeding the request weight limit: every request waits until {shown}.");
        } else {
            tracing::warn!(status, until = %shown, "Binance request weight limit reached: every request waits until {shown}.");
        }
        if let Some(listener) = &self.on_pause {
            listener(until, status);
        }
    }

    /// One HTTP exchange: status and headers checked, body read whole.
    async fn send_once(&self, url: &Url) -> Result<bytes::Bytes, BinanceError> {
        let timeout = self.config.request_timeout;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(e, timeout))?;
        let status = response.status();
        if let Some(used) = response
            .headers()
            .get(USED_WEIGHT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
        {
            self.budget.observe_used(used);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| transport_error(e, timeout))?;
        if status.is_success() {
            return Ok(body);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
            return Err(BinanceError::RateLimited {
                status: status.as_u16(),
                retry_after: retry_after.unwrap_or(Duration::from_secs(60)),
            });
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            code: i64,
            msg: String,
        }
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => BinanceError::Api {
                status: status.as_u16(),
                code: e.code,
                msg: e.msg,
            },
            Err(_) => BinanceError::Http {
                status: status.as_u16(),
                snippet: String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_string(),
            },
        })
    }
}

fn not_json(what: &str, e: serde_json::Error) -> BinanceError {
    if e.classify() == serde_json::error::Category::Eof {
        super::decode::DecodeError::Truncated(e.to_string()).into()
    } else {
        super::decode::DecodeError::NotKlines(format!("{what}: {e}")).into()
    }
}

fn transport_error(e: reqwest::Error, timeout: Duration) -> BinanceError {
    if e.is_timeout() {
        return BinanceError::Timeout(timeout);
    }
    // reqwest's Display names the URL; the chain below it says what actually failed.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    BinanceError::Connection(detail)
}

/// Installs ring as the process's TLS crypto provider (once; later calls are no-ops).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
