//! The dataset as the oracle: selection rules, synthetic determinism, listings, outages, the
//! forming candle, calendar intervals, and replay of the real archive rows in `testdata/`.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use binance_spec::{Interval, Kline, Market, time::parse_timestamp};

use super::*;
use crate::clock::{Clock, SimClock};

const HOUR: i64 = 3_600_000;

fn t(s: &str) -> i64 {
    parse_timestamp(s).unwrap()
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/realdata/data")
}

fn dataset(config: SimConfig, now: &str) -> Dataset {
    Dataset::new(&config, SimClock::new(Clock::Fixed(t(now)))).unwrap()
}

fn opens(rows: &[Kline]) -> Vec<i64> {
    rows.iter().map(|k| k.open_time).collect()
}

fn json(rows: &[Kline]) -> String {
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

/// Open times `first, first + step, …` (`n` of them).
fn grid(first: &str, step: i64, n: usize) -> Vec<i64> {
    (0..n as i64).map(|i| t(first) + i * step).collect()
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("binance-sim-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Creates `relative` (and its folders) with `bytes`.
    fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn selection_follows_binance_rules() {
    // Now is 10:30, so the 10:00 candle is forming.
    let d = dataset(SimConfig::default(), "2024-01-10T10:30:00Z");
    // (case, startTime, endTime, limit, open times served)
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        u32,
        Vec<i64>,
    );
    let cases: &[Case] = &[
        (
            "start only",
            Some("2024-01-01T00:00:00Z"),
            None,
            5,
            grid("2024-01-01T00:00:00Z", HOUR, 5),
        ),
        (
            "start off the grid",
            Some("2024-01-01T00:00:00.001Z"),
            None,
            2,
            grid("2024-01-01T01:00:00Z", HOUR, 2),
        ),
        (
            "start only stops at now",
            Some("2024-01-10T08:00:00Z"),
            None,
            500,
            grid("2024-01-10T08:00:00Z", HOUR, 3),
        ),
        (
            "end only, inclusive",
            None,
            Some("2024-01-01T00:00:00Z"),
            3,
            grid("2023-12-31T22:00:00Z", HOUR, 3),
        ),
        (
            "end off the grid",
            None,
            Some("2024-01-01T00:59:59.999Z"),
            1,
            grid("2024-01-01T00:00:00Z", HOUR, 1),
        ),
        (
            "both, inclusive",
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-01T03:00:00Z"),
            500,
            grid("2024-01-01T00:00:00Z", HOUR, 4),
        ),
        (
            "both, limit first",
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-01T03:00:00Z"),
            2,
            grid("2024-01-01T00:00:00Z", HOUR, 2),
        ),
        (
            "start = end",
            Some("2024-01-01T05:00:00Z"),
            Some("2024-01-01T05:00:00Z"),
            10,
            grid("2024-01-01T05:00:00Z", HOUR, 1),
        ),
        (
            "between opens",
            Some("2024-01-01T05:00:00.001Z"),
            Some("2024-01-01T05:59:59.999Z"),
            10,
            vec![],
        ),
        (
            "neither: most recent, forming included",
            None,
            None,
            3,
            grid("2024-01-10T08:00:00Z", HOUR, 3),
        ),
        (
            "end past now",
            None,
            Some("2030-01-01"),
            2,
            grid("2024-01-10T09:00:00Z", HOUR, 2),
        ),
        (
            "start before listing",
            Some("1970-01-01"),
            None,
            2,
            grid("2020-01-01", HOUR, 2),
        ),
        ("end before listing", None, Some("2019-06-01"), 10, vec![]),
        ("start after now", Some("2024-01-10T11:00:00Z"), None, 10, vec![]),
    ];
    for (name, start, end, limit, want) in cases {
        let got = d.page(
            Market::Spot,
            "BTCUSDT",
            Interval::H1,
            start.map(t),
            end.map(t),
            *limit,
        );
        assert_eq!(&opens(&got), want, "{name}");
    }
    assert!(
        d.page(Market::Spot, "NOPE", Interval::H1, None, None, 10)
            .is_empty()
    );
    assert!(
        d.page(Market::UsdM, "BTCUSDT", Interval::S1, None, None, 10)
            .is_empty()
    );
    assert_eq!(
        d.page(Market::Spot, "BTCUSDT", Interval::S1, None, None, 1000)
            .len(),
        1000
    );
}

#[test]
fn any_paging_gives_the_same_rows() {
    let d = dataset(SimConfig::default(), "2024-01-10T10:30:00Z");
    for (market, interval) in [
        (Market::Spot, Interval::M15),
        (Market::UsdM, Interval::H1),
        (Market::UsdM, Interval::D1),
    ] {
        let (start, end) = (t("2023-06-01"), t("2024-01-10T10:30:00Z"));
        let all = d.klines(market, "ETHUSDT", interval, start, end);
        assert!(all.len() > 100);
        for limit in [1u32, 7, 499, 1000] {
            // Forward: startTime = last open + 1.
            let mut forward = Vec::new();
            let mut from = start;
            loop {
                let page = d.page(market, "ETHUSDT", interval, Some(from), Some(end), limit);
                let Some(last) = page.last() else { break };
                from = last.open_time + 1;
                forward.extend(page);
            }
            assert_eq!(forward, all, "{market} {interval} forward by {limit}");
            if limit < 400 {
                continue;
            }
            // Backward: endTime = first open − 1.
            let mut backward: Vec<Kline> = Vec::new();
            let mut to = end;
            loop {
                let mut page = d.page(market, "ETHUSDT", interval, None, Some(to), limit);
                page.retain(|k| k.open_time >= start);
                let Some(first) = page.first() else { break };
                to = first.open_time - 1;
                page.extend(backward);
                backward = page;
            }
            assert_eq!(backward, all, "{market} {interval} backward by {limit}");
        }
        // The same rows from a fresh dataset (nothing is stored).
        let again = dataset(SimConfig::default(), "2024-01-10T10:30:00Z");
        assert_eq!(again.klines(market, "ETHUSDT", interval, start, end), all);
    }
    let other_seed = dataset(
        SimConfig {
            seed: 1,
            ..SimConfig::default()
        },
        "2024-01-10T10:30:00Z",
    );
    assert_ne!(
        other_seed.klines(
            Market::Spot,
            "ETHUSDT",
            Interval::H1,
            t("2024-01-01"),
            t("2024-01-02")
        ),
        dataset(SimConfig::default(), "2024-01-10T10:30:00Z").klines(
            Market::Spot,
            "ETHUSDT",
            Interval::H1,
            t("2024-01-01"),
            t("2024-01-02")
        ),
    );
}

#[test]
fn fast_json_is_byte_for_byte_kline_write_json() {
    let d = dataset(SimConfig::default(), "2024-01-10T10:30:00Z");
    let mut rows_checked = 0;
    for market in Market::ALL {
        for symbol in ["BTCUSDT", "ETHUSDT", "ADAUSDT", "XRPUSDT", "LINKUSDT"] {
            for interval in Interval::ALL.into_iter().filter(|&i| market.supports(i)) {
                let selection = Selection {
                    start: None,
                    end: None,
                    limit: 1000,
                };
                let rows = d.rows(market, symbol, interval, selection, d.now_ms()).unwrap();
                let mut fast = Vec::new();
                rows.write_json_array(&mut fast);
                let klines = rows.to_klines();
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    json(&klines),
                    "{market} {symbol} {interval}"
                );
                rows_checked += klines.len();
            }
        }
    }
    assert!(rows_checked > 100_000, "{rows_checked}");
}

#[test]
fn the_candle_containing_now_is_forming() {
    let d = dataset(SimConfig::default(), "2024-01-10T10:30:00Z");
    let page = d.page(Market::UsdM, "BTCUSDT", Interval::H1, None, None, 2);
    let (closed, forming) = (&page[0], &page[1]);
    assert_eq!(forming.open_time, t("2024-01-10T10:00:00Z"));
    assert_eq!(
        forming.close_time,
        t("2024-01-10T10:59:59.999Z"),
        "its normal close time, in the future"
    );
    assert!(!forming.is_closed_at(d.now_ms()) && closed.is_closed_at(d.now_ms()));

    d.clock().set_now(t("2024-01-10T11:00:00Z"));
    let later = d.page(Market::UsdM, "BTCUSDT", Interval::H1, None, None, 3);
    assert_eq!(later[0], *closed, "closed candles never change");
    assert_eq!(later[1].open_time, forming.open_time);
    assert_ne!(later[1], *forming, "the forming candle was not final");
    assert!(later[1].volume > forming.volume);
    assert_eq!(later[2].open_time, t("2024-01-10T11:00:00Z"));
}

#[test]
fn calendar_months_and_monday_weeks() {
    let d = dataset(SimConfig::default(), "2024-03-15T00:00:00Z");
    let months = d.klines(
        Market::Spot,
        "BTCUSDT",
        Interval::Mo1,
        t("2023-11-01"),
        t("2024-12-01"),
    );
    let want: Vec<i64> = [
        "2023-11-01",
        "2023-12-01",
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]
    .map(t)
    .to_vec();
    assert_eq!(opens(&months), want);
    assert_eq!(
        months[3].close_time,
        t("2024-03-01") - 1,
        "February 2024 has 29 days"
    );
    assert_eq!(
        months[4].close_time,
        t("2024-04-01") - 1,
        "the forming month closes on its last ms"
    );

    let weeks = d.klines(Market::UsdM, "BTCUSDT", Interval::W1, 0, t("2024-03-15"));
    assert_eq!(
        weeks[0].open_time,
        t("2019-12-30"),
        "the week containing the listing (2020-01-01)"
    );
    for k in &weeks {
        let weekday = (k.open_time.div_euclid(86_400_000) + 4).rem_euclid(7); // 0 = Sunday
        assert_eq!(weekday, 1, "{} is not a Monday", k.open_time);
        assert_eq!(k.close_time, k.open_time + 7 * 86_400_000 - 1);
    }
    assert_eq!(weeks.last().unwrap().open_time, t("2024-03-11"));
}

#[test]
fn listings_and_outages_remove_candles() {
    let config = SimConfig {
        listed: [("SOLUSDT".to_string(), t("2020-08-11T06:00:00Z"))].into(),
        outages: vec![
            Outage {
                symbol: None,
                start_ms: t("2021-02-11T04:00:00Z"),
                end_ms: t("2021-02-11T05:00:00Z"),
            },
            Outage {
                symbol: Some("ETHUSDT".into()),
                start_ms: t("2022-01-01"),
                end_ms: t("2022-01-03"),
            },
        ],
        ..SimConfig::default()
    };
    let d = dataset(config, "2024-01-01");
    let sol = |interval, limit| d.page(Market::Spot, "SOLUSDT", interval, Some(0), None, limit);
    assert_eq!(
        opens(&sol(Interval::H1, 2)),
        grid("2020-08-11T06:00:00Z", HOUR, 2)
    );
    assert_eq!(
        opens(&sol(Interval::D1, 1)),
        vec![t("2020-08-11")],
        "the candle containing the listing"
    );
    assert_eq!(opens(&sol(Interval::Mo1, 1)), vec![t("2020-08-01")]);
    assert_eq!(
        d.symbol("SOLUSDT").unwrap().listed_ms(Market::UsdM),
        t("2020-08-11T06:00:00Z")
    );

    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let hours = d.klines(
            Market::UsdM,
            symbol,
            Interval::H1,
            t("2021-02-11T03:00:00Z"),
            t("2021-02-11T05:00:00Z"),
        );
        assert_eq!(
            opens(&hours),
            [t("2021-02-11T03:00:00Z"), t("2021-02-11T05:00:00Z")],
            "{symbol}"
        );
        let minutes = d.klines(
            Market::Spot,
            symbol,
            Interval::M1,
            t("2021-02-11T03:59:00Z"),
            t("2021-02-11T05:00:00Z"),
        );
        assert_eq!(
            opens(&minutes),
            [t("2021-02-11T03:59:00Z"), t("2021-02-11T05:00:00Z")],
            "{symbol}"
        );
        let day = d.klines(
            Market::Spot,
            symbol,
            Interval::D1,
            t("2021-02-11"),
            t("2021-02-11"),
        );
        assert_eq!(day.len(), 1, "the day opened before the outage");
    }
    let backward = d.page(
        Market::Spot,
        "BTCUSDT",
        Interval::H1,
        None,
        Some(t("2021-02-11T05:00:00Z")),
        2,
    );
    assert_eq!(
        opens(&backward),
        [t("2021-02-11T03:00:00Z"), t("2021-02-11T05:00:00Z")]
    );
    let eth = d.klines(
        Market::Spot,
        "ETHUSDT",
        Interval::D1,
        t("2021-12-31"),
        t("2022-01-04"),
    );
    assert_eq!(opens(&eth), ["2021-12-31", "2022-01-03", "2022-01-04"].map(t));
    let btc = d.klines(
        Market::Spot,
        "BTCUSDT",
        Interval::D1,
        t("2021-12-31"),
        t("2022-01-04"),
    );
    assert_eq!(btc.len(), 5, "a symbol's outage leaves the others alone");
}

#[test]
fn bad_configs_are_refused() {
    let cases = [
        (
            SimConfig {
                symbols: vec!["btcusdt".into()],
                ..SimConfig::default()
            },
            "invalid symbol 'btcusdt'",
        ),
        (
            SimConfig {
                listed: [("DOGEUSDT".to_string(), 0)].into(),
                ..SimConfig::default()
            },
            "--listed names DOGEUSDT",
        ),
        (
            SimConfig {
                data_dir: Some("/nonexistent/binance-sim".into()),
                ..SimConfig::default()
            },
            "cannot read /nonexistent/binance-sim",
        ),
    ];
    for (config, want) in cases {
        let err = Dataset::new(&config, SimClock::new(Clock::System))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
}

fn replay(now: &str) -> Dataset {
    dataset(
        SimConfig {
            data_dir: Some(testdata()),
            ..SimConfig::default()
        },
        now,
    )
}

#[test]
fn replays_the_real_spot_archive_verbatim() {
    let d = replay("2024-01-01");
    let rows = d.klines(Market::Spot, "BTCUSDT", Interval::H1, 0, i64::MAX);
    assert_eq!(rows.len(), 2158);
    assert_eq!(
        json(&rows[..1]),
        r#"[[1609459200000,"28923.63000000","29031.34000000","28690.17000000","28995.13000000","2311.81144500",1609462799999,"66768830.34010008",58389,"1215.35923800","35103542.78288276","0"]]"#
    );
    assert_eq!(
        json(&rows[rows.len() - 1..]),
        r#"[[1617231600000,"58621.94000000","58895.20000000","58540.00000000","58740.55000000","1367.47862200",1617235199999,"80296823.58431382",48072,"652.21640800","38297152.29579528","0"]]"#
    );
    // The two outage gaps: 2021-02-11 04:00 and 2021-03-06 02:00 are absent.
    let gaps: Vec<(i64, i64)> = rows
        .windows(2)
        .filter(|w| w[1].open_time - w[0].open_time != HOUR)
        .map(|w| (w[0].open_time, w[1].open_time))
        .collect();
    assert_eq!(
        gaps,
        [
            (1_613_012_400_000, 1_613_019_600_000),
            (1_614_992_400_000, 1_614_999_600_000)
        ]
    );
    // The zero-volume candle cut short at the halt.
    let halted = rows.iter().find(|k| k.open_time == 1_613_012_400_000).unwrap();
    assert_eq!(halted.close_time, 1_613_014_854_773);
    assert!(halted.volume.is_zero() && halted.trades == 0 && halted.open == halted.close);
    assert_eq!(
        json(std::slice::from_ref(halted)),
        r#"[[1613012400000,"44582.07000000","44582.07000000","44582.07000000","44582.07000000","0.00000000",1613014854773,"0.00000000",0,"0.00000000","0.00000000","0"]]"#
    );
    // The server's slices are the same bytes.
    let selection = Selection {
        start: None,
        end: None,
        limit: 1000,
    };
    let served = d
        .rows(Market::Spot, "BTCUSDT", Interval::H1, selection, d.now_ms())
        .unwrap();
    let mut body = Vec::new();
    served.write_json_array(&mut body);
    assert_eq!(String::from_utf8(body).unwrap(), json(&rows[rows.len() - 1000..]));
}

#[test]
fn replay_replaces_synthetic_for_its_market_and_symbol_only() {
    let d = replay("2024-01-01");
    let info = d.symbol("BTCUSDT").unwrap();
    assert!(info.is_replayed(Market::Spot) && info.is_replayed(Market::UsdM));
    assert_eq!(
        info.listed_ms(Market::Spot),
        1_609_459_200_000,
        "listed at its first replayed row"
    );
    assert!(
        d.klines(Market::Spot, "BTCUSDT", Interval::M1, 0, i64::MAX)
            .is_empty(),
        "no 1m file: no rows"
    );
    assert!(
        !d.klines(
            Market::Spot,
            "ETHUSDT",
            Interval::M1,
            t("2023-01-01"),
            t("2023-01-02")
        )
        .is_empty()
    );

    let futures = d.klines(Market::UsdM, "BTCUSDT", Interval::M1, 0, i64::MAX);
    assert_eq!(futures.len(), 1440, "the header line is not a row");
    assert_eq!(
        json(&futures[..1]),
        r#"[[1681516800000,"30453.00","30455.00","30446.40","30452.40","174.120",1681516859999,"5301913.57520",1884,"83.714","2549037.25020","0"]]"#
    );

    // A replayed symbol joins the universe even if --symbols does not name it.
    let only_eth = SimConfig {
        symbols: vec!["ETHUSDT".into()],
        data_dir: Some(testdata()),
        ..SimConfig::default()
    };
    let d = dataset(only_eth, "2024-01-01");
    let names: Vec<&str> = d.symbols().iter().map(|s| s.symbol.as_str()).collect();
    assert_eq!(names, ["ETHUSDT", "BTCUSDT"]);
}

#[test]
fn replayed_rows_respect_the_sim_clock() {
    let d = replay("2021-01-01T05:30:00Z");
    let rows = d.page(Market::Spot, "BTCUSDT", Interval::H1, None, None, 500);
    assert_eq!(opens(&rows), grid("2021-01-01T00:00:00Z", HOUR, 6));
    let rows = d.page(
        Market::Spot,
        "BTCUSDT",
        Interval::H1,
        Some(t("2021-01-01T04:00:00Z")),
        None,
        500,
    );
    assert_eq!(rows.len(), 2);
    assert!(
        d.page(
            Market::Spot,
            "BTCUSDT",
            Interval::H1,
            None,
            Some(t("2020-12-31")),
            500
        )
        .is_empty()
    );
}

#[test]
fn replays_zipped_files() {
    let dir = TempDir::new("zip");
    let csv =
        std::fs::read(testdata().join("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-01.csv")).unwrap();
    let zip_path = dir
        .0
        .join("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-01.zip");
    std::fs::create_dir_all(zip_path.parent().unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("BTCUSDT-1h-2021-01.csv", options).unwrap();
    zip.write_all(&csv).unwrap();
    zip.finish().unwrap();
    dir.write(
        "spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-01.zip.CHECKSUM",
        b"0000000000000000000000000000000000000000000000000000000000000000  BTCUSDT-1h-2021-01.zip\n",
    );

    let zipped = dataset(
        SimConfig {
            data_dir: Some(dir.0.clone()),
            ..SimConfig::default()
        },
        "2024-01-01",
    );
    let rows = zipped.klines(Market::Spot, "BTCUSDT", Interval::H1, 0, i64::MAX);
    assert_eq!(rows.len(), 744);
    let plain = replay("2024-01-01").klines(Market::Spot, "BTCUSDT", Interval::H1, 0, t("2021-02-01") - 1);
    assert_eq!(rows, plain);
    assert!(!zipped.symbol("BTCUSDT").unwrap().is_replayed(Market::UsdM));
}

#[test]
fn microsecond_files_become_milliseconds() {
    let dir = TempDir::new("micros");
    dir.write(
        "spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01-01.csv",
        b"1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,1735689659999999,768978.48452240,1673,4.03737000,377799.63281080,0\n\
1735689660000000,93610.93000000,93652.00000000,93606.34000000,93651.99000000,5.56421000,1735689719999999,521138.93498130,1399,3.35683000,314389.61367810,0\n",
    );
    dir.write(
        "spot/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2025-01.csv",
        b"1735689600000000,1,1,1,1,1,1738367999999999,1,1,1,1,0\n",
    );
    let d = dataset(
        SimConfig {
            data_dir: Some(dir.0.clone()),
            ..SimConfig::default()
        },
        "2026-01-01",
    );
    let rows = d.klines(Market::Spot, "BTCUSDT", Interval::M1, 0, i64::MAX);
    assert_eq!(
        rows.iter()
            .map(|k| (k.open_time, k.close_time))
            .collect::<Vec<_>>(),
        [
            (1_735_689_600_000, 1_735_689_659_999),
            (1_735_689_660_000, 1_735_689_719_999)
        ]
    );
    assert_eq!(rows[0].quote_volume.to_string(), "768978.48452240");
    let month = d.klines(Market::Spot, "BTCUSDT", Interval::Mo1, 0, i64::MAX);
    assert_eq!(
        month[0].close_time,
        t("2025-02-01") - 1,
        "the 1mo folder is the 1M interval"
    );
}
