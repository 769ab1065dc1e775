//! `GET /api/v3/klines`, `/api/v3/uiKlines` and `/fapi/v1/klines`.
//!
//! In order: charge the weight (`klines_weight(limit)`, the default limit's when `limit` is
//! absent or invalid) → validate → draw the faults → select and write the rows → log the
//! request. Validation answers the first problem found, in this order:
//!
//! | problem | answer |
//! |---|---|
//! | `symbol` / `interval` absent or empty | -1102 `Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.` |
//! | `symbol` not `^[A-Z0-9-_.]{1,20}$` | -1100 `Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.` |
//! | `startTime` / `endTime` / `limit` not `^[0-9]{1,20}$` (or past i64) | -1100 `Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'.` |
//! | spot `timeZone` other than absent, `0`, `+00:00`, `00:00` | -1130, the simulator serves UTC only |
//! | `limit` outside `[1, 1000]` (spot) / `[1, 1500]` (USD-M) | -1130 `Data sent for parameter 'limit' is not valid.` |
//! | unknown interval (case-sensitive; `1s` is spot only) | -1120 `Invalid interval.` |
//! | symbol outside the universe | -1121 `Invalid symbol.` |
//! | `startTime > endTime` | -1023 `Start time is greater than end time.` |

use std::sync::{Arc, atomic::Ordering};

use axum::{
    body::Body,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use binance_spec::{Interval, Market};

use super::{AppState, ClientIp, conn::AbortConnection, errors::ApiError, errors::JSON, with_weight};
use crate::{
    data::Selection,
    faults::{self, FaultKind},
    stats::KlinesLogEntry,
};

pub(super) async fn spot(State(state): State<Arc<AppState>>, ip: ClientIp, uri: Uri) -> Response {
    klines(&state, ip, Market::Spot, &uri).await
}

pub(super) async fn usdm(State(state): State<Arc<AppState>>, ip: ClientIp, uri: Uri) -> Response {
    klines(&state, ip, Market::UsdM, &uri).await
}

/// The parameters as sent (last value wins for a repeated name).
#[derive(Debug, Default)]
struct RawParams {
    symbol: Option<String>,
    interval: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    limit: Option<String>,
    time_zone: Option<String>,
}

impl RawParams {
    fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|_| ApiError::MalformedQuery)?;
        let mut raw = RawParams::default();
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "symbol" => &mut raw.symbol,
                "interval" => &mut raw.interval,
                "startTime" => &mut raw.start_time,
                "endTime" => &mut raw.end_time,
                "limit" => &mut raw.limit,
                "timeZone" => &mut raw.time_zone,
                _ => continue,
            };
            *slot = Some(value);
        }
        Ok(raw)
    }

    /// The log line of this request, before its outcome is known.
    fn log_entry(&self, market: Market) -> KlinesLogEntry {
        let number = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<i64>().ok());
        KlinesLogEntry {
            market: market.as_str().to_string(),
            symbol: self.symbol.clone().unwrap_or_default(),
            interval: self.interval.clone().unwrap_or_default(),
            start_time: number(&self.start_time),
            end_time: number(&self.end_time),
            limit: self.limit.as_deref().and_then(|s| s.parse::<u32>().ok()),
            rows: 0,
            status: 0,
            fault: None,
            at_ms: 0,
        }
    }
}

/// A valid klines request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KlinesQuery {
    symbol: String,
    interval: Interval,
    selection: Selection,
}

const DIGITS: &str = "^[0-9]{1,20}$";
const SYMBOL_CHARS: &str = "^[A-Z0-9-_.]{1,20}$";

fn number(name: &'static str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let digits = !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<i64>() {
        Ok(n) if digits => Ok(Some(n)),
        _ => Err(ApiError::IllegalChars { name, legal: DIGITS }),
    }
}

fn validate(
    market: Market,
    raw: &RawParams,
    is_listed_symbol: impl Fn(&str) -> bool,
) -> Result<KlinesQuery, ApiError> {
    let present = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let symbol = present(&raw.symbol).ok_or(ApiError::MissingParam("symbol"))?;
    let interval = present(&raw.interval).ok_or(ApiError::MissingParam("interval"))?;
    let symbol_ok = symbol.len() <= 20
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if !symbol_ok {
        return Err(ApiError::IllegalChars {
            name: "symbol",
            legal: SYMBOL_CHARS,
        });
    }
    let start = number("startTime", raw.start_time.as_deref())?;
    let end = number("endTime", raw.end_time.as_deref())?;
    let limit = number("limit", raw.limit.as_deref())?;
    if market == Market::Spot
        && let Some(zone) = raw.time_zone.as_deref()
        && !matches!(zone, "0" | "+00:00" | "00:00" | "")
    {
        return Err(ApiError::NotUtc);
    }
    let limit = match limit {
        None => market.default_klines_limit(),
        Some(n) if (1..=i64::from(market.max_klines_limit())).contains(&n) => n as u32,
        Some(_) => return Err(ApiError::InvalidParam("limit")),
    };
    let interval = interval
        .parse::<Interval>()
        .ok()
        .filter(|&i| market.supports(i))
        .ok_or(ApiError::InvalidInterval)?;
    if !is_listed_symbol(&symbol) {
        return Err(ApiError::InvalidSymbol);
    }
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ApiError::StartAfterEnd);
    }
    Ok(KlinesQuery {
        symbol,
        interval,
        selection: Selection {
            start,
            end,
            limit: limit as usize,
        },
    })
}

/// The weight of a klines request: by its `limit` when valid, else by the default limit.
fn weight(market: Market, raw: &RawParams) -> u32 {
    let limit = raw
        .limit
        .as_deref()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|l| (1..=market.max_klines_limit()).contains(l))
        .unwrap_or(market.default_klines_limit());
    market.klines_weight(limit)
}

async fn klines(state: &AppState, ip: ClientIp, market: Market, uri: &Uri) -> Response {
    let raw = RawParams::from_uri(uri);
    let mut log = raw
        .as_ref()
        .map(|r| r.log_entry(market))
        .unwrap_or_else(|_| RawParams::default().log_entry(market));
    let weight = raw
        .as_ref()
        .map_or(market.klines_weight(market.default_klines_limit()), |r| {
            weight(market, r)
        });
    let used = match state.admit(ip.0, market, weight) {
        Ok(used) => used,
        Err((error, used)) => return finish(state, log, with_weight(error.into_response(), used)),
    };
    let dataset = &state.dataset;
    let query = match raw.and_then(|raw| validate(market, &raw, |s| dataset.symbol(s).is_some())) {
        Ok(query) => query,
        Err(error) => return finish(state, log, with_weight(error.into_response(), used)),
    };

    let plan = if state.config.faults.any() {
        let n = state.fault_seq.fetch_add(1, Ordering::Relaxed);
        faults::plan(&state.config.faults, state.config.seed, n)
    } else {
        faults::FaultPlan::default()
    };
    if plan.slow {
        state.stats.fault(FaultKind::Slow);
        log.fault = Some(FaultKind::Slow);
        tokio::time::sleep(state.config.faults.slow).await;
    }
    if let Some(kind) = plan.exclusive {
        log.fault = Some(kind);
    }
    match plan.exclusive {
        Some(FaultKind::Fail) => {
            let k = state.stats.fault(FaultKind::Fail);
            return finish(state, log, with_weight(failure(faults::fail_status(k)), used));
        }
        Some(FaultKind::Reset) => {
            state.stats.fault(FaultKind::Reset);
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(AbortConnection);
            return finish(state, log, with_weight(response, used));
        }
        _ => {}
    }

    let now = dataset.now_ms();
    let Some(rows) = dataset.rows(market, &query.symbol, query.interval, query.selection, now) else {
        return finish(
            state,
            log,
            with_weight(ApiError::InvalidSymbol.into_response(), used),
        );
    };
    let mut body = Vec::new();
    rows.write_json_array(&mut body);
    log.rows = rows.len() as u64;
    if plan.exclusive == Some(FaultKind::Truncate) {
        state.stats.fault(FaultKind::Truncate);
        faults::truncate(&mut body);
    } else {
        state.stats.rows_served(log.rows);
    }
    let response = ([(header::CONTENT_TYPE, JSON)], Body::from(body)).into_response();
    finish(state, log, with_weight(response, used))
}

/// A 5xx of the fail fault: 503 with Binance's body, or a plain 502/504.
fn failure(status: u16) -> Response {
    match status {
        503 => ApiError::Internal.into_response(),
        other => {
            let code = StatusCode::from_u16(other).unwrap_or(StatusCode::BAD_GATEWAY);
            let reason = code.canonical_reason().unwrap_or("Error");
            let html = format!(
                "<html>\r\n<head><title>{other} {reason}</title></head>\r\n<body>\r\n<center><h1>{other} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
            );
            let mut response = (code, html).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
    }
}

/// Logs the request with the status it gets.
fn finish(state: &AppState, mut log: KlinesLogEntry, response: Response) -> Response {
    log.status = if response.extensions().get::<AbortConnection>().is_some() {
        0
    } else {
        response.status().as_u16()
    };
    state.stats.klines(log);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(query: &str) -> RawParams {
        RawParams::from_uri(&format!("/api/v3/klines?{query}").parse().unwrap()).unwrap()
    }

    #[test]
    fn weight_follows_the_limit_sent() {
        let cases = [
            (Market::UsdM, "", 5),
            (Market::UsdM, "limit=99", 1),
            (Market::UsdM, "limit=499", 2),
            (Market::UsdM, "limit=1500", 10),
            (Market::UsdM, "limit=1501", 5),
            (Market::UsdM, "limit=abc", 5),
            (Market::Spot, "limit=1000", 2),
        ];
        for (market, query, want) in cases {
            assert_eq!(weight(market, &raw(query)), want, "{market} {query}");
        }
    }

    #[test]
    fn last_value_wins_and_unknown_names_are_ignored() {
        let r = raw("symbol=ETHUSDT&symbol=BTCUSDT&foo=1&limit=%31%30");
        assert_eq!(r.symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(r.limit.as_deref(), Some("10"));
    }
}
