//! The small endpoints: `ping`, `time`, `exchangeInfo` of both markets, `/sim/stats`, and
//! the 404 every other path gets.
//!
//! ```json
//! {"timezone":"UTC","serverTime":1704067200000,"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},…],"exchangeFilters":[],"symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT",…}]}
//! ```

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use binance_spec::{Endpoint, Market};
use serde_json::{Value, json};

use super::{
    AppState, ClientIp, errors::ApiError, errors::JSON, errors::window_parts, market_of, with_weight,
};
use crate::data::SymbolInfo;

/// Charges `weight` and answers with `body()` or the refusal.
fn charged(
    state: &AppState,
    ip: ClientIp,
    market: Market,
    weight: u32,
    body: impl FnOnce() -> Response,
) -> Response {
    match state.admit(ip.0, market, weight) {
        Ok(used) => with_weight(body(), used),
        Err((error, used)) => with_weight(error.into_response(), used),
    }
}

fn json_response(value: &Value) -> Response {
    ([(header::CONTENT_TYPE, JSON)], value.to_string()).into_response()
}

fn ping(state: &AppState, ip: ClientIp, market: Market) -> Response {
    charged(state, ip, market, market.weight(Endpoint::Ping), || {
        json_response(&json!({}))
    })
}

fn time(state: &AppState, ip: ClientIp, market: Market) -> Response {
    charged(state, ip, market, market.weight(Endpoint::Time), || {
        json_response(&json!({"serverTime": state.dataset.now_ms()}))
    })
}

pub(super) async fn spot_ping(State(state): State<Arc<AppState>>, ip: ClientIp) -> Response {
    ping(&state, ip, Market::Spot)
}

pub(super) async fn usdm_ping(State(state): State<Arc<AppState>>, ip: ClientIp) -> Response {
    ping(&state, ip, Market::UsdM)
}

pub(super) async fn spot_time(State(state): State<Arc<AppState>>, ip: ClientIp) -> Response {
    time(&state, ip, Market::Spot)
}

pub(super) async fn usdm_time(State(state): State<Arc<AppState>>, ip: ClientIp) -> Response {
    time(&state, ip, Market::UsdM)
}

pub(super) async fn spot_exchange_info(
    State(state): State<Arc<AppState>>,
    ip: ClientIp,
    uri: Uri,
) -> Response {
    exchange_info(&state, ip, Market::Spot, &uri)
}

pub(super) async fn usdm_exchange_info(
    State(state): State<Arc<AppState>>,
    ip: ClientIp,
    uri: Uri,
) -> Response {
    exchange_info(&state, ip, Market::UsdM, &uri)
}

fn exchange_info(state: &AppState, ip: ClientIp, market: Market, uri: &Uri) -> Response {
    let weight = market.weight(Endpoint::ExchangeInfo);
    let wanted = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(params)| params.into_iter().find(|(k, _)| k == "symbol").map(|(_, v)| v))
        .unwrap_or_default();
    charged(state, ip, market, weight, || {
        let dataset = &state.dataset;
        let symbols: Vec<&SymbolInfo> = match &wanted {
            Some(name) => match dataset.symbol(name) {
                Some(info) => vec![info],
                None => return ApiError::InvalidSymbol.into_response(),
            },
            None => dataset.symbols().iter().collect(),
        };
        let now = dataset.now_ms();
        let (interval, interval_num) = window_parts(state.config.weight_window);
        let mut rate_limits = vec![json!({
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": interval,
            "intervalNum": interval_num,
            "limit": state.config.weight_limit.reported(market),
        })];
        rate_limits.extend(match market {
            Market::Spot => [
                json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}),
                json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000}),
            ],
            Market::UsdM => [
                json!({"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}),
                json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}),
            ],
        });
        let symbols: Vec<Value> = symbols.iter().map(|s| symbol_json(market, s, now)).collect();
        json_response(&json!({
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": rate_limits,
            "exchangeFilters": [],
            "symbols": symbols,
        }))
    })
}

/// `0.01000000` for 2 decimals at scale 8.
fn tick(decimals: u32, scale: u32) -> String {
    let mut out = Vec::new();
    crate::data::json::push_fixed(&mut out, 10u128.pow(scale - decimals.min(scale)), scale);
    String::from_utf8(out).unwrap_or_default()
}

fn symbol_json(market: Market, info: &SymbolInfo, now: i64) -> Value {
    let listed = info.listed_ms(market) <= now;
    let price_decimals = info.price_scale();
    match market {
        Market::Spot => json!({
            "symbol": info.symbol,
            "status": if listed { "TRADING" } else { "BREAK" },
            "baseAsset": info.base_asset,
            "baseAssetPrecision": 8,
            "quoteAsset": info.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "isSpotTradingAllowed": true,
            "isMarginTradingAllowed": false,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick(price_decimals, 8), "maxPrice": "1000000.00000000", "tickSize": tick(price_decimals, 8)},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
        }),
        Market::UsdM => json!({
            "symbol": info.symbol,
            "pair": info.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4_133_404_800_000i64,
            "onboardDate": info.listed_ms(market),
            "status": if listed { "TRADING" } else { "PENDING_TRADING" },
            "baseAsset": info.base_asset,
            "quoteAsset": info.quote_asset,
            "marginAsset": info.quote_asset,
            "pricePrecision": price_decimals,
            "quantityPrecision": 3,
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick(price_decimals, price_decimals), "maxPrice": "1000000", "tickSize": tick(price_decimals, price_decimals)},
                {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
            ],
        }),
    }
}

/// `GET /sim/stats`: the counters (not weighted).
pub(super) async fn sim_stats(State(state): State<Arc<AppState>>) -> Response {
    match serde_json::to_string(&state.stats()) {
        Ok(body) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Any other path: 404, charged 1 weight like any request to the API.
pub(super) async fn not_found(State(state): State<Arc<AppState>>, ip: ClientIp, uri: Uri) -> Response {
    charged(&state, ip, market_of(uri.path()), 1, || {
        StatusCode::NOT_FOUND.into_response()
    })
}
