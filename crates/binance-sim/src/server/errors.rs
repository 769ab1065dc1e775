//! Binance's error answers: `{"code": N, "msg": "…"}` with the HTTP status Binance uses.
//!
//! ```json
//! {"code":-1121,"msg":"Invalid symbol."}
//! {"code":-1003,"msg":"Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}
//! ```

use std::time::Duration;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use binance_spec::market::error_code;

use crate::limits::Refusal;

/// Binance's JSON content type.
pub(crate) const JSON: &str = "application/json;charset=UTF-8";

/// An error the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("Mandatory parameter '{0}' was not sent, was empty/null, or malformed.")]
    MissingParam(&'static str),
    #[error("Illegal characters found in parameter '{name}'; legal range is '{legal}'.")]
    IllegalChars { name: &'static str, legal: &'static str },
    #[error("Illegal characters found in a parameter.")]
    MalformedQuery,
    #[error("Invalid symbol.")]
    InvalidSymbol,
    #[error("Invalid interval.")]
    InvalidInterval,
    #[error("Data sent for parameter '{0}' is not valid.")]
    InvalidParam(&'static str),
    #[error(
        "Data sent for parameter 'timeZone' is not valid: the simulator serves UTC only (send no timeZone, or 0)."
    )]
    NotUtc,
    #[error("Start time is greater than end time.")]
    StartAfterEnd,
    #[error(
        "Too much request weight used; current limit is {limit} request weight per {window}. Please use WebSocket Streams for live updates to avoid polling the API."
    )]
    RateLimited {
        limit: u32,
        window: String,
        retry_after_secs: u64,
    },
    #[error(
        "Way too much request weight used; IP banned until {until_ms}. Please use WebSocket Streams for live updates to avoid bans."
    )]
    Banned { until_ms: i64, retry_after_secs: u64 },
    #[error("Internal error; unable to process your request. Please try again.")]
    Internal,
}

impl ApiError {
    /// The refusal of the rate limiter, worded for a window of `window`.
    pub(crate) fn refused(refusal: Refusal, window: Duration) -> Self {
        match refusal {
            Refusal::RateLimited {
                limit,
                retry_after_secs,
                ..
            } => ApiError::RateLimited {
                limit,
                window: window_words(window),
                retry_after_secs,
            },
            Refusal::Banned {
                until_ms,
                retry_after_secs,
                ..
            } => ApiError::Banned {
                until_ms,
                retry_after_secs,
            },
        }
    }

    pub(crate) fn code(&self) -> i64 {
        match self {
            ApiError::MissingParam(_) => error_code::MANDATORY_PARAM_MISSING,
            ApiError::IllegalChars { .. } | ApiError::MalformedQuery => error_code::ILLEGAL_CHARS,
            ApiError::InvalidSymbol => error_code::INVALID_SYMBOL,
            ApiError::InvalidInterval => error_code::INVALID_INTERVAL,
            ApiError::InvalidParam(_) | ApiError::NotUtc => error_code::INVALID_PARAMETER,
            ApiError::StartAfterEnd => error_code::START_AFTER_END,
            ApiError::RateLimited { .. } | ApiError::Banned { .. } => error_code::TOO_MANY_REQUESTS,
            ApiError::Internal => error_code::INTERNAL_ERROR,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Banned { .. } => StatusCode::IM_A_TEAPOT,
            ApiError::Internal => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match *self {
            ApiError::RateLimited { retry_after_secs, .. } | ApiError::Banned { retry_after_secs, .. } => {
                Some(retry_after_secs)
            }
            _ => None,
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> String {
        serde_json::json!({"code": self.code(), "msg": self.to_string()}).to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), [(header::CONTENT_TYPE, JSON)], self.body()).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `1 MINUTE` for 60 s, `2 MINUTE` for 120 s, `2 SECOND` for 2 s: how Binance words a window
/// (also the `interval`/`intervalNum` of `exchangeInfo.rateLimits`).
pub(crate) fn window_parts(window: Duration) -> (&'static str, u64) {
    let secs = window.as_secs().max(1);
    if secs.is_multiple_of(60) {
        ("MINUTE", secs / 60)
    } else {
        ("SECOND", secs)
    }
}

fn window_words(window: Duration) -> String {
    let (unit, n) = window_parts(window);
    format!("{n} {unit}")
}
