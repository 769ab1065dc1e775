//! The HTTP face: Binance's market-data paths for spot (`/api/v3`) and USD-M (`/fapi/v1`),
//! plus `/sim/stats`.
//!
//! A request flows: `conn.rs` accepts the connection and tags the request with the client's
//! address → the router picks a handler (`klines.rs` or `info.rs`) → the handler charges its
//! weight to the [`crate::limits`] books (refusing with 429/418), validates, applies the
//! [`crate::faults`] plan and selects rows from the [`crate::Dataset`] → one middleware layer
//! stamps `X-MBX-USED-WEIGHT-1M` on every response (errors, 404 and 405 included).

mod conn;
mod errors;
mod info;
mod klines;

#[cfg(test)]
mod tests;

use std::{
    convert::Infallible,
    future::Future,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, atomic::AtomicU64},
};

use axum::{
    Router,
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderValue, request::Parts},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use binance_spec::{Market, market::USED_WEIGHT_HEADER};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};

use crate::{
    clock::SimClock,
    config::{ConfigError, SimConfig},
    data::{DataError, Dataset},
    limits::{Limiter, Refusal},
    stats::{PerMarket, Recorder, Stats},
};
use errors::ApiError;

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
}

impl From<SimError> for std::io::Error {
    fn from(e: SimError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Everything the handlers share.
pub(crate) struct AppState {
    config: SimConfig,
    dataset: Arc<Dataset>,
    limiter: Limiter,
    stats: Recorder,
    /// Number of the next klines request that reaches fault injection.
    fault_seq: AtomicU64,
}

impl AppState {
    /// Charges `weight` to `ip` on `market`; the used weight, or the refusal as a response.
    fn admit(&self, ip: IpAddr, market: Market, weight: u32) -> Result<u32, (ApiError, u32)> {
        self.limiter
            .admit(ip, market, weight, Instant::now(), self.dataset.now_ms())
            .map_err(|refusal| {
                match refusal {
                    Refusal::RateLimited { .. } => self.stats.rate_limited(),
                    Refusal::Banned { .. } => self.stats.banned(),
                }
                (
                    ApiError::refused(refusal, self.config.weight_window),
                    refusal.used(),
                )
            })
    }

    fn stats(&self) -> Stats {
        let now = Instant::now();
        let per_market = |f: &dyn Fn(Market) -> u32| PerMarket {
            spot: u64::from(f(Market::Spot)),
            usdm: u64::from(f(Market::UsdM)),
        };
        self.stats.snapshot(
            per_market(&|m| self.limiter.busiest_now(m, now)),
            per_market(&|m| self.limiter.busiest_ever(m)),
        )
    }
}

/// The weight a response reports, set by the handler that charged it.
#[derive(Debug, Clone, Copy)]
struct UsedWeight(u32);

/// Attaches the used weight to a response.
fn with_weight(mut response: Response, used: u32) -> Response {
    response.extensions_mut().insert(UsedWeight(used));
    response
}

/// The client's address, set by [`conn`] on each request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub SocketAddr);

/// The client's IP: from [`ClientAddr`], axum's `ConnectInfo`, or loopback when neither
/// (a router driven in-process by tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

impl ClientIp {
    fn of(extensions: &axum::http::Extensions) -> Self {
        if let Some(ClientAddr(addr)) = extensions.get() {
            return ClientIp(addr.ip());
        }
        if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>() {
            return ClientIp(addr.ip());
        }
        ClientIp(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(&parts.extensions))
    }
}

/// The market a path belongs to (`/fapi/…` is USD-M, anything else counts as spot).
fn market_of(path: &str) -> Market {
    if path.starts_with("/fapi/") {
        Market::UsdM
    } else {
        Market::Spot
    }
}

/// Counts the request and stamps `X-MBX-USED-WEIGHT-1M` on its response: the weight the
/// handler charged, or (for responses no handler charged, like 405) the weight used so far.
async fn used_weight_header(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if !path.starts_with("/sim/") {
        state.stats.request();
    }
    let ip = ClientIp::of(request.extensions());
    let mut response = next.run(request).await;
    let used = match response.extensions().get::<UsedWeight>() {
        Some(&UsedWeight(used)) => used,
        None => state.limiter.used(ip.0, market_of(&path), Instant::now()),
    };
    response
        .headers_mut()
        .insert(USED_WEIGHT_HEADER, HeaderValue::from(used));
    response
}

fn router(state: Arc<AppState>) -> Router {
    let spot = |e| Market::Spot.path(e);
    let usdm = |e| Market::UsdM.path(e);
    use binance_spec::Endpoint::{ExchangeInfo, Klines, Ping, Time};
    Router::new()
        .route(&spot(Klines), get(klines::spot))
        .route("/api/v3/uiKlines", get(klines::spot))
        .route(&usdm(Klines), get(klines::usdm))
        .route(&spot(Ping), get(info::spot_ping))
        .route(&usdm(Ping), get(info::usdm_ping))
        .route(&spot(Time), get(info::spot_time))
        .route(&usdm(Time), get(info::usdm_time))
        .route(&spot(ExchangeInfo), get(info::spot_exchange_info))
        .route(&usdm(ExchangeInfo), get(info::usdm_exchange_info))
        .route("/sim/stats", get(info::sim_stats))
        .fallback(info::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), used_weight_header))
        .with_state(state)
}

/// A simulator with its data loaded, ready to serve.
pub struct Sim {
    state: Arc<AppState>,
}

impl Sim {
    /// Validates `config` and loads its data (replay files are read here).
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let dataset = Dataset::new(&config, SimClock::new(config.clock))?;
        let limiter = Limiter::new(
            config.weight_limit,
            config.weight_window,
            config.ban,
            Instant::now(),
        );
        Ok(Self {
            state: Arc::new(AppState {
                config,
                dataset: Arc::new(dataset),
                limiter,
                stats: Recorder::default(),
                fault_seq: AtomicU64::new(0),
            }),
        })
    }

    /// The data this simulator serves.
    pub fn dataset(&self) -> &Dataset {
        &self.state.dataset
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The axum router, to drive in-process (tests use `tower::ServiceExt::oneshot`). Requests
    /// without a connection count as coming from 127.0.0.1, and the connection-reset fault
    /// answers 500 with an empty body (only a real connection can be reset).
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves `listener` until `shutdown` completes, then lets open requests finish (up to
    /// 10 s) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(
            addr = %listener.local_addr()?,
            symbols = self.state.dataset.symbols().len(),
            "Serving Binance market data."
        );
        conn::run(listener, self.router(), shutdown).await
    }
}

/// [`Sim::new`] off the async threads (replay files can be large).
async fn load(config: SimConfig) -> std::io::Result<Sim> {
    tokio::task::spawn_blocking(move || Sim::new(config))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::from)
}

/// Serves `config` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    load(config).await?.serve(listener, shutdown).await
}

/// Starts a simulator on `127.0.0.1:0` in the background.
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let sim = load(config).await?;
    let state = sim.state.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(sim.serve(listener, async {
        let _ = stopped.await;
    }));
    Ok(SimHandle {
        addr,
        state,
        stop,
        task,
    })
}

/// A simulator running in the background (see [`spawn`]).
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The same data as `GET /sim/stats`.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The data it serves: the oracle for tests.
    pub fn dataset(&self) -> &Dataset {
        &self.state.dataset
    }

    /// Freezes the sim clock at `ms` (UTC epoch ms).
    pub fn set_now(&self, ms: i64) {
        self.state.dataset.clock().set_now(ms);
    }

    /// Moves the sim clock by `delta_ms`.
    pub fn advance(&self, delta_ms: i64) {
        self.state.dataset.clock().advance(delta_ms);
    }

    /// Stops accepting, lets open requests finish, and waits for the server to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "The simulator ended with an error."),
            Err(e) => tracing::warn!(error = %e, "The simulator task failed."),
        }
    }
}
