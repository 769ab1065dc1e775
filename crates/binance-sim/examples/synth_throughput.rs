//! How fast the simulator produces klines: synthetic rows written as JSON on one core, then
//! rows through HTTP (keep-alive connections, `limit=1000` pages).
//!
//! ```sh
//! cargo run --release -p binance-sim --example synth_throughput
//! ```

use std::time::{Duration, Instant};

use binance_sim::{Clock, Dataset, SimClock, SimConfig, WeightLimit, spawn};
use binance_spec::{Interval, Market, time::parse_timestamp};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const NOW: &str = "2025-01-01T00:00:00Z";

fn one_core(dataset: &Dataset, market: Market, interval: Interval) {
    let start = parse_timestamp("2021-01-01").unwrap();
    let step = interval.fixed_ms().unwrap() * 1000;
    // Full pages only: wrap around before reaching "now".
    let full_pages = (parse_timestamp(NOW).unwrap() - start) / step - 1;
    let mut out = Vec::with_capacity(200 * 1000);
    let (mut rows, mut bytes, mut page) = (0usize, 0usize, 0i64);
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(2) {
        for symbol in ["BTCUSDT", "ETHUSDT", "ADAUSDT", "XRPUSDT"] {
            out.clear();
            rows += dataset.write_page_json(
                market,
                symbol,
                interval,
                Some(start + page % full_pages * step),
                None,
                1000,
                &mut out,
            );
            bytes += out.len();
        }
        page += 1;
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "one core, {market} {interval}: {:.2} M rows/s ({:.0} MB/s of JSON, {:.0} bytes/row)",
        rows as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        bytes as f64 / rows as f64
    );
}

/// One keep-alive connection fetching `pages` pages; returns the rows received.
async fn client(addr: std::net::SocketAddr, pages: usize, offset: usize) -> usize {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let start = parse_timestamp("2021-01-01").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut rows = 0;
    for page in 0..pages {
        let from = start + ((offset * pages + page) as i64) * 1000 * 60_000;
        let request = format!(
            "GET /fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime={from}&limit=1000 HTTP/1.1\r\nHost: sim\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // Read the head, then exactly Content-Length bytes of body.
        let mut filled = 0;
        let (head_end, length) = loop {
            let n = stream.read(&mut buf[filled..]).await.unwrap();
            assert!(n > 0, "server closed");
            filled += n;
            if let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap().to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                break (end + 4, length);
            }
        };
        while filled < head_end + length {
            filled += stream.read(&mut buf[filled..]).await.unwrap();
        }
        rows += buf[head_end..head_end + length]
            .windows(2)
            .filter(|w| w == b"],")
            .count()
            + 1;
    }
    rows
}

#[tokio::main]
async fn main() {
    let config = SimConfig {
        clock: Clock::Fixed(parse_timestamp(NOW).unwrap()),
        weight_limit: WeightLimit::Unlimited,
        ..SimConfig::default()
    };
    let dataset = Dataset::new(&config, SimClock::new(config.clock)).unwrap();
    one_core(&dataset, Market::Spot, Interval::M1);
    one_core(&dataset, Market::UsdM, Interval::M1);
    one_core(&dataset, Market::Spot, Interval::H1);

    let sim = spawn(config).await.unwrap();
    for connections in [1, 8] {
        let pages = 400;
        let began = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|i| tokio::spawn(client(sim.addr(), pages, i)))
            .collect();
        let mut rows = 0;
        for task in tasks {
            rows += task.await.unwrap();
        }
        let secs = began.elapsed().as_secs_f64();
        println!(
            "HTTP, {connections} keep-alive connection(s), limit=1000: {:.2} M rows/s ({:.0} requests/s)",
            rows as f64 / secs / 1e6,
            (connections * pages) as f64 / secs
        );
    }
    sim.shutdown().await;
}
