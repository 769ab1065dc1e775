//! The conformance suite's harness: a fresh database per test on each backend, and real
//! Binance rows to fill it with.
//!
//! Servers come from `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! and `TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`): each test creates
//! `bx_<random>` there through that URL and drops it afterwards, pass or fail. A server that
//! cannot be reached fails the test — nothing is skipped.

use std::{future::Future, path::Path, str::FromStr};

use binance_extractor::{
    series::{SeriesKey, Symbol},
    store::{Backend, DatabaseUrl, Store, scratch::ScratchDatabase},
};
use binance_spec::{Decimal, Interval, Kline, Market};

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> DatabaseUrl {
    env_url("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
}

/// The MySQL/MariaDB server the tests use.
pub fn mysql_url() -> DatabaseUrl {
    env_url("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
}

fn env_url(var: &str, default: &str) -> DatabaseUrl {
    let raw = std::env::var(var).unwrap_or_else(|_| default.to_string());
    raw.parse().unwrap_or_else(|e| panic!("{var}: {e}"))
}

/// Runs `test` against a connected store on a fresh database of `backend`, then drops the
/// database — also when the test panics, whose panic is then passed on.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store, DatabaseUrl) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let sqlite_dir = tempfile::tempdir().expect("temp dir");
    let server = match backend {
        Backend::Sqlite => format!("sqlite://{}", sqlite_dir.path().join("any.db").display())
            .parse()
            .expect("sqlite url"),
        Backend::Postgres => postgres_url(),
        Backend::MySql => mysql_url(),
    };
    let db = ScratchDatabase::create(&server)
        .await
        .unwrap_or_else(|e| panic!("the {} test server must be reachable: {e}", backend.as_str()));
    let url = db.url().clone();
    let store = match Store::connect(&url).await {
        Ok(store) => store,
        Err(e) => {
            let _ = db.drop_database().await;
            panic!("connects and migrates: {e}");
        }
    };
    let outcome = tokio::spawn(test(store.clone(), url)).await;
    store.close().await;
    db.drop_database().await.expect("drops the scratch database");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Defines, for each named `async fn(Store, DatabaseUrl)`, a module of three tests — `sqlite`,
/// `postgres` and `mysql` — that run it on that backend.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use binance_extractor::store::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common_store::run(Backend::Sqlite, super::$name).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common_store::run(Backend::Postgres, super::$name).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::common_store::run(Backend::MySql, super::$name).await
            }
        }
    )*};
}

/// The series `market symbol interval`.
pub fn key(market: Market, symbol: &str, interval: Interval) -> SeriesKey {
    SeriesKey {
        market,
        symbol: symbol.parse::<Symbol>().expect("valid symbol"),
        interval,
    }
}

/// An exact decimal.
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The real archive rows of one CSV under `testdata/realdata/data/` (header skipped).
pub fn real_rows(relative: &str) -> Vec<Kline> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/realdata/data")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(parse_csv_row)
        .collect()
}

/// Spot BTCUSDT 1h, 2021-01-01 .. 2021-03-31: two outages and a zero-volume row.
pub fn spot_btc_1h_2021q1() -> Vec<Kline> {
    ["01", "02", "03"]
        .iter()
        .flat_map(|m| real_rows(&format!("spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2021-{m}.csv")))
        .collect()
}

/// USD-M futures BTCUSDT 1m, 2023-04-15: a complete day, prices with two decimals.
pub fn futures_btc_1m_20230415() -> Vec<Kline> {
    real_rows("futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-04-15.csv")
}

/// One line of Binance's kline archive, in the API's field order.
fn parse_csv_row(line: &str) -> Kline {
    let f: Vec<&str> = line.split(',').collect();
    assert_eq!(f.len(), 12, "{line}");
    let int = |i: usize| i64::from_str(f[i]).unwrap_or_else(|e| panic!("{line}: {e}"));
    Kline {
        open_time: int(0),
        open: dec(f[1]),
        high: dec(f[2]),
        low: dec(f[3]),
        close: dec(f[4]),
        volume: dec(f[5]),
        close_time: int(6),
        quote_volume: dec(f[7]),
        trades: u64::try_from(int(8)).expect("trades"),
        taker_buy_base_volume: dec(f[9]),
        taker_buy_quote_volume: dec(f[10]),
        ignore: dec(f[11]),
    }
}

/// The same candle as stored (the `ignore` field is not kept).
pub fn as_stored(rows: &[Kline]) -> Vec<Kline> {
    rows.iter()
        .map(|k| Kline {
            ignore: Decimal::ZERO,
            ..*k
        })
        .collect()
}

/// A synthetic candle opening at `open_time`, lasting `len` ms, with values derived from
/// `seed` (for series the archive does not have).
pub fn candle(open_time: i64, len: i64, seed: u64) -> Kline {
    let price = Decimal::new(2_000_000 + (seed % 1000) as i64, 2);
    Kline {
        open_time,
        open: price,
        high: price + Decimal::new(150, 2),
        low: price - Decimal::new(75, 2),
        close: price + Decimal::new(25, 2),
        volume: Decimal::new(12_345_678 + seed as i64, 3),
        close_time: open_time + len - 1,
        quote_volume: Decimal::new(246_913_560_000 + seed as i64, 5),
        trades: 100 + seed,
        taker_buy_base_volume: Decimal::new(6_172_839, 3),
        taker_buy_quote_volume: Decimal::new(123_456_780_000, 5),
        ignore: Decimal::ZERO,
    }
}

/// Runs one statement of the test's own on `url` and returns the first row's columns as text,
/// for looking at what the store's schema shows (views) outside the store's API.
pub async fn query_text(url: &DatabaseUrl, sql: &str) -> Result<Vec<Vec<String>>, sqlx::Error> {
    use sqlx::{AssertSqlSafe, Connection, Row};
    let sql = AssertSqlSafe(sql.to_string());
    fn texts<R: Row>(rows: Vec<R>) -> Vec<Vec<String>>
    where
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        rows.iter()
            .map(|r| (0..r.len()).map(|i| r.get::<String, _>(i)).collect())
            .collect()
    }
    Ok(match url.backend() {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url.expose_secret()).await?;
            texts(sqlx::query(sql).fetch_all(&mut c).await?)
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url.expose_secret()).await?;
            texts(sqlx::query(sql).fetch_all(&mut c).await?)
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(url.expose_secret()).await?;
            texts(sqlx::query(sql).fetch_all(&mut c).await?)
        }
    })
}
