//! PostgreSQL through sqlx.
//!
//! Writes take PostgreSQL's bulk path, `COPY … FROM STDIN`, in one transaction:
//! - a batch that lands where nothing is stored yet (new candles, a hole being filled — the
//!   usual case) is copied straight into `klines`; should a concurrent writer have stored one
//!   of its candles meanwhile, the copy is rolled back to a savepoint and the batch takes
//!   the path below;
//! - a batch over stored candles is copied into a per-connection temporary staging table,
//!   then moved by one `INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE (row differs)`, so
//!   identical candles are neither rewritten nor counted. (One `INSERT … SELECT FROM
//!   UNNEST($n::numeric[], …)` instead measured a quarter slower.)
//!
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

/// The staging table each connection creates for itself, shaped like `klines`; emptied by
/// every commit.
const CREATE_STAGING: &str =
    "CREATE TEMPORARY TABLE klines_staging (LIKE klines INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

/// Streams a batch straight into `klines` (text format: tab-separated, one row a line).
static COPY_KLINES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "COPY klines ({}) FROM STDIN",
        sql::kline_columns(Dialect::Postgres)
    )
});
/// Streams a batch into the staging table.
static COPY_STAGING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "COPY klines_staging ({}) FROM STDIN",
        sql::kline_columns(Dialect::Postgres)
    )
});

/// Moves the staged batch into `klines`; `rows_affected` counts new and corrected candles.
static UPSERT_STAGED: LazyLock<String> = LazyLock::new(|| {
    let columns = sql::kline_columns(Dialect::Postgres);
    format!(
        "INSERT INTO klines ({columns}) SELECT {columns} FROM klines_staging{}",
        sql::kline_conflict_clause(Dialect::Postgres)
    )
});

/// SQLSTATE unique_violation.
const UNIQUE_VIOLATION: &str = "23505";

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
        server::check_and_migrate::<PgConnection>(&options, target, &sqlx::migrate!("./migrations/postgres"))
            .await?;
        let pool: PgPool = server::pool_options()
            .after_connect(|conn, _| {
                Box::pin(async move { sqlx::raw_sql(CREATE_STAGING).execute(conn).await.map(drop) })
            })
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
    /// commits. The batch is sent in pieces ([`COPY_PIECE_ROWS`]), so its size costs only
    /// the batch's own rows in memory.
    pub(super) fn batch_rows(&self) -> usize {
        10_000
    }

    pub(super) async fn write_klines(&self, key: &SeriesKey, rows: &[Kline]) -> Result<u64, StoreError> {
        let fail = self.shared.fail("writing klines");
        let mut conn = self.shared.pool.acquire().await.map_err(&fail)?;
        let mut tx = conn.begin().await.map_err(&fail)?;
        let stored = sql::count_range(&mut *tx, &SQL, key, sql::open_time_bounds(rows))
            .await
            .map_err(&fail)?;
        if stored == 0 {
            let mut direct = tx.begin().await.map_err(&fail)?;
            match copy(&mut direct, &COPY_KLINES, key, rows).await {
                Ok(copied) => {
                    direct.commit().await.map_err(&fail)?;
                    tx.commit().await.map_err(&fail)?;
                    return Ok(copied);
                }
                Err(e) if is_unique_violation(&e) => direct.rollback().await.map_err(&fail)?,
                Err(e) => return Err(fail(e)),
            }
        }
        copy(&mut tx, &COPY_STAGING, key, rows).await.map_err(&fail)?;
        let changed = sqlx::query(UPSERT_STAGED.as_str())
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

/// Rows per COPY message. A batch's text is built and sent a piece at a time in one reused
/// buffer (~150 KB), so neither it nor the connection's write buffer ever holds a whole
/// batch, and the server parses one piece while the next is printed.
const COPY_PIECE_ROWS: usize = 1_000;

/// Runs `COPY … FROM STDIN` with `rows` of `key` in COPY's text format (`klines`' column
/// order, tab-separated, one row a line); returns the rows copied.
async fn copy(
    conn: &mut PgConnection,
    statement: &str,
    key: &SeriesKey,
    rows: &[Kline],
) -> Result<u64, sqlx::Error> {
    let prefix = format!(
        "{}\t{}\t{}\t",
        key.market.as_str(),
        key.symbol.as_str(),
        key.interval.as_str()
    );
    let mut text = String::with_capacity(COPY_PIECE_ROWS.min(rows.len()) * (prefix.len() + 140));
    let mut copy = conn.copy_in_raw(statement).await?;
    for piece in rows.chunks(COPY_PIECE_ROWS) {
        text.clear();
        for k in piece {
            text.push_str(&prefix);
            sql::push_row(&mut text, k, '\t');
            text.push('\n');
        }
        copy.send(text.as_bytes()).await?;
    }
    copy.finish().await
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == UNIQUE_VIOLATION)
}
