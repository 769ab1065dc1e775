//! The two messages of the NATS integration, exactly as the seed (`NATS_MESSAGING.md`) and
//! the contract (`extraction-events.schema.json`) define them.
//!
//! ```json
//! {"event_type":"extraction_completed","extraction_type":"klines","symbol":"BTCUSDT",
//!  "period":"15m","timestamp":"2024-01-15T10:30:00.000Z","success":true,
//!  "metrics":{"records_fetched":150,"records_written":150,"duration_seconds":3.5,
//!             "gaps_found":0,"gaps_filled":0},"errors":[]}
//! ```
//!
//! Field names, order and types are the seed's. Extra fields (after the seed's) are allowed by
//! the contract; we add `market`, and the time range the run covered.

use binance_spec::{Interval, Market, time::format_rfc3339_ms};
use serde::Serialize;

use crate::series::Symbol;

/// What kind of extraction finished (the second token of the subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractionType {
    /// `extract` and `sync`.
    Klines,
    /// `fill-gaps`.
    KlinesGapFilling,
}

impl ExtractionType {
    /// The subject token and JSON value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExtractionType::Klines => "klines",
            ExtractionType::KlinesGapFilling => "klines_gap_filling",
        }
    }
}

/// Per-symbol figures of an `extraction_completed` message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SymbolMetrics {
    /// Closed candles received from Binance.
    pub records_fetched: u64,
    /// Candles inserted or changed in the store (re-stored identical candles do not count).
    pub records_written: u64,
    /// Wall time of the symbol, seconds (millisecond precision).
    pub duration_seconds: f64,
    /// Holes found.
    pub gaps_found: u64,
    /// Holes filled.
    pub gaps_filled: u64,
}

/// Sent once per symbol on `{prefix}.{extraction_type}.{SYMBOL}.{period}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractionCompleted {
    pub event_type: &'static str,
    pub extraction_type: ExtractionType,
    pub symbol: String,
    pub period: &'static str,
    pub timestamp: String,
    pub success: bool,
    pub metrics: SymbolMetrics,
    pub errors: Vec<String>,
    /// Extra: a stable id, also sent as the `Nats-Msg-Id` header (the same on every re-send).
    pub event_id: String,
    /// Extra: the market read (`usdm`, `spot`).
    pub market: &'static str,
    /// Extra: first open time the run asked for (RFC 3339), when it asked for any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Extra: end of the range the run asked for (exclusive, RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// Per-run figures of a `batch_extraction_completed` message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BatchMetrics {
    pub total_records_fetched: u64,
    pub total_records_written: u64,
    pub duration_seconds: f64,
    pub total_gaps_found: u64,
    pub total_gaps_filled: u64,
    /// Symbols the run was asked to process (failed ones included, as in the seed).
    pub symbols_processed: u64,
}

/// Sent once per run on `{prefix}.{extraction_type}.batch.{period}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchExtractionCompleted {
    pub event_type: &'static str,
    pub extraction_type: ExtractionType,
    pub symbols: Vec<String>,
    pub period: &'static str,
    pub timestamp: String,
    /// True when every symbol succeeded.
    pub success: bool,
    pub metrics: BatchMetrics,
    /// Every symbol's errors, each prefixed with its symbol.
    pub errors: Vec<String>,
    /// Extra: a stable id, also sent as the `Nats-Msg-Id` header.
    pub event_id: String,
    /// Extra: the market read.
    pub market: &'static str,
}

/// Outcome of one symbol, as the message needs it.
#[derive(Debug, Clone)]
pub struct SymbolSummary {
    pub symbol: Symbol,
    pub metrics: SymbolMetrics,
    /// Errors, each a full sentence starting with the symbol.
    pub errors: Vec<String>,
    /// The range asked for, if any.
    pub range: Option<crate::series::TimeRange>,
}

impl SymbolSummary {
    /// Whether the symbol succeeded.
    pub fn success(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Rounds seconds to milliseconds, as people read them.
pub fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl ExtractionCompleted {
    /// The message for one symbol's outcome at `now_ms`.
    pub fn new(
        extraction_type: ExtractionType,
        market: Market,
        interval: Interval,
        summary: &SymbolSummary,
        now_ms: i64,
    ) -> Self {
        ExtractionCompleted {
            event_type: "extraction_completed",
            extraction_type,
            symbol: summary.symbol.to_string(),
            period: interval.as_str(),
            timestamp: format_rfc3339_ms(now_ms),
            success: summary.success(),
            metrics: summary.metrics,
            errors: summary.errors.clone(),
            event_id: String::new(),
            market: market.as_str(),
            start_time: summary.range.map(|r| format_rfc3339_ms(r.start)),
            end_time: summary.range.map(|r| format_rfc3339_ms(r.end)),
        }
    }

    /// `{prefix}.{extraction_type}.{SYMBOL}.{period}`.
    pub fn subject(&self, prefix: &str) -> String {
        format!(
            "{prefix}.{}.{}.{}",
            self.extraction_type.as_str(),
            self.symbol,
            self.period
        )
    }
}

impl BatchExtractionCompleted {
    /// The run's message, from every symbol's outcome.
    pub fn new(
        extraction_type: ExtractionType,
        market: Market,
        interval: Interval,
        symbols: &[SymbolSummary],
        duration: std::time::Duration,
        now_ms: i64,
    ) -> Self {
        let sum = |f: fn(&SymbolMetrics) -> u64| symbols.iter().map(|s| f(&s.metrics)).sum();
        BatchExtractionCompleted {
            event_type: "batch_extraction_completed",
            extraction_type,
            symbols: symbols.iter().map(|s| s.symbol.to_string()).collect(),
            period: interval.as_str(),
            timestamp: format_rfc3339_ms(now_ms),
            success: symbols.iter().all(SymbolSummary::success),
            metrics: BatchMetrics {
                total_records_fetched: sum(|m| m.records_fetched),
                total_records_written: sum(|m| m.records_written),
                duration_seconds: seconds(duration),
                total_gaps_found: sum(|m| m.gaps_found),
                total_gaps_filled: sum(|m| m.gaps_filled),
                symbols_processed: symbols.len() as u64,
            },
            errors: symbols.iter().flat_map(|s| s.errors.iter().cloned()).collect(),
            event_id: String::new(),
            market: market.as_str(),
        }
    }

    /// `{prefix}.{extraction_type}.batch.{period}`.
    pub fn subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}.batch.{}", self.extraction_type.as_str(), self.period)
    }
}

/// A message that can be announced: it knows its subject and who it is about.
pub trait Announcement: Serialize {
    /// The subject under `prefix`.
    fn subject(&self, prefix: &str) -> String;
    /// A symbol, or "batch", for the log.
    fn label(&self) -> String;
    /// Sets the id carried in the body and in `Nats-Msg-Id`.
    fn set_event_id(&mut self, id: String);
}

impl Announcement for ExtractionCompleted {
    fn subject(&self, prefix: &str) -> String {
        ExtractionCompleted::subject(self, prefix)
    }
    fn label(&self) -> String {
        self.symbol.clone()
    }
    fn set_event_id(&mut self, id: String) {
        self.event_id = id;
    }
}

impl Announcement for BatchExtractionCompleted {
    fn subject(&self, prefix: &str) -> String {
        BatchExtractionCompleted::subject(self, prefix)
    }
    fn label(&self) -> String {
        "batch".into()
    }
    fn set_event_id(&mut self, id: String) {
        self.event_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::TimeRange;

    fn summary(symbol: &str, fetched: u64, errors: &[&str]) -> SymbolSummary {
        SymbolSummary {
            symbol: symbol.parse().unwrap(),
            metrics: SymbolMetrics {
                records_fetched: fetched,
                records_written: fetched,
                duration_seconds: 3.5,
                gaps_found: 0,
                gaps_filled: 0,
            },
            errors: errors.iter().map(|e| e.to_string()).collect(),
            range: None,
        }
    }

    #[test]
    fn single_message_is_the_seed_example_plus_extras() {
        let msg = ExtractionCompleted::new(
            ExtractionType::Klines,
            Market::UsdM,
            Interval::M15,
            &summary("BTCUSDT", 150, &[]),
            1_705_314_600_000,
        );
        assert_eq!(
            msg.subject("binance.extraction"),
            "binance.extraction.klines.BTCUSDT.15m"
        );
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"event_type":"extraction_completed","extraction_type":"klines","symbol":"BTCUSDT","period":"15m","timestamp":"2024-01-15T10:30:00.000Z","success":true,"metrics":{"records_fetched":150,"records_written":150,"duration_seconds":3.5,"gaps_found":0,"gaps_filled":0},"errors":[],"event_id":"","market":"usdm"}"#
        );
    }

    #[test]
    fn batch_totals_and_failures() {
        let symbols = [
            summary("BTCUSDT", 150, &[]),
            summary("ETHUSDT", 150, &[]),
            summary("BTCXYZ", 0, &["BTCXYZ: Binance says -1121 Invalid symbol."]),
        ];
        let msg = BatchExtractionCompleted::new(
            ExtractionType::KlinesGapFilling,
            Market::Spot,
            Interval::H1,
            &symbols,
            std::time::Duration::from_millis(12_500),
            1_705_314_600_000,
        );
        assert_eq!(msg.subject("p.q"), "p.q.klines_gap_filling.batch.1h");
        assert!(!msg.success);
        assert_eq!(msg.metrics.total_records_fetched, 300);
        assert_eq!(msg.metrics.symbols_processed, 3);
        assert_eq!(msg.metrics.duration_seconds, 12.5);
        assert_eq!(msg.errors, ["BTCXYZ: Binance says -1121 Invalid symbol."]);
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            json["symbols"],
            serde_json::json!(["BTCUSDT", "ETHUSDT", "BTCXYZ"])
        );
    }

    #[test]
    fn the_range_rides_along_as_extra_fields() {
        let mut s = summary("BTCUSDT", 1, &[]);
        s.range = Some(TimeRange::new(1_704_067_200_000, 1_709_251_200_000));
        let msg = ExtractionCompleted::new(ExtractionType::Klines, Market::UsdM, Interval::M15, &s, 0);
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["start_time"], "2024-01-01T00:00:00.000Z");
        assert_eq!(json["end_time"], "2024-03-01T00:00:00.000Z");
    }
}
