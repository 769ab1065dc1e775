//! The simulator over real sockets, through the public API and the binary: what only a
//! connection shows (a reset, a cut-off body, keep-alive, shutdown, the first stdout line).

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use binance_sim::{Clock, FaultConfig, FaultKind, SimConfig, spawn};
use binance_spec::{Interval, Market, time::parse_timestamp};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// What a raw HTTP/1.1 exchange gave back.
#[derive(Debug)]
enum Outcome {
    /// A parsed response: status, headers (lower-case names), body.
    Response(u16, Vec<(String, String)>, Vec<u8>),
    /// The connection ended without a single byte (closed or reset).
    NoResponse(std::io::ErrorKind),
}

impl Outcome {
    fn header(&self, name: &str) -> Option<&str> {
        match self {
            Outcome::Response(_, headers, _) => {
                headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
            }
            Outcome::NoResponse(_) => None,
        }
    }
}

/// Sends `GET path` with `Connection: close` and reads until the server closes.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> Outcome {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if bytes.is_empty() => return Outcome::NoResponse(e.kind()),
            Err(e) => panic!("error after {} bytes: {e}", bytes.len()),
        }
    }
    if bytes.is_empty() {
        return Outcome::NoResponse(std::io::ErrorKind::UnexpectedEof);
    }
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(bytes[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Outcome::Response(status, headers, bytes[split + 4..].to_vec())
}

fn config(faults: FaultConfig) -> SimConfig {
    SimConfig {
        clock: Clock::Fixed(parse_timestamp("2024-01-10T10:30:00Z").unwrap()),
        faults,
        ..SimConfig::default()
    }
}

const KLINES: &str = "/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=100";

#[tokio::test]
async fn serves_klines_and_shuts_down() {
    let sim = spawn(config(FaultConfig::default())).await.unwrap();
    assert_eq!(sim.base_url(), format!("http://127.0.0.1:{}", sim.addr().port()));
    let reply = raw_get(sim.addr(), KLINES).await;
    let Outcome::Response(200, _, body) = &reply else {
        panic!("{reply:?}")
    };
    let want = sim
        .dataset()
        .page(Market::UsdM, "BTCUSDT", Interval::M1, None, None, 100);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
    assert_eq!(rows.len(), want.len());
    assert_eq!(rows[99][0], want[99].open_time);
    assert_eq!(reply.header("x-mbx-used-weight-1m"), Some("2"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/json;charset=UTF-8")
    );

    // The clock is the handle's to move.
    sim.set_now(parse_timestamp("2024-01-10T10:31:00Z").unwrap());
    let time = raw_get(sim.addr(), "/fapi/v1/time").await;
    let Outcome::Response(200, _, body) = time else {
        panic!()
    };
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"serverTime":1704882660000}"#
    );

    assert_eq!(sim.stats().rows_served, 100);
    // Shutting down completes (open connections drained). Whether the port then refuses
    // connections is not asserted: tests running beside this one may be handed the freed port.
    tokio::time::timeout(std::time::Duration::from_secs(15), sim.shutdown())
        .await
        .expect("the simulator shuts down");
}

#[tokio::test]
async fn reset_fault_closes_the_connection_without_a_response() {
    let sim = spawn(config(FaultConfig {
        reset_rate: 1.0,
        ..FaultConfig::default()
    }))
    .await
    .unwrap();
    for _ in 0..3 {
        match raw_get(sim.addr(), KLINES).await {
            // SO_LINGER 0: the client sees a TCP reset, not a clean close.
            Outcome::NoResponse(kind) => assert_eq!(kind, std::io::ErrorKind::ConnectionReset),
            other => panic!("expected no response, got {other:?}"),
        }
    }
    // Other endpoints on a fresh connection are unaffected.
    assert!(matches!(
        raw_get(sim.addr(), "/fapi/v1/ping").await,
        Outcome::Response(200, ..)
    ));
    let stats = sim.stats();
    assert_eq!(stats.faults.reset, 3);
    assert!(
        stats
            .klines_log
            .iter()
            .all(|e| e.status == 0 && e.fault == Some(FaultKind::Reset))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn truncate_fault_sends_a_complete_message_with_half_the_json() {
    let sim = spawn(config(FaultConfig {
        truncate_rate: 1.0,
        ..FaultConfig::default()
    }))
    .await
    .unwrap();
    let reply = raw_get(sim.addr(), KLINES).await;
    let Outcome::Response(200, _, body) = &reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        reply.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(body.starts_with(b"[[") && serde_json::from_slice::<serde_json::Value>(body).is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let sim = spawn(config(FaultConfig::default())).await.unwrap();
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!("GET /api/v3/ping HTTP/1.1\r\nHost: {}\r\n\r\n", sim.addr());
    let mut buf = vec![0u8; 4096];
    for i in 1..=5 {
        stream.write_all(request.as_bytes()).await.unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        assert!(
            text.starts_with("http/1.1 200") && text.contains(&format!("x-mbx-used-weight-1m: {i}\r\n")),
            "{text}"
        );
    }
    drop(stream);
    sim.shutdown().await;
}

#[test]
fn the_binary_prints_where_it_listens_first() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_binance-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--now",
            "2024-01-10T10:30:00Z",
            "--symbols",
            "BTCUSDT,ETHBTC",
            "--weight-limit",
            "unlimited",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim_end()
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            raw_get(([127, 0, 0, 1], port).into(), "/api/v3/exchangeInfo"),
        )
        .await
        .unwrap()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let Outcome::Response(200, _, body) = reply else {
        panic!("{reply:?}")
    };
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["serverTime"], 1_704_882_600_000i64);
    assert_eq!(info["symbols"][1]["baseAsset"], "ETH");
    assert_eq!(info["symbols"][1]["quoteAsset"], "BTC");
}

#[test]
fn the_binary_explains_bad_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_binance-sim"))
        .args(["--outage", "BTCUSDT:2024-01-02/2024-01-01"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("END must be after START"), "{stderr}");
}
