//! Events that are never lost: the outbox, JetStream deduplication, the seed's test script
//! and consumer — against the real NATS server.

mod common;

use std::time::Duration;

use binance_sim::{Clock, SimConfig};
use common::*;
use futures_util::StreamExt;

fn sim_config() -> SimConfig {
    SimConfig {
        clock: Clock::Fixed(t("2024-03-01T00:07:00Z")),
        ..SimConfig::default()
    }
}

async fn outbox(db: &TempDb) -> Vec<(String, String, Option<i64>)> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .unwrap();
    let rows = sqlx::query_as("SELECT id, subject, delivered_at FROM event_outbox ORDER BY created_at, id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

/// NATS down during a sync of eight symbols: everything is stored, exit 0, nine events wait
/// in the outbox; `events flush` later delivers all nine, each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_then_flush_delivers_every_event_once() {
    let sim = start_sim(sim_config()).await;
    let db = TempDb::new();
    let prefix = unique_prefix("outbox");
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.env("NATS_URL", format!("nats://127.0.0.1:{}", closed_port()))
        .args(["sync", "--period", "1h", "--since", "2024-02-01"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(count_rows(&db.path()).await, 8 * 29 * 24);
    let waiting = outbox(&db).await;
    assert_eq!(waiting.len(), 9, "{waiting:?}");
    assert!(waiting.iter().all(|(_, _, delivered)| delivered.is_none()));
    assert!(waiting[8].1.ends_with(".klines.batch.1h"), "the batch comes last");

    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["events", "flush"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("delivered 9 event(s); 0 still undelivered"),
        "{}",
        out.stdout
    );
    let events = sub.drain(Duration::from_millis(500)).await;
    assert_schema_valid(&events);
    let got: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    let want: Vec<&str> = waiting.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(got, want, "all nine, each once, in order");
    for (e, (id, _, _)) in events.iter().zip(&waiting) {
        assert_eq!(e.body["event_id"], id.as_str());
        assert_eq!(e.headers.get("Nats-Msg-Id"), Some(id));
    }
    assert!(
        outbox(&db).await.iter().all(|(_, _, d)| d.is_some()),
        "all marked delivered"
    );

    // Nothing is sent twice.
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["events", "flush"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("delivered 0 event(s); 0 still undelivered"),
        "{}",
        out.stdout
    );
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
    sim.shutdown().await;
}

/// Events left undelivered are sent first by the next run of any job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_run_delivers_what_the_last_one_could_not() {
    let sim = start_sim(sim_config()).await;
    let db = TempDb::new();
    let prefix = unique_prefix("nextrun");
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.env("NATS_URL", format!("nats://127.0.0.1:{}", closed_port()))
        .args(["extract", "--symbols", "BTCUSDT,ETHUSDT", "--start", "2024-02-01"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("kept in the outbox"), "{}", out.stderr);
    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["sync", "--symbols", "BTCUSDT,ETHUSDT"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut all = sub.until_batch(Duration::from_secs(10)).await;
    let batches = |v: &Vec<Event>| {
        v.iter()
            .filter(|e| e.body["event_type"] == "batch_extraction_completed")
            .count()
    };
    if batches(&all) < 2 {
        all.extend(sub.until_batch(Duration::from_secs(10)).await);
    }
    let split = 1 + all
        .iter()
        .position(|e| e.body["event_type"] == "batch_extraction_completed")
        .unwrap();
    let more = all.split_off(split); // the new run's
    let events = all; // the old run's, delivered first
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[0].body["extraction_type"], "klines");
    assert!(
        events[2].body["metrics"]["total_records_written"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(more.len(), 3, "{more:#?}");
    assert_eq!(
        more[2].body["metrics"]["total_records_written"], 0,
        "the sync found nothing new"
    );
    assert!(outbox(&db).await.iter().all(|(_, _, d)| d.is_some()));
    sim.shutdown().await;
}

/// JetStream mode: the stream is created, every event is stored with its Nats-Msg-Id, and an
/// event re-sent after a crash between publish and acknowledgement is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_stores_a_resent_event_once() {
    let sim = start_sim(sim_config()).await;
    let db = TempDb::new();
    let prefix = unique_prefix("js");
    let stream = format!("BXTEST_{}", fastrand::u64(..));
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.env("NATS_JETSTREAM", "true")
        .env("NATS_STREAM", &stream)
        .env("NATS_STREAM_MAX_AGE", "1h")
        .args(["extract", "--symbols", "BTCUSDT,ETHUSDT", "--start", "2024-02-01"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("Created JetStream stream {stream}")),
        "{}",
        out.stderr
    );
    let mut info = js.get_stream(&stream).await.expect("the stream exists");
    let info = info.info().await.unwrap().clone();
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.config.subjects, [format!("{prefix}.>")]);

    // A crash after publishing but before marking delivered: the events are still pending.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&db.url())
        .await
        .unwrap();
    sqlx::query("UPDATE event_outbox SET delivered_at = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.env("NATS_JETSTREAM", "true")
        .env("NATS_STREAM", &stream)
        .args(["events", "flush"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("delivered 3 event(s)"), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("Using JetStream stream {stream}")),
        "{}",
        out.stderr
    );
    let mut again = js.get_stream(&stream).await.unwrap();
    assert_eq!(
        again.info().await.unwrap().state.messages,
        3,
        "re-sent events stored once"
    );

    // What the stream holds is the seed's messages with their ids.
    let consumer = again
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(Ok(msg)) = messages.next().await {
        let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        let header = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string());
        assert_eq!(header.as_deref(), body["event_id"].as_str());
        seen.push(body);
    }
    assert_eq!(seen.len(), 3);
    assert_schema_valid(
        &seen
            .into_iter()
            .map(|body| Event {
                subject: String::new(),
                body,
                headers: Default::default(),
            })
            .collect::<Vec<_>>(),
    );
    js.delete_stream(&stream).await.unwrap();
    sim.shutdown().await;
}

/// `events test` is the seed's test script: it passes against the real server and fails when
/// NATS is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_test_passes_with_nats_and_fails_without() {
    let db = TempDb::new();
    let prefix = unique_prefix("evtest");
    let mut sub = Subscriber::new(&prefix).await;
    let mut cmd = extractor("http://127.0.0.1:1", &db.url(), &prefix);
    cmd.args(["events", "test"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("4/4 messages published and received"),
        "{}",
        out.stdout
    );
    let events = sub.drain(Duration::from_millis(300)).await;
    assert_schema_valid(&events);
    let subjects: Vec<String> = events.iter().map(|e| e.subject.clone()).collect();
    assert_eq!(
        subjects,
        [
            format!("{prefix}.klines.BTCUSDT.15m"),
            format!("{prefix}.klines.batch.15m"),
            format!("{prefix}.klines.INVALIDUSDT.15m"),
            format!("{prefix}.klines_gap_filling.BTCUSDT.15m"),
        ]
    );
    assert_eq!(
        events[2].body["errors"],
        serde_json::json!(["API rate limit exceeded", "Connection timeout"])
    );
    assert_eq!(events[3].body["metrics"]["gaps_filled"], 3);

    let mut cmd = extractor("http://127.0.0.1:1", &db.url(), &prefix);
    cmd.env("NATS_URL", format!("nats://127.0.0.1:{}", closed_port()))
        .args(["events", "test"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("Failed to connect to NATS server"),
        "{}",
        out.stderr
    );
}

/// Reads `reader` until a line containing `needle` (30 s at most).
async fn wait_for_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R, needle: &str) {
    let mut line = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            line.clear();
            match tokio::io::AsyncBufReadExt::read_line(reader, &mut line).await {
                Ok(0) | Err(_) => return false,
                Ok(_) if line.contains(needle) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(found, Ok(true), "no line with {needle:?}");
}

/// `events watch` prints one readable line per event; the seed's Python consumer (nats-py)
/// receives the messages of a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_the_seed_consumer_receive_a_run() {
    let sim = start_sim(sim_config()).await;
    let db = TempDb::new();
    let prefix = unique_prefix("watch");
    let mut watch = extractor(&sim.base_url(), &db.url(), &prefix);
    watch.args(["events", "watch", "--count", "3"]);
    let mut watch = watch.spawn().unwrap();
    let mut watch_log = tokio::io::BufReader::new(watch.stderr.take().unwrap());
    wait_for_line(&mut watch_log, "Watching extraction events").await;
    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/seed_consumer.py");
    let mut consumer = tokio::process::Command::new(python)
        .args([
            script,
            "--url",
            &nats_url(),
            "--subject",
            &format!("{prefix}.>"),
            "--count",
            "3",
            "--timeout",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (scripts/test.sh installs nats-py)");
    // Both subscribers are ready once they say so (the watcher logs, the script prints).
    let mut err = tokio::io::BufReader::new(consumer.stderr.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncBufReadExt::read_line(&mut err, &mut line),
    )
    .await
    .expect("the consumer subscribes")
    .unwrap();
    assert_eq!(line.trim(), "subscribed", "nats-py is installed and connected");
    let mut probe = Subscriber::new(&prefix).await;
    let mut cmd = extractor(&sim.base_url(), &db.url(), &prefix);
    cmd.args(["extract", "--symbols", "BTCUSDT,ETHUSDT", "--start", "2024-02-20"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(probe.until_batch(Duration::from_secs(10)).await.len(), 3);

    let consumed = tokio::time::timeout(Duration::from_secs(30), consumer.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(consumed.status.success());
    let lines: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{prefix}.klines.")));
    let body: serde_json::Value = serde_json::from_str(lines[2].split('\t').nth(1).unwrap()).unwrap();
    assert_eq!(body["event_type"], "batch_extraction_completed");

    let watched = tokio::time::timeout(Duration::from_secs(30), watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(watched.status.success());
    let text = String::from_utf8_lossy(&watched.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" klines BTCUSDT 15m extraction_completed records=")),
        "{text}"
    );
    assert!(
        lines[2].contains("batch[BTCUSDT,ETHUSDT]") && lines[2].ends_with(" ok"),
        "{text}"
    );
    sim.shutdown().await;
}
