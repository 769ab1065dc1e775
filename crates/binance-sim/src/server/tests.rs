//! The HTTP surface, driven in-process through the router: every error body, the weight
//! header, selection through the wire, exchangeInfo, 429→418 escalation on tokio's paused
//! clock, each fault, and `/sim/stats`.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use binance_spec::{Interval, Kline, Market, time::parse_timestamp};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ClientAddr, Sim, conn::AbortConnection};
use crate::{
    clock::Clock,
    config::{FaultConfig, SimConfig, WeightLimit},
    faults::FaultKind,
    stats::KlinesLogEntry,
    stats::Stats,
};

const NOW: &str = "2024-01-10T10:30:00Z";

fn t(s: &str) -> i64 {
    parse_timestamp(s).unwrap()
}

fn config() -> SimConfig {
    SimConfig {
        clock: Clock::Fixed(t(NOW)),
        ..SimConfig::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    aborted: bool,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn weight(&self) -> u32 {
        self.headers["x-mbx-used-weight-1m"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn retry_after(&self) -> Option<u64> {
        self.headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

async fn send(router: &Router, method: Method, uri: &str, from: Option<IpAddr>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    if let Some(ip) = from {
        request
            .extensions_mut()
            .insert(ClientAddr(SocketAddr::new(ip, 40_000)));
    }
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Reply {
        status: parts.status,
        aborted: parts.extensions.get::<AbortConnection>().is_some(),
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Method::GET, uri, None).await
}

fn rows_json(rows: &[Kline]) -> String {
    let mut out = String::from("[");
    for (i, k) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        k.write_json(&mut out);
    }
    out.push(']');
    out
}

#[tokio::test]
async fn errors_are_binance_bodies() {
    let sim = Sim::new(config()).unwrap();
    let router = sim.router();
    let illegal =
        |p: &str| format!("Illegal characters found in parameter '{p}'; legal range is '^[0-9]{{1,20}}$'.");
    let mandatory =
        |p: &str| format!("Mandatory parameter '{p}' was not sent, was empty/null, or malformed.");
    let limit = "Data sent for parameter 'limit' is not valid.".to_string();
    let cases: Vec<(&str, i64, String)> = vec![
        ("/api/v3/klines?interval=1h", -1102, mandatory("symbol")),
        ("/api/v3/klines?symbol=&interval=1h", -1102, mandatory("symbol")),
        ("/api/v3/klines?symbol=BTCUSDT", -1102, mandatory("interval")),
        ("/fapi/v1/klines?symbol=BTCUSDT&interval=", -1102, mandatory("interval")),
        (
            "/api/v3/klines?symbol=btcusdt&interval=1h",
            -1100,
            "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.".into(),
        ),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=abc", -1100, illegal("startTime")),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1h&endTime=-1", -1100, illegal("endTime")),
        ("/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=1.5", -1100, illegal("limit")),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=99999999999999999999", -1100, illegal("startTime")),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=0", -1130, limit.clone()),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1001", -1130, limit.clone()),
        ("/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=1501", -1130, limit.clone()),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1H", -1120, "Invalid interval.".into()),
        ("/api/v3/klines?symbol=BTCUSDT&interval=7m", -1120, "Invalid interval.".into()),
        ("/fapi/v1/klines?symbol=BTCUSDT&interval=1s", -1120, "Invalid interval.".into()),
        ("/api/v3/klines?symbol=DOGEUSDT&interval=1h", -1121, "Invalid symbol.".into()),
        ("/api/v3/uiKlines?symbol=DOGEUSDT&interval=1h", -1121, "Invalid symbol.".into()),
        (
            "/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1704067200001&endTime=1704067200000",
            -1023,
            "Start time is greater than end time.".into(),
        ),
        (
            "/api/v3/klines?symbol=BTCUSDT&interval=1h&timeZone=8",
            -1130,
            "Data sent for parameter 'timeZone' is not valid: the simulator serves UTC only (send no timeZone, or 0).".into(),
        ),
    ];
    for (uri, code, msg) in cases {
        let reply = get(&router, uri).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.json(), json!({"code": code, "msg": msg}), "{uri}");
        assert_eq!(
            reply.headers["content-type"], "application/json;charset=UTF-8",
            "{uri}"
        );
        assert!(reply.weight() > 0, "{uri}: errors are charged too");
    }
    // Accepted edge values.
    for uri in [
        "/api/v3/klines?symbol=BTCUSDT&interval=1s",
        "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1000",
        "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=1500",
        "/api/v3/klines?symbol=BTCUSDT&interval=1h&timeZone=0",
        "/api/v3/klines?symbol=BTCUSDT&interval=1h&timeZone=%2B00:00",
        "/api/v3/klines?symbol=BTCUSDT&interval=1h&timeZone=00:00",
        "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&timeZone=8",
        "/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1704067200000&endTime=1704067200000",
    ] {
        assert_eq!(get(&router, uri).await.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn klines_over_http_are_the_dataset_rows() {
    let sim = Sim::new(config()).unwrap();
    let router = sim.router();
    let d = sim.dataset();
    struct Case {
        market: Market,
        symbol: &'static str,
        interval: Interval,
        start: Option<i64>,
        end: Option<i64>,
        limit: Option<u32>,
    }
    let case = |market, symbol, interval, start, end, limit| Case {
        market,
        symbol,
        interval,
        start,
        end,
        limit,
    };
    let cases = [
        case(Market::Spot, "BTCUSDT", Interval::H1, None, None, None),
        case(Market::Spot, "ETHUSDT", Interval::Mo1, None, None, Some(3)),
        case(
            Market::UsdM,
            "ADAUSDT",
            Interval::M15,
            Some(1_704_067_200_000),
            None,
            Some(1500),
        ),
        case(
            Market::UsdM,
            "SOLUSDT",
            Interval::W1,
            None,
            Some(1_704_067_200_000),
            Some(10),
        ),
        case(
            Market::Spot,
            "XRPUSDT",
            Interval::S1,
            Some(1_704_067_200_000),
            Some(1_704_067_260_000),
            None,
        ),
        case(Market::Spot, "LTCUSDT", Interval::D1, Some(0), Some(1), None),
    ];
    for c in cases {
        let mut uri = format!(
            "{}?symbol={}&interval={}",
            c.market.path(binance_spec::Endpoint::Klines),
            c.symbol,
            c.interval
        );
        for (name, value) in [
            ("startTime", c.start),
            ("endTime", c.end),
            ("limit", c.limit.map(i64::from)),
        ] {
            if let Some(value) = value {
                uri.push_str(&format!("&{name}={value}"));
            }
        }
        let want = d.page(
            c.market,
            c.symbol,
            c.interval,
            c.start,
            c.end,
            c.limit.unwrap_or(500),
        );
        let reply = get(&router, &uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body, rows_json(&want), "{uri}");
    }
    let ui = get(&router, "/api/v3/uiKlines?symbol=BTCUSDT&interval=5m&limit=10").await;
    let plain = get(&router, "/api/v3/klines?symbol=BTCUSDT&interval=5m&limit=10").await;
    assert_eq!((ui.status, &ui.body), (StatusCode::OK, &plain.body));
    assert_eq!(plain.json().as_array().unwrap().len(), 10);
    // Rows are Binance's 12-element arrays: ints for times and trades, strings for the rest.
    let row = &plain.json()[0];
    assert!(
        row[0].is_i64() && row[6].is_i64() && row[8].is_u64() && row[1].is_string() && row[11] == "0",
        "{row}"
    );
}

#[tokio::test]
async fn every_response_carries_the_used_weight() {
    let sim = Sim::new(config()).unwrap();
    let router = sim.router();
    // (request, status, weight used after it)
    let steps: [(Method, &str, StatusCode, u32); 13] = [
        (Method::GET, "/api/v3/ping", StatusCode::OK, 1),
        (Method::GET, "/api/v3/time", StatusCode::OK, 2),
        (Method::GET, "/api/v3/exchangeInfo", StatusCode::OK, 22),
        (
            Method::GET,
            "/api/v3/klines?symbol=BTCUSDT&interval=1h",
            StatusCode::OK,
            24,
        ),
        (
            Method::GET,
            "/api/v3/uiKlines?symbol=BTCUSDT&interval=1h&limit=1000",
            StatusCode::OK,
            26,
        ),
        (
            Method::GET,
            "/api/v3/klines?symbol=NOPE&interval=1h",
            StatusCode::BAD_REQUEST,
            28,
        ),
        (Method::GET, "/api/v3/nothing", StatusCode::NOT_FOUND, 29),
        (Method::POST, "/api/v3/klines", StatusCode::METHOD_NOT_ALLOWED, 29),
        (Method::GET, "/sim/stats", StatusCode::OK, 29),
        (Method::GET, "/fapi/v1/exchangeInfo", StatusCode::OK, 1),
        (
            Method::GET,
            "/fapi/v1/klines?symbol=BTCUSDT&interval=1h",
            StatusCode::OK,
            6,
        ),
        (
            Method::GET,
            "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=1500",
            StatusCode::OK,
            16,
        ),
        (
            Method::GET,
            "/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit=99",
            StatusCode::OK,
            17,
        ),
    ];
    for (method, uri, status, weight) in steps {
        let reply = send(&router, method.clone(), uri, None).await;
        assert_eq!((reply.status, reply.weight()), (status, weight), "{method} {uri}");
    }
    let other = send(
        &router,
        Method::GET,
        "/api/v3/ping",
        Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
    )
    .await;
    assert_eq!(other.weight(), 1, "weight is per client IP");
}

#[tokio::test]
async fn ping_time_and_exchange_info() {
    let config = SimConfig {
        listed: [("SOLUSDT".to_string(), t("2030-01-01"))].into(),
        ..config()
    };
    let sim = Sim::new(config).unwrap();
    let router = sim.router();
    assert_eq!(get(&router, "/fapi/v1/ping").await.body, "{}");
    assert_eq!(
        get(&router, "/api/v3/time").await.json(),
        json!({"serverTime": t(NOW)})
    );

    let spot = get(&router, "/api/v3/exchangeInfo").await.json();
    assert_eq!(spot["timezone"], "UTC");
    assert_eq!(spot["serverTime"], t(NOW));
    assert_eq!(spot["exchangeFilters"], json!([]));
    assert_eq!(
        spot["rateLimits"][0],
        json!({"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000})
    );
    let symbols = spot["symbols"].as_array().unwrap();
    assert_eq!(symbols.len(), 8);
    let btc = &symbols[0];
    assert_eq!(
        (
            &btc["symbol"],
            &btc["status"],
            &btc["baseAsset"],
            &btc["quoteAsset"]
        ),
        (
            &json!("BTCUSDT"),
            &json!("TRADING"),
            &json!("BTC"),
            &json!("USDT")
        )
    );
    let status = |info: &Value, symbol: &str| {
        info["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["symbol"] == symbol)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&spot, "SOLUSDT"), "BREAK", "not listed yet");

    let usdm = get(&router, "/fapi/v1/exchangeInfo").await.json();
    assert_eq!(usdm["rateLimits"][0]["limit"], 2400);
    assert_eq!(status(&usdm, "SOLUSDT"), "PENDING_TRADING");
    assert_eq!(status(&usdm, "BTCUSDT"), "TRADING");

    let one = get(&router, "/api/v3/exchangeInfo?symbol=ETHUSDT").await.json();
    assert_eq!(one["symbols"].as_array().unwrap().len(), 1);
    let none = get(&router, "/api/v3/exchangeInfo?symbol=NOPE").await;
    assert_eq!(
        (none.status, none.json()["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-1121))
    );
}

#[tokio::test]
async fn rate_limits_in_exchange_info_follow_the_config() {
    let cases = [
        (
            WeightLimit::PerWindow(50),
            2,
            json!({"interval":"SECOND","intervalNum":2,"limit":50}),
            json!({"interval":"SECOND","intervalNum":2,"limit":50}),
        ),
        (
            WeightLimit::Unlimited,
            60,
            json!({"interval":"MINUTE","intervalNum":1,"limit":1_000_000_000}),
            json!({"interval":"MINUTE","intervalNum":1,"limit":1_000_000_000}),
        ),
        (
            WeightLimit::BinanceDefault,
            120,
            json!({"interval":"MINUTE","intervalNum":2,"limit":6000}),
            json!({"interval":"MINUTE","intervalNum":2,"limit":2400}),
        ),
    ];
    for (limit, secs, spot, usdm) in cases {
        let sim = Sim::new(SimConfig {
            weight_limit: limit,
            weight_window: Duration::from_secs(secs),
            ..config()
        })
        .unwrap();
        for (path, want) in [("/api/v3/exchangeInfo", spot), ("/fapi/v1/exchangeInfo", usdm)] {
            let mut got = get(&sim.router(), path).await.json()["rateLimits"][0].clone();
            assert_eq!(got["rateLimitType"], "REQUEST_WEIGHT");
            got.as_object_mut().unwrap().remove("rateLimitType");
            assert_eq!(got, want, "{limit:?} {secs}s {path}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn too_much_weight_gets_429_then_a_418_ban() {
    let sim = Sim::new(SimConfig {
        weight_limit: WeightLimit::PerWindow(5),
        weight_window: Duration::from_secs(2),
        ban: Duration::from_secs(3),
        ..config()
    })
    .unwrap();
    let router = sim.router();
    let klines = "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1";
    // (advance ms before, status, Retry-After, used weight)
    let steps: [(u64, u16, Option<u64>, u32); 7] = [
        (0, 200, None, 2),
        (100, 200, None, 4),
        (400, 429, Some(2), 4),   // 1.5 s left in the window
        (100, 418, Some(3), 4),   // came back before Retry-After: banned 3 s
        (1_900, 418, Some(2), 0), // new window, still banned (1.1 s left)
        (1_100, 200, None, 2),    // ban over
        (0, 200, None, 4),
    ];
    let mut bodies = Vec::new();
    for (i, (advance, status, retry_after, used)) in steps.into_iter().enumerate() {
        tokio::time::advance(Duration::from_millis(advance)).await;
        let reply = get(&router, klines).await;
        assert_eq!(
            (reply.status.as_u16(), reply.retry_after(), reply.weight()),
            (status, retry_after, used),
            "step {i}: {}",
            reply.body
        );
        bodies.push(reply.json());
    }
    assert_eq!(
        bodies[2],
        json!({"code": -1003, "msg": "Too much request weight used; current limit is 5 request weight per 2 SECOND. Please use WebSocket Streams for live updates to avoid polling the API."})
    );
    let banned_until = t(NOW) + 3_000;
    assert_eq!(
        bodies[3],
        json!({"code": -1003, "msg": format!("Way too much request weight used; IP banned until {banned_until}. Please use WebSocket Streams for live updates to avoid bans.")})
    );
    let stats = sim.stats();
    assert_eq!((stats.rate_limited_429, stats.banned_418), (1, 2));
    assert_eq!(stats.max_weight_in_any_window.spot, 4);
    assert_eq!(stats.weight_used_current_window.spot, 4);
    let statuses: Vec<u16> = stats.klines_log.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [200, 200, 429, 418, 418, 200, 200]);
    // Another market of the same IP was never limited.
    assert_eq!(get(&router, "/fapi/v1/ping").await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn waiting_out_retry_after_avoids_the_ban() {
    let sim = Sim::new(SimConfig {
        weight_limit: WeightLimit::PerWindow(2),
        weight_window: Duration::from_secs(1),
        ..config()
    })
    .unwrap();
    let router = sim.router();
    assert_eq!(get(&router, "/api/v3/time").await.status, StatusCode::OK);
    assert_eq!(get(&router, "/api/v3/time").await.status, StatusCode::OK);
    let refused = get(&router, "/api/v3/ping").await;
    assert_eq!(
        (refused.status, refused.retry_after()),
        (StatusCode::TOO_MANY_REQUESTS, Some(1))
    );
    assert!(
        refused
            .body
            .contains("current limit is 2 request weight per 1 SECOND"),
        "{}",
        refused.body
    );
    tokio::time::advance(Duration::from_secs(refused.retry_after().unwrap())).await;
    assert_eq!(get(&router, "/api/v3/ping").await.status, StatusCode::OK);
    assert_eq!(sim.stats().banned_418, 0);
}

fn faulty(faults: FaultConfig) -> Sim {
    Sim::new(SimConfig { faults, ..config() }).unwrap()
}

const KLINES: &str = "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=20";

#[tokio::test]
async fn fail_fault_takes_turns_503_502_504() {
    let sim = faulty(FaultConfig {
        fail_rate: 1.0,
        ..FaultConfig::default()
    });
    let router = sim.router();
    let first = get(&router, KLINES).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        first.json(),
        json!({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})
    );
    assert_eq!(first.weight(), 2, "a failed request is still charged");
    let second = get(&router, KLINES).await;
    assert_eq!(second.status, StatusCode::BAD_GATEWAY);
    assert!(second.body.contains("502 Bad Gateway") && second.headers["content-type"] == "text/html");
    assert_eq!(get(&router, KLINES).await.status, StatusCode::GATEWAY_TIMEOUT);
    // Faults hit klines only, and only requests that would have succeeded.
    assert_eq!(get(&router, "/api/v3/ping").await.status, StatusCode::OK);
    assert_eq!(
        get(&router, "/api/v3/klines?symbol=NOPE&interval=1h")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let stats = sim.stats();
    assert_eq!(stats.faults.fail, 3);
    assert_eq!(stats.rows_served, 0);
    let log: Vec<(u16, Option<FaultKind>)> = stats.klines_log.iter().map(|e| (e.status, e.fault)).collect();
    assert_eq!(
        log,
        [
            (503, Some(FaultKind::Fail)),
            (502, Some(FaultKind::Fail)),
            (504, Some(FaultKind::Fail)),
            (400, None)
        ]
    );
}

#[tokio::test]
async fn truncate_fault_cuts_the_body_in_half() {
    let sim = faulty(FaultConfig {
        truncate_rate: 1.0,
        ..FaultConfig::default()
    });
    let whole = rows_json(
        &sim.dataset()
            .page(Market::Spot, "BTCUSDT", Interval::H1, None, None, 20),
    );
    let reply = get(&sim.router(), KLINES).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, whole[..whole.len() / 2]);
    assert!(serde_json::from_str::<Value>(&reply.body).is_err());
    let stats = sim.stats();
    assert_eq!((stats.faults.truncate, stats.rows_served), (1, 0));
    assert_eq!(stats.klines_log[0].rows, 20);
}

#[tokio::test]
async fn reset_fault_marks_the_connection_for_reset() {
    let sim = faulty(FaultConfig {
        reset_rate: 1.0,
        ..FaultConfig::default()
    });
    let reply = get(&sim.router(), KLINES).await;
    assert!(
        reply.aborted,
        "the accept loop resets the connection instead of answering"
    );
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let stats = sim.stats();
    assert_eq!(stats.faults.reset, 1);
    assert_eq!(
        (stats.klines_log[0].status, stats.klines_log[0].fault),
        (0, Some(FaultKind::Reset))
    );
}

#[tokio::test(start_paused = true)]
async fn slow_fault_answers_late() {
    let sim = faulty(FaultConfig {
        slow_rate: 1.0,
        slow: Duration::from_secs(30),
        ..FaultConfig::default()
    });
    let started = tokio::time::Instant::now();
    let reply = get(&sim.router(), KLINES).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert_eq!(reply.json().as_array().unwrap().len(), 20);
    let stats = sim.stats();
    assert_eq!((stats.faults.slow, stats.rows_served), (1, 20));
    assert_eq!(stats.klines_log[0].fault, Some(FaultKind::Slow));
}

#[tokio::test]
async fn faults_repeat_for_the_same_seed() {
    let rates = FaultConfig {
        fail_rate: 0.3,
        reset_rate: 0.2,
        truncate_rate: 0.2,
        ..FaultConfig::default()
    };
    let run = |seed| async move {
        let sim = Sim::new(SimConfig {
            seed,
            faults: rates,
            ..config()
        })
        .unwrap();
        let router = sim.router();
        let mut outcomes = Vec::new();
        for _ in 0..60 {
            let reply = get(&router, KLINES).await;
            outcomes.push((reply.status.as_u16(), reply.aborted, reply.body.len()));
        }
        outcomes
    };
    let (a, b, c) = (run(5).await, run(5).await, run(6).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let clean = a.iter().filter(|(s, aborted, _)| *s == 200 && !aborted).count();
    assert!((5..40).contains(&clean), "{clean} clean answers of 60");
}

#[tokio::test]
async fn sim_stats_reports_and_logs_klines() {
    let sim = Sim::new(config()).unwrap();
    let router = sim.router();
    get(&router, "/api/v3/ping").await;
    get(
        &router,
        "/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1704067200000&endTime=1704081600000",
    )
    .await;
    get(&router, "/fapi/v1/klines?symbol=ETHUSDT&interval=1d&limit=3").await;
    get(&router, "/fapi/v1/klines?symbol=ETHUSDT&interval=1x&limit=abc").await;
    let reply = get(&router, "/sim/stats").await;
    assert_eq!(reply.status, StatusCode::OK);
    let stats: Stats = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(stats, sim.stats(), "/sim/stats is not counted");
    assert_eq!(
        (stats.requests, stats.klines_requests, stats.rows_served),
        (4, 3, 8)
    );
    assert_eq!(
        (
            stats.weight_used_current_window.spot,
            stats.weight_used_current_window.usdm
        ),
        (3, 6)
    );
    assert_eq!(stats.max_weight_in_any_window.get(Market::UsdM), 6);
    // When each answer was decided depends on the machine; the rest is exact.
    let log: Vec<_> = stats
        .klines_log
        .iter()
        .cloned()
        .map(|e| KlinesLogEntry { at_ms: 0, ..e })
        .collect();
    let log = serde_json::to_value(&log).unwrap();
    assert_eq!(
        log,
        json!([
            {"market":"spot","symbol":"BTCUSDT","interval":"1h","startTime":1704067200000i64,"endTime":1704081600000i64,"limit":null,"rows":5,"status":200,"fault":null, "at_ms": 0},
            {"market":"usdm","symbol":"ETHUSDT","interval":"1d","startTime":null,"endTime":null,"limit":3,"rows":3,"status":200,"fault":null, "at_ms": 0},
            {"market":"usdm","symbol":"ETHUSDT","interval":"1x","startTime":null,"endTime":null,"limit":null,"rows":0,"status":400,"fault":null, "at_ms": 0},
        ])
    );
    let raw: Value = reply.json();
    for key in [
        "requests",
        "klines_requests",
        "rows_served",
        "weight_used_current_window",
        "max_weight_in_any_window",
        "rate_limited_429",
        "banned_418",
        "faults",
        "klines_log",
    ] {
        assert!(raw.get(key).is_some(), "{key}");
    }
    assert_eq!(raw["faults"], json!({"fail":0,"reset":0,"truncate":0,"slow":0}));
}
