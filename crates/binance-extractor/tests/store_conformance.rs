//! One behaviour on three databases: every test here runs against SQLite, PostgreSQL and
//! MariaDB/MySQL (each on a fresh database; see `common_store`), asserting on what the real
//! server gives back. The connect-error tests at the end talk to the servers directly.

mod common_store;

use binance_extractor::series::TimeRange;
use binance_extractor::store::{Backend, DatabaseUrl, GapOutcome, GapState, Store, StoreError};
use binance_spec::{
    Interval, Kline, Market,
    time::{DAY_MS, HOUR_MS, MINUTE_MS, add_months, days_from_civil},
};
use common_store::{
    as_stored, candle, dec, futures_btc_1m_20230415, key, mysql_url, postgres_url, query_text,
    spot_btc_1h_2021q1,
};

conformance!(
    upsert_counts_only_new_and_changed_rows,
    decimals_read_back_exactly,
    a_corrected_candle_replaces_the_stored_one,
    holes_are_the_real_outages,
    holes_follow_calendar_months_and_weeks,
    off_grid_rows_are_not_holes,
    holes_at_batch_and_statement_boundaries,
    newest_and_oldest_per_series,
    ledger_keeps_what_runs_learnt,
    concurrent_writers_for_different_symbols,
    concurrent_writers_of_the_same_rows_count_them_once,
    python_compat_views_show_the_rows,
);

/// Holes as the store must report them, found by walking `rows` (ascending) in the program.
fn walk_holes(rows: &[Kline], interval: Interval) -> Vec<TimeRange> {
    rows.windows(2)
        .filter(|w| w[1].open_time - w[0].open_time > interval.max_step_ms())
        .map(|w| TimeRange::new(w[0].open_time + 1, w[1].open_time))
        .collect()
}

/// The whole time axis.
const ALL_TIME: TimeRange = TimeRange::new(0, i64::MAX);

async fn upsert_counts_only_new_and_changed_rows(store: Store, _url: DatabaseUrl) {
    let k = key(Market::UsdM, "BTCUSDT", Interval::M1);
    let rows = futures_btc_1m_20230415();
    assert_eq!(rows.len(), 1440);

    assert_eq!(store.write_klines(&k, &rows).await.unwrap(), 1440, "insert N → N");
    assert_eq!(
        store.write_klines(&k, &rows).await.unwrap(),
        0,
        "the same again → 0"
    );

    let mut corrected = rows[650..750].to_vec();
    corrected[50].close += dec("0.10");
    corrected[50].trades += 1;
    assert_eq!(
        store.write_klines(&k, &corrected).await.unwrap(),
        1,
        "one corrected → 1"
    );
    assert_eq!(store.count(&k).await.unwrap(), 1440);

    // Identical, corrected and new rows in one batch: only the corrected and new count.
    let mut mixed = rows[1400..].to_vec();
    for c in &mut mixed[10..15] {
        c.volume += dec("1.5");
    }
    let last = rows[1439];
    mixed.extend((1..=20).map(|i| Kline {
        open_time: last.open_time + i * MINUTE_MS,
        close_time: last.close_time + i * MINUTE_MS,
        ..last
    }));
    assert_eq!(store.write_klines(&k, &mixed).await.unwrap(), 25);
    assert_eq!(store.count(&k).await.unwrap(), 1460);

    // The same open time twice in one batch: the later row is stored, counted once.
    let twice = vec![Kline { trades: 1, ..rows[0] }, Kline { trades: 2, ..rows[0] }];
    assert_eq!(store.write_klines(&k, &twice).await.unwrap(), 1);
    let back = store
        .klines(&k, TimeRange::new(rows[0].open_time, rows[0].open_time + 1))
        .await
        .unwrap();
    assert_eq!(back[0].trades, 2);
    assert_eq!(store.write_klines(&k, &[]).await.unwrap(), 0);
}

async fn decimals_read_back_exactly(store: Store, _url: DatabaseUrl) {
    let spot = key(Market::Spot, "BTCUSDT", Interval::H1);
    let futures = key(Market::UsdM, "BTCUSDT", Interval::M1);
    let meme = key(Market::Spot, "1000SATSUSDT", Interval::Mo1);
    let spot_rows = spot_btc_1h_2021q1();
    let futures_rows = futures_btc_1m_20230415();
    // Extremes Binance can send: a meme coin's monthly quote volume beyond 1e15, the
    // smallest tick, zeros with their scale.
    let month = days_from_civil(2024, 1, 1) * DAY_MS;
    let extreme = Kline {
        open_time: month,
        open: dec("0.00000001"),
        high: dec("0.00000099"),
        low: dec("0.00000000"),
        close: dec("0.00000042"),
        volume: dec("98765432109876543210.12345678"),
        close_time: add_months(month, 1) - 1,
        quote_volume: dec("1234567890123456.87654321"),
        trades: 9_876_543_210,
        taker_buy_base_volume: dec("0"),
        taker_buy_quote_volume: dec("0.00000000"),
        ignore: dec("0"),
    };
    for (k, rows) in [
        (&spot, spot_rows),
        (&futures, futures_rows),
        (&meme, vec![extreme]),
    ] {
        store.write_klines(k, &rows).await.unwrap();
        let back = store.klines(k, ALL_TIME).await.unwrap();
        assert_eq!(back, as_stored(&rows), "{k}: equal values");
        let text = |r: &[Kline]| -> Vec<String> {
            r.iter()
                .flat_map(|k| {
                    [
                        k.open,
                        k.high,
                        k.low,
                        k.close,
                        k.volume,
                        k.quote_volume,
                        k.taker_buy_base_volume,
                        k.taker_buy_quote_volume,
                    ]
                })
                .map(|d| match store.backend() {
                    // DECIMAL(38,12) keeps the value, not the printed scale.
                    Backend::MySql => d.normalize().to_string(),
                    Backend::Sqlite | Backend::Postgres => d.to_string(),
                })
                .collect()
        };
        assert_eq!(text(&back), text(&rows), "{k}: the same digits");
    }

    // What DECIMAL(38,12) cannot hold is refused whole on MySQL — never rounded — and kept
    // exactly elsewhere.
    let k = key(Market::Spot, "TINYUSDT", Interval::D1);
    let mut rows: Vec<Kline> = (0..3).map(|i| candle(i * DAY_MS, DAY_MS, i as u64)).collect();
    rows[2].close = dec("0.1234567890123");
    match store.backend() {
        Backend::MySql => {
            let err = store.write_klines(&k, &rows).await.unwrap_err();
            assert!(err.to_string().contains("DECIMAL(38,12)"), "{err}");
            assert_eq!(
                store.count(&k).await.unwrap(),
                0,
                "nothing of the batch is stored"
            );
        }
        Backend::Sqlite | Backend::Postgres => {
            store.write_klines(&k, &rows).await.unwrap();
            let back = store.klines(&k, ALL_TIME).await.unwrap();
            assert_eq!(back[2].close.to_string(), "0.1234567890123");
        }
    }
}

async fn a_corrected_candle_replaces_the_stored_one(store: Store, _url: DatabaseUrl) {
    let k = key(Market::Spot, "BTCUSDT", Interval::H1);
    let rows = spot_btc_1h_2021q1();
    store.write_klines(&k, &rows).await.unwrap();

    // Binance republishes a candle: new close, volume and trades, a close time cut short.
    let mut fixed = rows[100];
    fixed.close = dec("33000.01000000");
    fixed.volume = dec("0.00000000");
    fixed.trades = 0;
    fixed.close_time = fixed.open_time + 30 * MINUTE_MS - 1;
    assert_eq!(store.write_klines(&k, &[fixed]).await.unwrap(), 1);

    let back = store
        .klines(&k, TimeRange::new(fixed.open_time, fixed.open_time + HOUR_MS))
        .await
        .unwrap();
    assert_eq!(back, as_stored(&[fixed]));
    let mut expected = as_stored(&rows);
    expected[100] = back[0];
    assert_eq!(store.klines(&k, ALL_TIME).await.unwrap(), expected);
    assert_eq!(store.count(&k).await.unwrap(), rows.len() as u64);
}

async fn holes_are_the_real_outages(store: Store, _url: DatabaseUrl) {
    let k = key(Market::Spot, "BTCUSDT", Interval::H1);
    let rows = spot_btc_1h_2021q1();
    store.write_klines(&k, &rows).await.unwrap();

    let expected = walk_holes(&rows, Interval::H1);
    // Binance's two spot outages of the quarter (PROVENANCE.md).
    let first = days_from_civil(2021, 2, 11) * DAY_MS + 4 * HOUR_MS;
    let second = days_from_civil(2021, 3, 6) * DAY_MS + 2 * HOUR_MS;
    assert_eq!(expected.len(), 2, "{expected:?}");
    assert!(
        expected[0].contains(first) && expected[1].contains(second),
        "{expected:?}"
    );

    let everything = TimeRange::new(rows[0].open_time, rows[rows.len() - 1].open_time + 1);
    assert_eq!(store.holes(&k, everything).await.unwrap(), expected);
    assert_eq!(store.holes(&k, ALL_TIME).await.unwrap(), expected);
    // Only candles inside the range count: starting at the first outage's far side leaves
    // the second.
    let later = TimeRange::new(expected[0].end, everything.end);
    assert_eq!(store.holes(&k, later).await.unwrap(), expected[1..]);
    assert_eq!(
        store.holes(&k, TimeRange::new(first, first)).await.unwrap(),
        vec![],
        "an empty range"
    );
    let other = key(Market::UsdM, "BTCUSDT", Interval::H1);
    assert_eq!(
        store.holes(&other, ALL_TIME).await.unwrap(),
        vec![],
        "no candles, no holes"
    );
}

async fn holes_follow_calendar_months_and_weeks(store: Store, _url: DatabaseUrl) {
    // 2020: 28-, 29-, 30- and 31-day months are all one step; April and May are missing.
    let months = key(Market::Spot, "ETHUSDT", Interval::Mo1);
    let jan = days_from_civil(2020, 1, 1) * DAY_MS;
    let rows: Vec<Kline> = (0..12)
        .filter(|m| *m != 3 && *m != 4)
        .map(|m| {
            let open = add_months(jan, m);
            Kline {
                close_time: add_months(open, 1) - 1,
                ..candle(open, 0, m as u64)
            }
        })
        .collect();
    assert_eq!(store.write_klines(&months, &rows).await.unwrap(), 10);
    let march = add_months(jan, 2);
    let june = add_months(jan, 5);
    assert_eq!(
        store.holes(&months, ALL_TIME).await.unwrap(),
        vec![TimeRange::new(march + 1, june)]
    );

    // Weekly candles open on Mondays; one week missing.
    let weeks = key(Market::Spot, "ETHUSDT", Interval::W1);
    let monday = days_from_civil(2024, 1, 1) * DAY_MS;
    let week = 7 * DAY_MS;
    let rows: Vec<Kline> = (0..8)
        .filter(|w| *w != 5)
        .map(|w| candle(monday + w * week, week, w as u64))
        .collect();
    store.write_klines(&weeks, &rows).await.unwrap();
    assert_eq!(
        store.holes(&weeks, ALL_TIME).await.unwrap(),
        vec![TimeRange::new(monday + 4 * week + 1, monday + 6 * week)]
    );
    // '1M' and '1w' are other series than '1m'.
    let minutes = key(Market::Spot, "ETHUSDT", Interval::M1);
    assert_eq!(store.count(&minutes).await.unwrap(), 0);
}

async fn off_grid_rows_are_not_holes(store: Store, _url: DatabaseUrl) {
    // After a halt Binance serves candles off the interval grid, with closes cut short:
    // steps shorter than an interval are not holes; a step longer than one is.
    let k = key(Market::UsdM, "BTCUSDT", Interval::M1);
    let mut rows = futures_btc_1m_20230415()[..60].to_vec();
    let t0 = rows[10].open_time;
    let off_grid = Kline {
        open_time: t0 + 30_000,
        close_time: t0 + 59_999,
        ..rows[10]
    };
    rows.insert(11, off_grid);
    rows.remove(30); // the grid row after it is kept; one later row goes missing
    store.write_klines(&k, &rows).await.unwrap();
    let expected = walk_holes(&rows, Interval::M1);
    assert_eq!(expected.len(), 1, "{expected:?}");
    assert_eq!(store.holes(&k, ALL_TIME).await.unwrap(), expected);

    // A step of exactly one interval plus one millisecond is a hole.
    let s = key(Market::UsdM, "ETHUSDT", Interval::M1);
    let rows = [
        candle(0, MINUTE_MS, 1),
        candle(MINUTE_MS, MINUTE_MS, 2),
        candle(2 * MINUTE_MS + 1, MINUTE_MS, 3),
    ];
    store.write_klines(&s, &rows).await.unwrap();
    assert_eq!(
        store.holes(&s, ALL_TIME).await.unwrap(),
        vec![TimeRange::new(MINUTE_MS + 1, 2 * MINUTE_MS + 1)]
    );
}

async fn holes_at_batch_and_statement_boundaries(store: Store, _url: DatabaseUrl) {
    let k = key(Market::UsdM, "SOLUSDT", Interval::M1);
    let b = store.batch_rows();
    let start = days_from_civil(2023, 1, 1) * DAY_MS;
    let all: Vec<Kline> = (0..2 * b + 10)
        .map(|i| candle(start + i as i64 * MINUTE_MS, MINUTE_MS, i as u64))
        .collect();
    // Remove the candles that put a hole between rows 499|500, 1999|2000 and b-1|b of what
    // is written: statement boundaries of SQLite (500) and MySQL (2,000), and the batch
    // boundary.
    let removed = [500, 2001, b + 2];
    let rows: Vec<Kline> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(_, k)| *k)
        .collect();
    for boundary in [500, 2000, b] {
        assert!(rows[boundary].open_time - rows[boundary - 1].open_time > MINUTE_MS);
    }
    let mut written = 0;
    for batch in rows.chunks(b) {
        written += store.write_klines(&k, batch).await.unwrap();
    }
    assert_eq!(written, rows.len() as u64);
    let expected: Vec<TimeRange> = removed
        .iter()
        .map(|&i| TimeRange::new(all[i - 1].open_time + 1, all[i + 1].open_time))
        .collect();
    assert_eq!(walk_holes(&rows, Interval::M1), expected);
    assert_eq!(store.holes(&k, ALL_TIME).await.unwrap(), expected);
}

async fn newest_and_oldest_per_series(store: Store, _url: DatabaseUrl) {
    let minutes = key(Market::UsdM, "BTCUSDT", Interval::M1);
    let months = key(Market::UsdM, "BTCUSDT", Interval::Mo1);
    let spot = key(Market::Spot, "BTCUSDT", Interval::M1);
    assert_eq!(store.newest_open_time(&minutes).await.unwrap(), None);
    assert_eq!(store.oldest_open_time(&minutes).await.unwrap(), None);
    assert_eq!(store.count(&minutes).await.unwrap(), 0);

    let rows = futures_btc_1m_20230415();
    store.write_klines(&minutes, &rows[..1000]).await.unwrap();
    store.write_klines(&minutes, &rows[1000..]).await.unwrap();
    let month = days_from_civil(2023, 4, 1) * DAY_MS;
    store
        .write_klines(&months, &[candle(month, 30 * DAY_MS, 7)])
        .await
        .unwrap();

    assert_eq!(
        store.newest_open_time(&minutes).await.unwrap(),
        Some(rows[1439].open_time)
    );
    assert_eq!(
        store.oldest_open_time(&minutes).await.unwrap(),
        Some(rows[0].open_time)
    );
    assert_eq!(store.count(&minutes).await.unwrap(), 1440);
    // '1M' is not '1m' — also where the database compares text without regard to case.
    assert_eq!(store.newest_open_time(&months).await.unwrap(), Some(month));
    assert_eq!(store.count(&months).await.unwrap(), 1);
    assert_eq!(store.klines(&months, ALL_TIME).await.unwrap().len(), 1);
    assert_eq!(store.newest_open_time(&spot).await.unwrap(), None);
}

async fn ledger_keeps_what_runs_learnt(store: Store, _url: DatabaseUrl) {
    let k = key(Market::Spot, "BTCUSDT", Interval::H1);
    let outage = TimeRange::new(1_613_016_000_001, 1_613_023_200_000);
    let later = TimeRange::new(1_614_996_000_001, 1_615_003_200_000);
    assert_eq!(store.ledger(&k).await.unwrap(), vec![]);

    store
        .record_gap(&k, later, GapOutcome::Seen, 1_000)
        .await
        .unwrap();
    store
        .record_gap(&k, outage, GapOutcome::Seen, 2_000)
        .await
        .unwrap();
    let ledger = store.ledger(&k).await.unwrap();
    assert_eq!(
        ledger.iter().map(|e| e.range).collect::<Vec<_>>(),
        vec![outage, later],
        "ordered by range"
    );
    assert_eq!(
        (ledger[0].state, ledger[0].attempts, ledger[0].last_attempt),
        (GapState::Open, 0, None)
    );

    store
        .record_gap(&k, outage, GapOutcome::ExchangeEmpty, 3_000)
        .await
        .unwrap();
    store
        .record_gap(&k, outage, GapOutcome::Seen, 4_000)
        .await
        .unwrap();
    let e = &store.ledger(&k).await.unwrap()[0];
    assert_eq!(
        e.state,
        GapState::ExchangeEmpty,
        "seeing it again never downgrades exchange_empty"
    );
    assert_eq!(
        (e.first_seen, e.last_attempt, e.attempts, e.rows_filled),
        (2_000, Some(3_000), 1, 0)
    );

    store
        .record_gap(&k, later, GapOutcome::Filled { rows: 2 }, 5_000)
        .await
        .unwrap();
    store
        .record_gap(&k, later, GapOutcome::Filled { rows: 3 }, 6_000)
        .await
        .unwrap();
    let e = &store.ledger(&k).await.unwrap()[1];
    assert_eq!(e.state, GapState::Filled);
    assert_eq!(
        (e.first_seen, e.last_attempt, e.attempts, e.rows_filled),
        (1_000, Some(6_000), 2, 5)
    );

    // A fetch that finds nothing after all may mark an open hole exchange_empty; a later
    // fetch that finds rows fills it.
    store
        .record_gap(&k, outage, GapOutcome::Filled { rows: 1 }, 7_000)
        .await
        .unwrap();
    let e = &store.ledger(&k).await.unwrap()[0];
    assert_eq!((e.state, e.attempts, e.rows_filled), (GapState::Filled, 2, 1));
    let other = key(Market::Spot, "BTCUSDT", Interval::Mo1);
    assert_eq!(store.ledger(&other).await.unwrap(), vec![], "per series");
}

async fn concurrent_writers_for_different_symbols(store: Store, _url: DatabaseUrl) {
    let rows = futures_btc_1m_20230415();
    let symbols = [
        "BTCUSDT",
        "ETHUSDT",
        "BNBUSDT",
        "SOLUSDT",
        "XRPUSDT",
        "ADAUSDT",
        "DOGEUSDT",
        "1000PEPEUSDT",
    ];
    let tasks: Vec<_> = symbols
        .iter()
        .map(|s| {
            let (store, rows, k) = (store.clone(), rows.clone(), key(Market::UsdM, s, Interval::M1));
            tokio::spawn(async move {
                let mut written = 0;
                for batch in rows.chunks(240) {
                    written += store.write_klines(&k, batch).await.unwrap();
                }
                written
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 1440);
    }
    for s in symbols {
        let k = key(Market::UsdM, s, Interval::M1);
        assert_eq!(store.klines(&k, ALL_TIME).await.unwrap(), as_stored(&rows), "{s}");
        assert_eq!(store.holes(&k, ALL_TIME).await.unwrap(), vec![], "{s}");
    }
}

async fn concurrent_writers_of_the_same_rows_count_them_once(store: Store, _url: DatabaseUrl) {
    // Two runs fetching the same range at once (a sync and a fill-gaps): every candle is
    // stored once, and counted as written once in all.
    let k = key(Market::UsdM, "BTCUSDT", Interval::M1);
    let rows = futures_btc_1m_20230415();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, rows, k) = (store.clone(), rows.clone(), k.clone());
            tokio::spawn(async move { store.write_klines(&k, &rows).await })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        written += task.await.unwrap().unwrap();
    }
    assert_eq!(written, 1440);
    assert_eq!(store.klines(&k, ALL_TIME).await.unwrap(), as_stored(&rows));
}

async fn python_compat_views_show_the_rows(store: Store, url: DatabaseUrl) {
    let backend = store.backend();
    let text = |expr: &str| match backend {
        Backend::Sqlite => format!("CAST({expr} AS TEXT)"),
        Backend::Postgres => format!("CAST({expr} AS text)"),
        Backend::MySql => format!("CAST({expr} AS CHAR)"),
    };
    let q = |identifier: &str| match backend {
        Backend::MySql => format!("`{identifier}`"),
        Backend::Sqlite | Backend::Postgres => format!("\"{identifier}\""),
    };
    let minutes = futures_btc_1m_20230415();
    store
        .write_klines(&key(Market::UsdM, "BTCUSDT", Interval::M1), &minutes)
        .await
        .unwrap();
    let april = days_from_civil(2023, 4, 1) * DAY_MS;
    let months: Vec<Kline> = (0..3)
        .map(|m| candle(add_months(april, m), 30 * DAY_MS, m as u64))
        .collect();
    store
        .write_klines(&key(Market::UsdM, "BTCUSDT", Interval::Mo1), &months)
        .await
        .unwrap();
    // Spot rows: the Python jobs read USD-M futures, so its tables never held these.
    store
        .write_klines(&key(Market::Spot, "BTCUSDT", Interval::H1), &spot_btc_1h_2021q1())
        .await
        .unwrap();

    let columns = [
        "id".to_string(),
        q("symbol"),
        text(&q("timestamp")),
        text("open_time"),
        text("close_time"),
        q("interval"),
        text("open_price"),
        text("high_price"),
        text("low_price"),
        text("close_price"),
        text("volume"),
        text("quote_asset_volume"),
        text("number_of_trades"),
        text("taker_buy_base_asset_volume"),
        text("taker_buy_quote_asset_volume"),
    ]
    .join(", ");
    let first = query_text(
        &url,
        &format!("SELECT {columns} FROM klines_m1 ORDER BY open_time LIMIT 1"),
    )
    .await
    .unwrap();
    let row = &first[0];
    // PostgreSQL prints a whole second without its ".000".
    let shown: Vec<&str> = row[..6].iter().map(|s| s.trim_end_matches(".000")).collect();
    assert_eq!(
        shown,
        [
            "BTCUSDT_1681516800000",
            "BTCUSDT",
            "2023-04-15 00:00:00",
            "2023-04-15 00:00:00",
            "2023-04-15 00:00:59.999",
            "1m"
        ]
    );
    // 1681516800000,30453.00,30455.00,30446.40,30452.40,174.120,1681516859999,5301913.57520,1884,83.714,2549037.25020,0
    let decimals: Vec<_> = row[6..].iter().map(|s| dec(s)).collect();
    let want: Vec<_> = [
        "30453.00",
        "30455.00",
        "30446.40",
        "30452.40",
        "174.120",
        "5301913.57520",
        "1884",
        "83.714",
        "2549037.25020",
    ]
    .iter()
    .map(|s| dec(s))
    .collect();
    assert_eq!(decimals, want);

    let count = |view: &str| {
        let sql = format!("SELECT {} FROM {view}", text("COUNT(*)"));
        let url = url.clone();
        async move {
            query_text(&url, &sql).await.unwrap()[0][0]
                .parse::<u64>()
                .unwrap()
        }
    };
    assert_eq!(count("klines_m1").await, 1440);
    assert_eq!(count("klines_h1").await, 0, "spot rows are not shown");
    assert_eq!(count("klines_m15").await, 0);
    assert_eq!(
        count(&format!("klines_python WHERE {} = '1M'", q("interval"))).await,
        3
    );
    match backend {
        Backend::Postgres => assert_eq!(count("\"klines_M1\"").await, 3),
        Backend::MySql => assert_eq!(count("klines_M1").await, 3),
        // SQLite names ignore case: klines_M1 would be klines_m1, so there is none.
        Backend::Sqlite => assert_eq!(count("klines_M1").await, 1440),
    }

    // Read-only: writing through a view fails and leaves klines alone.
    for statement in [
        "DELETE FROM klines_m1".to_string(),
        format!("UPDATE klines_m1 SET {} = 'X'", q("symbol")),
        "INSERT INTO klines_m1 (id) VALUES ('X_1')".to_string(),
    ] {
        assert!(
            query_text(&url, &statement).await.is_err(),
            "{statement} must fail"
        );
    }
    assert_eq!(count("klines_m1").await, 1440);
}

// ---- Connect errors: one clear error naming host and database, never the password ----

/// A port on this machine where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `url` with `user:password` and database `db` (None: keep).
fn with_login(url: &DatabaseUrl, user: &str, password: &str, db: Option<&str>) -> DatabaseUrl {
    let mut u = url::Url::parse(url.expose_secret()).unwrap();
    u.set_username(user).unwrap();
    u.set_password(Some(password)).unwrap();
    if let Some(db) = db {
        u.set_path(&format!("/{db}"));
    }
    u.as_str().parse().unwrap()
}

async fn connect_error(url: &DatabaseUrl) -> StoreError {
    let started = std::time::Instant::now();
    let err = Store::connect(url).await.expect_err("must not connect");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(11),
        "bounded wait"
    );
    let message = err.to_string();
    assert!(!message.contains("s3cret-pw"), "the password leaked: {message}");
    assert!(
        message.contains(url.target()),
        "{message} should name {}",
        url.target()
    );
    err
}

async fn refused_login(server: DatabaseUrl) {
    let url = with_login(&server, "bx_nobody", "s3cret-pw", None);
    let err = connect_error(&url).await;
    assert!(matches!(err, StoreError::AccessDenied { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

async fn missing_database(server: DatabaseUrl) {
    let url = server.with_database(&format!("bx_missing_{:08x}", fastrand::u32(..)));
    let err = connect_error(&url).await;
    assert!(matches!(err, StoreError::MissingDatabase { .. }), "{err:?}");
    assert!(!err.is_retryable());
}

async fn closed_port_is_unreachable(server: DatabaseUrl) {
    let mut u = url::Url::parse(server.expose_secret()).unwrap();
    u.set_port(Some(closed_port())).unwrap();
    u.set_password(Some("s3cret-pw")).unwrap();
    let url: DatabaseUrl = u.as_str().parse().unwrap();
    let err = connect_error(&url).await;
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn postgres_refuses_an_unknown_login() {
    refused_login(postgres_url()).await;
}

#[tokio::test]
async fn mysql_refuses_a_wrong_password() {
    // root exists: only the password is wrong.
    let server = mysql_url();
    let user = url::Url::parse(server.expose_secret())
        .unwrap()
        .username()
        .to_string();
    let err = connect_error(&with_login(&server, &user, "s3cret-pw", None)).await;
    assert!(matches!(err, StoreError::AccessDenied { .. }), "{err:?}");
    refused_login(server).await;
}

#[tokio::test]
async fn postgres_names_a_missing_database() {
    missing_database(postgres_url()).await;
}

#[tokio::test]
async fn mysql_names_a_missing_database() {
    missing_database(mysql_url()).await;
}

#[tokio::test]
async fn postgres_on_a_closed_port_is_unreachable() {
    closed_port_is_unreachable(postgres_url()).await;
}

#[tokio::test]
async fn mysql_on_a_closed_port_is_unreachable() {
    closed_port_is_unreachable(mysql_url()).await;
}

#[tokio::test]
async fn sqlite_in_an_unwritable_place_says_where() {
    let url: DatabaseUrl = "sqlite:///proc/bx-no-such-dir/klines.db".parse().unwrap();
    let err = connect_error(&url).await;
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
}
