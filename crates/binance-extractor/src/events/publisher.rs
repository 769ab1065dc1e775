//! Publishing events on NATS without ever holding up an extraction.
//!
//! One connection per run. If NATS cannot be reached the run goes on and says so once; if it
//! dies mid-run, messages are handed to the client (which reconnects in the background) and
//! the final flush is bounded in time. `NATS_ENABLED=false` attempts no connection at all.
//! The log lines are the seed's: "Connected to NATS server at {url}", "Published extraction
//! completion message for {symbol}", "Failed to send NATS message for {symbol}", "Failed to
//! connect to NATS server".

use std::time::Duration;

use async_nats::{ConnectOptions, HeaderMap, connection::State};
use bytes::Bytes;
use serde::Serialize;

/// How to reach NATS.
#[derive(Clone)]
pub struct NatsSettings {
    /// Whether to publish at all (`NATS_ENABLED`).
    pub enabled: bool,
    /// Server URL(s), comma-separated, possibly with credentials (secret).
    pub url: String,
    /// First subject tokens (`NATS_SUBJECT_PREFIX`).
    pub subject_prefix: String,
    /// Time limit for connecting.
    pub connect_timeout: Duration,
    /// Time limit for delivering what is queued when the run ends.
    pub flush_timeout: Duration,
}

impl std::fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSettings")
            .field("enabled", &self.enabled)
            .field("url", &redact_nats_url(&self.url))
            .field("subject_prefix", &self.subject_prefix)
            .finish()
    }
}

/// Where events go.
#[derive(Debug)]
pub struct EventPublisher {
    /// False when messaging is switched off: nothing is attempted or reported.
    enabled: bool,
    client: Option<async_nats::Client>,
    prefix: String,
    flush_timeout: Duration,
}

impl EventPublisher {
    /// Connects when enabled; never fails (a missing NATS is a warning, not an error).
    pub async fn connect(settings: &NatsSettings) -> Self {
        let mut publisher = EventPublisher {
            enabled: settings.enabled,
            client: None,
            prefix: settings.subject_prefix.clone(),
            flush_timeout: settings.flush_timeout,
        };
        if !settings.enabled {
            tracing::info!("NATS messaging disabled (NATS_ENABLED=false).");
            return publisher;
        }
        let shown = redact_nats_url(&settings.url);
        let options = ConnectOptions::new()
            .name("binance-extractor")
            .connection_timeout(settings.connect_timeout)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => tracing::warn!("Disconnected from NATS server."),
                    async_nats::Event::Connected => tracing::info!("Reconnected to NATS server."),
                    other => tracing::debug!(event = %other, "NATS event."),
                }
            });
        match tokio::time::timeout(settings.connect_timeout, options.connect(settings.url.as_str())).await {
            Ok(Ok(client)) => {
                tracing::info!(url = %shown, "Connected to NATS server at {shown}");
                publisher.client = Some(client);
            }
            Ok(Err(e)) => {
                let reason = scrub(&e.to_string(), &settings.url);
                tracing::warn!(url = %shown, error = %reason, "Failed to connect to NATS server at {shown}: {reason}");
            }
            Err(_) => {
                tracing::warn!(
                    url = %shown,
                    "Failed to connect to NATS server at {shown}: no answer within {:?}",
                    settings.connect_timeout
                );
            }
        }
        publisher
    }

    /// A publisher that publishes nothing (dry runs).
    pub fn disabled(prefix: &str) -> Self {
        EventPublisher {
            enabled: false,
            client: None,
            prefix: prefix.to_string(),
            flush_timeout: Duration::ZERO,
        }
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether a connection was made.
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// Publishes `message` on `subject`, logging the outcome for `label` (a symbol, or
    /// "batch"). Returns whether the message was handed to a connected client.
    pub async fn publish<T: Serialize>(&self, label: &str, subject: String, message: &T) -> bool {
        if !self.enabled {
            return false;
        }
        let Some(client) = &self.client else {
            tracing::warn!(
                symbol = label,
                "Failed to send NATS message for {label}: not connected to NATS"
            );
            return false;
        };
        let payload = match serde_json::to_vec(message) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::warn!(symbol = label, "Failed to send NATS message for {label}: {e}");
                return false;
            }
        };
        if client.connection_state() != State::Connected {
            // Hand it over anyway: the client delivers it if the connection returns in time.
            let _ = client
                .publish_with_headers(subject.clone(), headers(), payload)
                .await;
            tracing::warn!(
                symbol = label,
                subject = %subject,
                "Failed to send NATS message for {label}: the NATS connection is down (queued in case it returns before exit)"
            );
            return false;
        }
        match client
            .publish_with_headers(subject.clone(), headers(), payload)
            .await
        {
            Ok(()) => {
                if label == "batch" {
                    tracing::info!(subject = %subject, "Published batch extraction completion message");
                } else {
                    tracing::info!(symbol = label, subject = %subject, "Published extraction completion message for {label}");
                }
                true
            }
            Err(e) => {
                tracing::warn!(symbol = label, subject = %subject, "Failed to send NATS message for {label}: {e}");
                false
            }
        }
    }

    /// Delivers what is queued (bounded by the flush timeout) and disconnects.
    pub async fn close(self) {
        let Some(client) = self.client else { return };
        match tokio::time::timeout(self.flush_timeout, client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("Failed to flush NATS messages: {e}; some may not have been delivered")
            }
            Err(_) => tracing::warn!(
                "Failed to flush NATS messages within {:?}; some may not have been delivered",
                self.flush_timeout
            ),
        }
        drop(client);
    }
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Content-Type", "application/json");
    h
}

/// `NATS_URL` with user names, passwords and tokens removed (each of a comma-separated list).
pub fn redact_nats_url(urls: &str) -> String {
    urls.split(',')
        .map(|one| {
            let one = one.trim();
            match url::Url::parse(one) {
                Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                    let _ = u.set_username("***");
                    u.to_string().trim_end_matches('/').to_string()
                }
                Ok(u) => u.to_string().trim_end_matches('/').to_string(),
                Err(_) => match one.rfind('@') {
                    Some(at) => format!("***{}", &one[at..]),
                    None => one.to_string(),
                },
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Removes any credentials of `url` that an error message might repeat.
fn scrub(message: &str, urls: &str) -> String {
    let mut out = message.to_string();
    for one in urls.split(',') {
        if let Ok(u) = url::Url::parse(one.trim()) {
            for secret in [u.password().unwrap_or(""), u.username()] {
                if secret.len() >= 3 {
                    out = out.replace(secret, "***");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let cases = [
            ("nats://localhost:4222", "nats://localhost:4222"),
            ("nats://alice:s3cret@nats:4222", "nats://***@nats:4222"),
            ("nats://t0ken-abc@nats:4222", "nats://***@nats:4222"),
            (
                "tls://u:p@a:4222, nats://b:4222",
                "tls://***@a:4222,nats://b:4222",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_nats_url(input), want, "{input}");
        }
        assert_eq!(
            scrub(
                "auth failed for alice with s3cret",
                "nats://alice:s3cret@nats:4222"
            ),
            "auth failed for *** with ***"
        );
    }
}
