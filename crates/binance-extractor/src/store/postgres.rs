//! PostgreSQL through sqlx.
//!
//! Writes take PostgreSQL's bulk path: the batch is streamed with `COPY … FROM STDIN` into a
//! per-connection temporary staging table, then moved into `klines` by one
//! `INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE (row differs)`, all in one transaction.
//! Prices are unconstrained NUMERIC, so they read back with the scale Binance sent.

use std::{str::FromStr, sync::LazyLock};

use binance_spec::Kline;
use sqlx::{
    Connection, Postgres,
    postgres::{PgConnectOptions, PgConnection, PgPool},
};

use super::{
    DatabaseUrl, StoreError, server,
    sql::{self, Dialect, SharedQueries, Statements},
};
use crate::series::SeriesKey;

static SQL: LazyLock<Statements> = LazyLock::new(|| Statements::new(Dialect::Postgres));

/// The staging table each connection creates for itself; emptied by every commit.
const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS klines_staging ( \
     open_time bigint, close_time bigint, open numeric, high numeric, low numeric, close numeric, \
     volume numeric, quote_volume numeric, trades bigint, taker_buy_base_volume numeric, \
     taker_buy_quote_volume numeric) ON COMMIT DELETE ROWS";

/// Streams a batch into the staging table (text format: tab-separated, one row a line).
const COPY_STAGING: &str = "COPY klines_staging FROM STDIN";

/// Moves the staged batch into `klines`; `rows_affected` counts new and corrected candles.
static UPSERT_STAGED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO klines ({}) SELECT $1, $2, $3, s.* FROM klines_staging AS s{}",
        sql::kline_columns(Dialect::Postgres),
        sql::kline_conflict_clause(Dialect::Postgres)
    )
});

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    shared: SharedQueries<Postgres>,
}

impl PostgresStore {
    /// Connects to `url`, applies the migrations and prepares the pool.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let target = url.target();
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|e| StoreError::from_connect(target, e))?
            .application_name("binance-extractor");
        server::check_and_migrate::<PgConnection>(&options, target, &sqlx::migrate!("./migrations/postgres")).await?;
        let pool: PgPool = server::pool_options()
            .after_connect(|conn, _| Box::pin(async move { sqlx::raw_sql(CREATE_STAGING).execute(conn).await.map(drop) }))
            .connect_lazy_with(options);
        Ok(PostgresStore {
            shared: SharedQueries::new(pool, target, &SQL),
        })
    }

    /// The reads, the hole query and the ledger.
    pub(super) fn shared(&self) -> &SharedQueries<Postgres> {
        &self.shared
    }

    /// A COPY of a few thousand rows costs a few milliseconds; larger batches mostly save
    /// commits, and 10,000 rows (~1.5 MB of COPY text) keeps memory small.
    pub(super) fn batch_rows(&self) -> usize {
        10_000
    }

    pub(super) async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        let fail = self.shared.fail("writing klines");
        let mut text = String::with_capacity(rows.len() * 160);
        for k in rows {
            text.push_str(itoa(k.open_time).as_str());
            text.push('\t');
            sql::push_values(&mut text, k, '\t');
            text.push('\n');
        }
        let mut conn = self.shared.pool.acquire().await.map_err(&fail)?;
        let mut tx = conn.begin().await.map_err(&fail)?;
        let mut copy = tx.copy_in_raw(COPY_STAGING).await.map_err(&fail)?;
        copy.send(text.as_bytes()).await.map_err(&fail)?;
        copy.finish().await.map_err(&fail)?;
        let changed = sqlx::query(UPSERT_STAGED.as_str())
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .execute(&mut *tx)
            .await
            .map_err(&fail)?
            .rows_affected();
        tx.commit().await.map_err(&fail)?;
        Ok(changed)
    }

    pub(super) async fn close(&self) {
        self.shared.pool.close().await;
    }
}

fn itoa(n: i64) -> String {
    n.to_string()
}
