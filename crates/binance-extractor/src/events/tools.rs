//! The operator's event tools: `events flush`, `events test` and `events watch`.
//!
//! `events test` is the seed's `scripts/test_nats_messaging.py` done properly: it subscribes
//! first, publishes the seed's four sample messages, and proves each one came back — so it
//! fails when NATS is down instead of "passing" silently. `events watch` is the seed's
//! example consumer, one readable line per event.

use std::time::Duration;

use binance_spec::{Interval, Market};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    BatchExtractionCompleted, EventPublisher, ExtractionCompleted, ExtractionType, SymbolMetrics,
    SymbolSummary, message::Announcement, publisher::OutgoingEvent,
};

/// The seed's four sample messages, in its order: a single BTCUSDT 15m extraction, a
/// three-symbol batch, a failure with two errors, and a gap fill with three gaps.
pub fn seed_samples(now_ms: i64) -> Vec<(String, Value)> {
    let single = |symbol: &str, fetched, secs, gaps, errors: &[&str]| SymbolSummary {
        symbol: symbol.parse().expect("sample symbols are valid"),
        metrics: SymbolMetrics {
            records_fetched: fetched,
            records_written: fetched,
            duration_seconds: secs,
            gaps_found: gaps,
            gaps_filled: gaps,
        },
        errors: errors.iter().map(|e| e.to_string()).collect(),
        range: None,
    };
    let (m, i) = (Market::UsdM, Interval::M15);
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut push = |label: String, message: Value| out.push((label, message));
    let one = ExtractionCompleted::new(
        ExtractionType::Klines,
        m,
        i,
        &single("BTCUSDT", 150, 3.5, 0, &[]),
        now_ms,
    );
    push(one.label(), serde_json::to_value(&one).expect("serializes"));
    let three: Vec<SymbolSummary> = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
        .iter()
        .map(|s| single(s, 150, 0.0, 0, &[]))
        .collect();
    let batch = BatchExtractionCompleted::new(
        ExtractionType::Klines,
        m,
        i,
        &three,
        Duration::from_millis(12_500),
        now_ms,
    );
    push(batch.label(), serde_json::to_value(&batch).expect("serializes"));
    let failed = single(
        "INVALIDUSDT",
        0,
        1.2,
        0,
        &["API rate limit exceeded", "Connection timeout"],
    );
    let failed = ExtractionCompleted::new(ExtractionType::Klines, m, i, &failed, now_ms);
    push(failed.label(), serde_json::to_value(&failed).expect("serializes"));
    let gaps = ExtractionCompleted::new(
        ExtractionType::KlinesGapFilling,
        m,
        i,
        &single("BTCUSDT", 50, 8.7, 3, &[]),
        now_ms,
    );
    push(gaps.label(), serde_json::to_value(&gaps).expect("serializes"));
    out
}

/// `events test`: subscribe, publish the four samples, prove each arrived. Returns whether
/// all did.
pub async fn run_test(publisher: &EventPublisher, now_ms: i64, timeout: Duration) -> bool {
    let Some(client) = publisher.client() else {
        println!("FAIL  cannot connect to NATS (see the log above)");
        return false;
    };
    let prefix = publisher.prefix();
    let mut sub = match client.subscribe(format!("{prefix}.>")).await {
        Ok(sub) => sub,
        Err(e) => {
            println!("FAIL  cannot subscribe to {prefix}.>: {e}");
            return false;
        }
    };
    if let Err(e) = client.flush().await {
        println!("FAIL  NATS did not take the subscription: {e}");
        return false;
    }
    let run = format!("test-{now_ms:x}-{:06x}", fastrand::u32(..0xFF_FFFF));
    let mut expected = Vec::new();
    for (n, (label, mut body)) in seed_samples(now_ms).into_iter().enumerate() {
        let id = format!("{run}-{n}");
        body["event_id"] = Value::String(id.clone());
        let subject = subject_of(prefix, &body);
        let event = OutgoingEvent {
            id: id.clone(),
            subject: subject.clone(),
            payload: Bytes::from(serde_json::to_vec(&body).expect("serializes")),
            label: label.clone(),
        };
        if let Err(e) = publisher.send(&event).await {
            println!("FAIL  {subject}: not published: {e}");
            return false;
        }
        expected.push((id, subject, body));
    }
    let mut received = vec![false; expected.len()];
    let deadline = tokio::time::Instant::now() + timeout;
    while received.iter().any(|r| !r) {
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await else {
            break;
        };
        let Ok(body) = serde_json::from_slice::<Value>(&msg.payload) else {
            continue;
        };
        if let Some(i) = expected.iter().position(|(id, subject, sent)| {
            body["event_id"] == id.as_str() && msg.subject.as_str() == subject && &body == sent
        }) {
            received[i] = true;
        }
    }
    for ((_, subject, body), ok) in expected.iter().zip(&received) {
        let what = body["event_type"].as_str().unwrap_or("?");
        println!("{}  {subject}  {what}", if *ok { "ok  " } else { "FAIL" });
    }
    let passed = received.iter().filter(|r| **r).count();
    println!("{passed}/{} messages published and received", expected.len());
    passed == expected.len()
}

fn subject_of(prefix: &str, body: &Value) -> String {
    let kind = body["extraction_type"].as_str().unwrap_or("klines");
    let period = body["period"].as_str().unwrap_or("");
    match body["symbol"].as_str() {
        Some(symbol) => format!("{prefix}.{kind}.{symbol}.{period}"),
        None => format!("{prefix}.{kind}.batch.{period}"),
    }
}

/// `events watch`: prints every event on `subject` until stopped (or `count` events).
pub async fn run_watch(
    publisher: &EventPublisher,
    subject: &str,
    json: bool,
    count: Option<u64>,
    stop: CancellationToken,
) -> bool {
    let Some(client) = publisher.client() else {
        eprintln!("error: cannot connect to NATS (see the log above)");
        return false;
    };
    let mut sub = match client.subscribe(subject.to_string()).await {
        Ok(sub) => sub,
        Err(e) => {
            eprintln!("error: cannot subscribe to {subject}: {e}");
            return false;
        }
    };
    let _ = client.flush().await;
    tracing::info!(subject, "Watching extraction events.");
    let mut seen = 0u64;
    loop {
        let msg = tokio::select! {
            msg = sub.next() => msg,
            () = stop.cancelled() => return true,
        };
        let Some(msg) = msg else { return false };
        if json {
            println!("{}", String::from_utf8_lossy(&msg.payload));
        } else {
            println!("{}", describe(msg.subject.as_str(), &msg.payload));
        }
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            return true;
        }
    }
}

/// One readable line: time, type, symbol(s), period, ok/failed, records, duration, gaps.
pub fn describe(subject: &str, payload: &[u8]) -> String {
    let Ok(b) = serde_json::from_slice::<Value>(payload) else {
        return format!("{subject}: not JSON ({} bytes)", payload.len());
    };
    let m = &b["metrics"];
    let n = |v: &Value| v.as_u64().map_or("?".into(), |x| x.to_string());
    let who = match b["symbols"].as_array() {
        Some(list) => format!(
            "batch[{}]",
            list.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
        None => b["symbol"].as_str().unwrap_or("?").to_string(),
    };
    let (fetched, written, found, filled) = if b["symbols"].is_array() {
        (
            &m["total_records_fetched"],
            &m["total_records_written"],
            &m["total_gaps_found"],
            &m["total_gaps_filled"],
        )
    } else {
        (
            &m["records_fetched"],
            &m["records_written"],
            &m["gaps_found"],
            &m["gaps_filled"],
        )
    };
    let result = if b["success"] == true {
        "ok".to_string()
    } else {
        format!("FAILED {}", b["errors"])
    };
    format!(
        "{} {} {} {} {} records={}/{} duration={}s gaps={}/{} {}",
        b["timestamp"].as_str().unwrap_or("?"),
        b["extraction_type"].as_str().unwrap_or("?"),
        who,
        b["period"].as_str().unwrap_or("?"),
        b["event_type"].as_str().unwrap_or("?"),
        n(fetched),
        n(written),
        m["duration_seconds"],
        n(found),
        n(filled),
        result
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_samples() {
        let samples = seed_samples(1_705_314_600_000);
        assert_eq!(samples.len(), 4);
        let (_, single) = &samples[0];
        assert_eq!(single["symbol"], "BTCUSDT");
        assert_eq!(single["metrics"]["records_fetched"], 150);
        assert_eq!(single["metrics"]["duration_seconds"], 3.5);
        let (label, batch) = &samples[1];
        assert_eq!(label, "batch");
        assert_eq!(batch["metrics"]["total_records_written"], 450);
        assert_eq!(batch["metrics"]["symbols_processed"], 3);
        let (_, failed) = &samples[2];
        assert_eq!(failed["success"], false);
        assert_eq!(
            failed["errors"],
            serde_json::json!(["API rate limit exceeded", "Connection timeout"])
        );
        let (_, gaps) = &samples[3];
        assert_eq!(gaps["extraction_type"], "klines_gap_filling");
        assert_eq!(gaps["metrics"]["gaps_found"], 3);
        assert_eq!(
            subject_of("binance.extraction", gaps),
            "binance.extraction.klines_gap_filling.BTCUSDT.15m"
        );
        assert_eq!(
            subject_of("binance.extraction", batch),
            "binance.extraction.klines.batch.15m"
        );
    }

    #[test]
    fn watch_lines_read_well() {
        let samples = seed_samples(1_705_314_600_000);
        let line = describe("s", serde_json::to_vec(&samples[0].1).unwrap().as_slice());
        assert_eq!(
            line,
            "2024-01-15T10:30:00.000Z klines BTCUSDT 15m extraction_completed records=150/150 duration=3.5s gaps=0/0 ok"
        );
        let line = describe("s", serde_json::to_vec(&samples[1].1).unwrap().as_slice());
        assert!(
            line.contains("batch[BTCUSDT,ETHUSDT,BNBUSDT]") && line.contains("records=450/450"),
            "{line}"
        );
        let line = describe("s", serde_json::to_vec(&samples[2].1).unwrap().as_slice());
        assert!(
            line.ends_with(r#"FAILED ["API rate limit exceeded","Connection timeout"]"#),
            "{line}"
        );
    }
}
