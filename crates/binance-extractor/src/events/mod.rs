//! Events: where the news of a finished extraction leaves the program.
//!
//! - [`message`]: the seed's two JSON messages and their subjects.
//! - [`outbox`]: record first, publish second, mark delivered last — nothing is lost.
//! - [`publisher`]: the NATS connection (one per run; core or JetStream), which never stops
//!   an extraction.
//! - [`tools`]: `events flush`, `events test` (the seed's test script) and `events watch`
//!   (the seed's example consumer).

pub mod message;
pub mod outbox;
pub mod publisher;
pub mod tools;

pub use message::{
    Announcement, BatchExtractionCompleted, ExtractionCompleted, ExtractionType, SymbolMetrics, SymbolSummary,
};
pub use outbox::{Delivery, EventCounters, EventCounts, Events};
pub use publisher::{EventPublisher, JetStreamSettings, NatsSettings, OutgoingEvent, redact_nats_url};

/// Why a subject prefix cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid NATS_SUBJECT_PREFIX '{0}': use dot-separated tokens without spaces or wildcards, like binance.extraction"
)]
pub struct SubjectPrefixError(pub String);

/// Checks that `prefix` is one or more valid NATS subject tokens.
pub fn validate_subject_prefix(prefix: &str) -> Result<(), SubjectPrefixError> {
    let ok = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && !token
                    .chars()
                    .any(|c| c.is_whitespace() || c == '*' || c == '>' || c.is_control())
        });
    if ok {
        Ok(())
    } else {
        Err(SubjectPrefixError(prefix.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_prefixes() {
        for ok in ["binance.extraction", "petrosa.binance.extraction", "x"] {
            assert!(validate_subject_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "a.*", "a.>", "a b"] {
            assert!(validate_subject_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
