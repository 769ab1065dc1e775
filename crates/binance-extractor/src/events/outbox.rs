//! Events that are never lost: recorded first, published second, marked delivered last.
//!
//! Every event is written to the store's `event_outbox` (the same database as the klines)
//! before it is published, and marked delivered only once NATS has confirmed it. Whatever
//! stays undelivered — NATS was down, the process was killed — is sent by the next run of
//! any job, or by `binance-extractor events flush`, with the same `Nats-Msg-Id` (so
//! JetStream stores it once). Undelivered events older than a configurable age are
//! reported on every run, never silently dropped. With `NATS_ENABLED=false` nothing is
//! recorded.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use binance_spec::time::format_rfc3339_ms;
use bytes::Bytes;

use super::{
    message::Announcement,
    publisher::{EventPublisher, OutgoingEvent},
};
use crate::store::{OutboxRow, Store};

/// What happened to events, for metrics.
#[derive(Debug, Default)]
pub struct EventCounters {
    published: AtomicU64,
    failed: AtomicU64,
    backlog: AtomicU64,
}

/// A reading of [`EventCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Events NATS confirmed.
    pub published: u64,
    /// Events NATS did not take.
    pub failed: u64,
    /// Events recorded and not yet delivered.
    pub backlog: u64,
}

impl EventCounters {
    /// One event confirmed.
    pub fn published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// One event not taken (it stays in the outbox when it was recorded).
    pub fn failed(&self, kept: bool) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if kept {
            self.backlog.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The outbox holds `n` undelivered events.
    pub fn set_backlog(&self, n: u64) {
        self.backlog.store(n, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn snapshot(&self) -> EventCounts {
        EventCounts {
            published: self.published.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
        }
    }
}

/// Announces events through the outbox.
#[derive(Debug)]
pub struct Events {
    counters: Arc<EventCounters>,
    publisher: EventPublisher,
    /// The outbox; `None` in a dry run.
    store: Option<Store>,
    run_id: String,
    next: AtomicU64,
    /// Undelivered events older than this are reported.
    warn_age: Duration,
}

/// What a delivery of pending events achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Events confirmed by NATS now.
    pub delivered: u64,
    /// Events still waiting.
    pub pending: u64,
    /// Creation time of the oldest still waiting (epoch ms).
    pub oldest_pending: Option<i64>,
}

impl Events {
    /// Announces through `publisher`, recording in `store` (none: publish without an outbox,
    /// as in a dry run where nothing is published anyway).
    pub fn new(publisher: EventPublisher, store: Option<Store>, warn_age: Duration, run_id: &str) -> Self {
        Events {
            counters: Arc::default(),
            publisher,
            store,
            run_id: run_id.to_string(),
            next: AtomicU64::new(1),
            warn_age,
        }
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        self.publisher.prefix()
    }

    /// What happened to events so far.
    pub fn counters(&self) -> &Arc<EventCounters> {
        &self.counters
    }

    /// The publisher (tools use its connection).
    pub fn publisher(&self) -> &EventPublisher {
        &self.publisher
    }

    /// Records `message` in the outbox, publishes it, and marks it delivered once NATS has
    /// it. Failures are warnings: the event stays in the outbox for the next run.
    pub async fn announce<M: Announcement>(&self, mut message: M, now_ms: i64) {
        if !self.publisher.enabled() {
            return;
        }
        // Zero-padded so that ids of one run sort in the order they were made.
        let id = format!("{}-{:06}", self.run_id, self.next.fetch_add(1, Ordering::Relaxed));
        message.set_event_id(id.clone());
        let event = OutgoingEvent {
            subject: message.subject(self.publisher.prefix()),
            payload: Bytes::from(serde_json::to_vec(&message).expect("events serialize")),
            label: message.label(),
            id,
        };
        let recorded = match &self.store {
            Some(store) => match store.outbox_insert(&row(&event, now_ms)).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(symbol = %event.label, error = %e, "Failed to record the event for {} in the outbox: {e}", event.label);
                    false
                }
            },
            None => false,
        };
        self.deliver(&event, recorded, now_ms).await;
    }

    /// Sends one event and, when it was recorded, marks it delivered.
    async fn deliver(&self, event: &OutgoingEvent, recorded: bool, now_ms: i64) -> bool {
        match self.publisher.send(event).await {
            Ok(()) => {
                self.counters.published();
                if event.label == "batch" {
                    tracing::info!(subject = %event.subject, "Published batch extraction completion message");
                } else {
                    tracing::info!(symbol = %event.label, subject = %event.subject, "Published extraction completion message for {}", event.label);
                }
                if recorded
                    && let Some(store) = &self.store
                    && let Err(e) = store.outbox_mark_delivered(&event.id, now_ms).await
                {
                    tracing::warn!(error = %e, "Delivered event {} could not be marked delivered (it may be sent again): {e}", event.id);
                }
                true
            }
            Err(e) => {
                self.counters.failed(recorded);
                let kept = if recorded {
                    " (kept in the outbox for the next run or `events flush`)"
                } else {
                    ""
                };
                tracing::warn!(symbol = %event.label, subject = %event.subject, error = %e, "Failed to send NATS message for {}: {e}{kept}", event.label);
                false
            }
        }
    }

    /// Sends every undelivered event in the outbox, oldest first, and reports what is left.
    /// Stops at the first failure (NATS is down: the rest would fail too).
    pub async fn deliver_pending(&self, now_ms: i64) -> Delivery {
        let mut report = Delivery::default();
        let Some(store) = &self.store else { return report };
        if !self.publisher.enabled() {
            return report;
        }
        // Bounded: a row that cannot be marked delivered must not be resent forever.
        for _ in 0..1000 {
            let batch = match store.outbox_pending(100).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read the event outbox: {e}");
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            let mut progressed = false;
            for row in &batch {
                let event = OutgoingEvent {
                    id: row.id.clone(),
                    subject: row.subject.clone(),
                    payload: Bytes::from(row.payload.clone().into_bytes()),
                    label: row.label.clone(),
                };
                if !self.deliver(&event, true, now_ms).await {
                    break;
                }
                report.delivered += 1;
                progressed = true;
            }
            if !progressed || batch.len() < 100 {
                break;
            }
        }
        if let Ok((pending, oldest)) = store.outbox_backlog().await {
            report.pending = pending;
            report.oldest_pending = oldest;
            self.counters.set_backlog(pending);
            if let Some(oldest) = oldest
                && now_ms - oldest > self.warn_age.as_millis() as i64
            {
                tracing::warn!(
                    pending,
                    oldest = %format_rfc3339_ms(oldest),
                    "{pending} event(s) could not be delivered to NATS, the oldest since {}; they stay in the outbox until NATS takes them (`binance-extractor events flush`).",
                    format_rfc3339_ms(oldest)
                );
            }
        }
        if report.delivered > 0 {
            tracing::info!(
                delivered = report.delivered,
                "Delivered events left over by earlier runs."
            );
        }
        report
    }

    /// Disconnects (after a bounded flush).
    pub async fn close(self) {
        self.publisher.close().await;
    }
}

fn row(event: &OutgoingEvent, now_ms: i64) -> OutboxRow {
    OutboxRow {
        id: event.id.clone(),
        subject: event.subject.clone(),
        label: event.label.clone(),
        payload: String::from_utf8_lossy(&event.payload).into_owned(),
        created_at: now_ms,
    }
}
