//! Publishing events on NATS, with confirmation, without ever holding up an extraction.
//!
//! One connection per run. Two modes:
//! - **core** (the seed's, and the default): a message is confirmed once the server has
//!   relayed a probe sent after it on the same connection (NATS keeps a connection's order),
//!   so "confirmed" means the server has it — not that a subscriber was listening.
//! - **JetStream** (`NATS_JETSTREAM=true`): the stream is created when missing (or used as
//!   it is) and every message is published with an acknowledgement and a stable
//!   `Nats-Msg-Id`, so a re-sent event is stored once within the stream's duplicate window.
//!
//! Every message carries `Nats-Msg-Id` and `Content-Type: application/json`. If NATS cannot
//! be reached the run goes on; `NATS_ENABLED=false` attempts no connection at all.

use std::{path::PathBuf, time::Duration};

use async_nats::{
    ConnectOptions, HeaderMap,
    jetstream::{self, stream},
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Mutex;

/// JetStream settings (`NATS_JETSTREAM=true`).
#[derive(Debug, Clone)]
pub struct JetStreamSettings {
    /// Stream name (`NATS_STREAM`).
    pub stream: String,
    /// How long the stream keeps messages (0 = forever).
    pub max_age: Duration,
    /// Window in which a re-sent `Nats-Msg-Id` is recognised as a duplicate.
    pub duplicate_window: Duration,
    /// Retention policy of a stream we create.
    pub retention: stream::RetentionPolicy,
}

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
    /// Time limit for confirming one message, and for the final flush.
    pub flush_timeout: Duration,
    /// A `.creds` file (JWT + NKey seed).
    pub creds_file: Option<PathBuf>,
    /// An NKey seed (secret).
    pub nkey_seed: Option<String>,
    /// CA certificate(s) to trust for `tls://` servers.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// JetStream mode, when set.
    pub jetstream: Option<JetStreamSettings>,
}

impl std::fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSettings")
            .field("enabled", &self.enabled)
            .field("url", &redact_nats_url(&self.url))
            .field("subject_prefix", &self.subject_prefix)
            .field("creds_file", &self.creds_file)
            .field("nkey_seed", &self.nkey_seed.as_ref().map(|_| "***"))
            .field("tls_ca", &self.tls_ca)
            .field("jetstream", &self.jetstream)
            .finish()
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// Stable id, sent as `Nats-Msg-Id` (the same on every re-send).
    pub id: String,
    pub subject: String,
    /// The JSON body.
    pub payload: Bytes,
    /// Who it is about: a symbol, or "batch" — for the log.
    pub label: String,
}

/// Why a message was not confirmed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("not connected to NATS")]
    NotConnected,
    #[error("the NATS connection is down")]
    ConnectionDown,
    #[error("NATS did not confirm within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Nats(String),
}

/// Where events go.
#[derive(Debug)]
pub struct EventPublisher {
    /// False when messaging is switched off: nothing is attempted or reported.
    enabled: bool,
    client: Option<async_nats::Client>,
    jetstream: Option<jetstream::Context>,
    /// Core mode: the subscription that sees our own probes come back.
    probe: Option<Mutex<Probe>>,
    prefix: String,
    flush_timeout: Duration,
}

#[derive(Debug)]
struct Probe {
    subject: String,
    sub: async_nats::Subscriber,
    next: u64,
}

impl EventPublisher {
    /// Connects when enabled; never fails (a missing NATS is a warning, not an error).
    pub async fn connect(settings: &NatsSettings) -> Self {
        let mut publisher = EventPublisher::disabled(&settings.subject_prefix);
        publisher.enabled = settings.enabled;
        publisher.flush_timeout = settings.flush_timeout;
        if !settings.enabled {
            tracing::info!("NATS messaging disabled (NATS_ENABLED=false).");
            return publisher;
        }
        let shown = redact_nats_url(&settings.url);
        let client = match connect_client(settings).await {
            Ok(client) => client,
            Err(reason) => {
                let reason = scrub(&reason, settings);
                tracing::warn!(url = %shown, error = %reason, "Failed to connect to NATS server at {shown}: {reason}");
                return publisher;
            }
        };
        tracing::info!(url = %shown, "Connected to NATS server at {shown}");
        match &settings.jetstream {
            Some(js) => match ensure_stream(&client, js, &settings.subject_prefix).await {
                Ok(context) => publisher.jetstream = Some(context),
                Err(e) => {
                    tracing::warn!(stream = %js.stream, error = %e, "Failed to use the JetStream stream {}: {e}", js.stream);
                    return publisher;
                }
            },
            None => {
                let subject = client.new_inbox();
                match client.subscribe(subject.clone()).await {
                    Ok(sub) => {
                        publisher.probe = Some(Mutex::new(Probe {
                            subject,
                            sub,
                            next: 0,
                        }))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Failed to subscribe on NATS: {e}");
                        return publisher;
                    }
                }
            }
        }
        publisher.client = Some(client);
        publisher
    }

    /// A publisher that publishes nothing (dry runs, NATS disabled).
    pub fn disabled(prefix: &str) -> Self {
        EventPublisher {
            enabled: false,
            client: None,
            jetstream: None,
            probe: None,
            prefix: prefix.to_string(),
            flush_timeout: Duration::ZERO,
        }
    }

    /// Whether messaging is on (`NATS_ENABLED`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a connection was made.
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Sends `event` and waits until NATS has it (JetStream ack, or the core-mode probe).
    pub async fn send(&self, event: &OutgoingEvent) -> Result<(), SendError> {
        let client = self.client.as_ref().ok_or(SendError::NotConnected)?;
        if client.connection_state() != async_nats::connection::State::Connected {
            return Err(SendError::ConnectionDown);
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        headers.insert("Content-Type", "application/json");
        let limit = self.flush_timeout;
        if let Some(js) = &self.jetstream {
            let ack = js
                .publish_with_headers(event.subject.clone(), headers, event.payload.clone())
                .await
                .map_err(|e| SendError::Nats(e.to_string()))?;
            let ack = tokio::time::timeout(limit, ack)
                .await
                .map_err(|_| SendError::Timeout(limit))?
                .map_err(|e| SendError::Nats(e.to_string()))?;
            if ack.duplicate {
                tracing::debug!(id = %event.id, "JetStream already had this event.");
            }
            return Ok(());
        }
        client
            .publish_with_headers(event.subject.clone(), headers, event.payload.clone())
            .await
            .map_err(|e| SendError::Nats(e.to_string()))?;
        self.confirm(client).await
    }

    /// Core mode: publishes a probe to our own inbox and waits to receive it. NATS relays a
    /// connection's messages in order, so once the probe is back the server has every
    /// message published before it.
    async fn confirm(&self, client: &async_nats::Client) -> Result<(), SendError> {
        let Some(probe) = &self.probe else { return Ok(()) };
        let mut probe = probe.lock().await;
        probe.next += 1;
        let token = probe.next.to_string();
        client
            .publish(probe.subject.clone(), Bytes::from(token.clone()))
            .await
            .map_err(|e| SendError::Nats(e.to_string()))?;
        let limit = self.flush_timeout;
        let wait = async {
            while let Some(msg) = probe.sub.next().await {
                if msg.payload == token.as_bytes() {
                    return Ok(());
                }
            }
            Err(SendError::ConnectionDown)
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| SendError::Timeout(limit))?
    }

    /// Flushes what is queued (bounded by the flush timeout) and disconnects.
    pub async fn close(self) {
        let Some(client) = self.client else { return };
        if let Err(e) = tokio::time::timeout(self.flush_timeout, client.flush())
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!("Failed to flush NATS messages: {e}");
        }
    }

    /// The connected client, for tools that subscribe (`events watch`, `events test`).
    pub fn client(&self) -> Option<&async_nats::Client> {
        self.client.as_ref()
    }
}

async fn connect_client(settings: &NatsSettings) -> Result<async_nats::Client, String> {
    let mut options = match (&settings.creds_file, &settings.nkey_seed) {
        (Some(path), _) => ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|e| format!("cannot read NATS_CREDS file {}: {e}", path.display()))?,
        (None, Some(seed)) => ConnectOptions::with_nkey(seed.clone()),
        (None, None) => ConnectOptions::new(),
    };
    if let Some(ca) = &settings.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &settings.tls_client {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    // Whether the connection was lost, so that only a real reconnection is reported.
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = options
        .name("binance-extractor")
        .connection_timeout(settings.connect_timeout)
        .event_callback(move |event| {
            let lost = lost.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        lost.store(true, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("Disconnected from NATS server.");
                    }
                    async_nats::Event::Connected
                        if lost.swap(false, std::sync::atomic::Ordering::Relaxed) =>
                    {
                        tracing::info!("Reconnected to NATS server.");
                    }
                    other => tracing::debug!(event = %other, "NATS event."),
                }
            }
        });
    match tokio::time::timeout(settings.connect_timeout, options.connect(settings.url.as_str())).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {:?}", settings.connect_timeout)),
    }
}

/// Uses the stream if it exists (as it is), creates it otherwise.
async fn ensure_stream(
    client: &async_nats::Client,
    settings: &JetStreamSettings,
    prefix: &str,
) -> Result<jetstream::Context, String> {
    let context = jetstream::new(client.clone());
    match context.get_stream(&settings.stream).await {
        Ok(_) => {
            tracing::info!(stream = %settings.stream, "Using JetStream stream {}.", settings.stream);
            Ok(context)
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref js)
                if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            let config = stream::Config {
                name: settings.stream.clone(),
                subjects: vec![format!("{prefix}.>")],
                max_age: settings.max_age,
                duplicate_window: settings.duplicate_window,
                retention: settings.retention,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            context.create_stream(config).await.map_err(|e| e.to_string())?;
            tracing::info!(stream = %settings.stream, subjects = %format!("{prefix}.>"), "Created JetStream stream {}.", settings.stream);
            Ok(context)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `NATS_URL` with user names, passwords and tokens removed (each of a comma-separated list).
pub fn redact_nats_url(urls: &str) -> String {
    urls.split(',')
        .map(|one| {
            let one = one.trim();
            match url::Url::parse(one) {
                Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
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

/// Removes any credential an error message might repeat.
fn scrub(message: &str, settings: &NatsSettings) -> String {
    let mut out = message.to_string();
    let mut secrets: Vec<String> = Vec::new();
    for one in settings.url.split(',') {
        if let Ok(u) = url::Url::parse(one.trim()) {
            secrets.push(u.password().unwrap_or("").to_string());
            secrets.push(u.username().to_string());
        }
    }
    secrets.extend(settings.nkey_seed.clone());
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(secret.as_str(), "***");
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
        let settings = NatsSettings {
            enabled: true,
            url: "nats://alice:s3cret@nats:4222".into(),
            subject_prefix: "p".into(),
            connect_timeout: Duration::from_secs(1),
            flush_timeout: Duration::from_secs(1),
            creds_file: None,
            nkey_seed: Some("SUAKEYSEED".into()),
            tls_ca: None,
            tls_client: None,
            jetstream: None,
        };
        assert_eq!(
            scrub("auth failed for alice with s3cret and SUAKEYSEED", &settings),
            "auth failed for *** with *** and ***"
        );
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert!(!format!("{settings:?}").contains("SUAKEYSEED"));
    }
}
