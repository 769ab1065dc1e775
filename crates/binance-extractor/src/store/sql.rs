//! The SQL the three backends share: statement text written once and rendered per dialect,
//! and the queries whose logic is the same everywhere (reads, the hole query, the ledger).
//!
//! Statements are written in SQLite's spelling — `?` parameters, `"interval"` quoted — and
//! [`Dialect::render`] turns them into PostgreSQL's `$1, $2, …` or MySQL's backticks. Only
//! what really differs is spelled per dialect: reading an exact decimal back as text, and the
//! ledger's upsert clause.
//!
//! The write paths are each backend's own (PostgreSQL's COPY, the others' multi-row
//! prepared upserts), but take from here what they share: the column order
//! ([`row_values`]), exact and fast decimal printing ([`push_decimal`]), the multi-row
//! statement SQLite and MySQL both execute ([`MultiRowUpsert`]) and the range count
//! ([`count_range`]).

use std::{fmt::Write as _, sync::Arc};

use binance_spec::{Decimal, Kline, Market};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type,
    query::Query,
};

use super::{GapOutcome, GapState, LedgerEntry, OutboxRow, StoreError, outcome_columns};
use crate::series::{SeriesKey, TimeRange};

/// The columns of `klines` that hold a candle's values (everything but the key), in table
/// order. Every write path lists them in this order.
pub(crate) const VALUE_COLUMNS: [&str; 10] = [
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
];

/// The decimal columns among [`VALUE_COLUMNS`].
const DECIMAL_COLUMNS: [&str; 8] = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
];

/// Every column of `klines` in table order: the key, then [`VALUE_COLUMNS`].
pub(crate) fn kline_columns(dialect: Dialect) -> String {
    dialect.render(&format!(
        "market, symbol, \"interval\", open_time, {}",
        VALUE_COLUMNS.join(", ")
    ))
}

/// The `ON CONFLICT` clause of a klines upsert (SQLite and PostgreSQL): a corrected candle
/// replaces the stored one; an identical one is left alone, so it is not counted in
/// `rows_affected`. (The value columns are NOT NULL, so `<>` on the row is "differs".)
pub(crate) fn kline_conflict_clause(dialect: Dialect) -> String {
    let set: Vec<String> = VALUE_COLUMNS
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let stored: Vec<String> = VALUE_COLUMNS.iter().map(|c| format!("klines.{c}")).collect();
    let new: Vec<String> = VALUE_COLUMNS.iter().map(|c| format!("excluded.{c}")).collect();
    dialect.render(&format!(
        " ON CONFLICT (market, symbol, \"interval\", open_time) DO UPDATE SET {} WHERE ({}) <> ({})",
        set.join(", "),
        stored.join(", "),
        new.join(", ")
    ))
}

/// How one engine spells the shared statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    /// Rewrites a statement written in SQLite's spelling for this engine: `?` becomes `$n` on
    /// PostgreSQL, and the reserved word `"interval"` is backticked on MySQL. (The shared
    /// statements hold no `?` or `"` inside string literals.)
    pub(crate) fn render(self, template: &str) -> String {
        match self {
            Dialect::Sqlite => template.to_string(),
            Dialect::MySql => template.replace("\"interval\"", "`interval`"),
            Dialect::Postgres => {
                let mut out = String::with_capacity(template.len() + 16);
                let mut n = 0;
                for c in template.chars() {
                    if c == '?' {
                        n += 1;
                        let _ = write!(out, "${n}");
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// A select-list expression reading the decimal column `column` back as its text.
    fn decimal_as_text(self, column: &str) -> String {
        match self {
            // Stored as TEXT already.
            Dialect::Sqlite => column.to_string(),
            // `numeric::text` prints the stored scale: byte-exact.
            Dialect::Postgres => format!("{column}::text"),
            // sqlx reads DECIMAL only as a number; CHAR gives the exact digits.
            Dialect::MySql => format!("CAST({column} AS CHAR)"),
        }
    }

    /// The ledger's `ON CONFLICT` clause: a hole seen again never downgrades
    /// `exchange_empty`; attempts and rows filled accumulate.
    fn ledger_upsert_clause(self) -> &'static str {
        match self {
            Dialect::Sqlite | Dialect::Postgres => {
                " ON CONFLICT (market, symbol, \"interval\", gap_start, gap_end) DO UPDATE SET \
                 state = CASE WHEN excluded.attempts = 0 AND gap_ledger.state = 'exchange_empty' \
                              THEN gap_ledger.state ELSE excluded.state END, \
                 last_attempt = COALESCE(excluded.last_attempt, gap_ledger.last_attempt), \
                 attempts = gap_ledger.attempts + excluded.attempts, \
                 rows_filled = gap_ledger.rows_filled + excluded.rows_filled"
            }
            // Assignments run left to right and see the columns already assigned, so `state`
            // goes first and reads only the old row and the new values.
            Dialect::MySql => {
                " ON DUPLICATE KEY UPDATE \
                 state = IF(VALUES(attempts) = 0 AND state = 'exchange_empty', state, VALUES(state)), \
                 last_attempt = COALESCE(VALUES(last_attempt), last_attempt), \
                 attempts = attempts + VALUES(attempts), \
                 rows_filled = rows_filled + VALUES(rows_filled)"
            }
        }
    }
}

impl Dialect {
    /// A recorded ban only ever gets longer.
    fn ban_upsert_clause(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                " ON CONFLICT (market) DO UPDATE SET until_ms = MAX(exchange_bans.until_ms, excluded.until_ms), \
                 status = excluded.status, recorded_at = excluded.recorded_at"
            }
            Dialect::Postgres => {
                " ON CONFLICT (market) DO UPDATE SET until_ms = GREATEST(exchange_bans.until_ms, excluded.until_ms), \
                 status = excluded.status, recorded_at = excluded.recorded_at"
            }
            Dialect::MySql => {
                " ON DUPLICATE KEY UPDATE until_ms = GREATEST(until_ms, VALUES(until_ms)), \
                 status = VALUES(status), recorded_at = VALUES(recorded_at)"
            }
        }
    }
}

/// `WHERE` condition selecting one series; binds market, symbol, interval.
const SERIES: &str = "market = ? AND symbol = ? AND \"interval\" = ?";

/// The shared statements, rendered once per dialect (each backend keeps them in a static).
#[derive(Debug)]
pub(crate) struct Statements {
    newest: String,
    oldest: String,
    count: String,
    holes: String,
    klines: String,
    ledger: String,
    record_gap: String,
    /// Stored candles of a series in `[first, last]`: the write paths' check whether a batch
    /// lands on stored rows.
    count_range: String,
    outbox_insert: String,
    outbox_delivered: String,
    outbox_pending: String,
    outbox_backlog: String,
    ban_get: String,
    ban_set: String,
}

impl Statements {
    pub(crate) fn new(dialect: Dialect) -> Statements {
        let columns: Vec<String> = ["open_time"]
            .iter()
            .chain(VALUE_COLUMNS.iter())
            .map(|c| {
                if DECIMAL_COLUMNS.contains(c) {
                    dialect.decimal_as_text(c)
                } else {
                    (*c).to_string()
                }
            })
            .collect();
        let r = |sql: String| dialect.render(&sql);
        Statements {
            newest: r(format!("SELECT MAX(open_time) FROM klines WHERE {SERIES}")),
            oldest: r(format!("SELECT MIN(open_time) FROM klines WHERE {SERIES}")),
            count: r(format!("SELECT COUNT(*) FROM klines WHERE {SERIES}")),
            count_range: r(format!(
                "SELECT COUNT(*) FROM klines WHERE {SERIES} AND open_time BETWEEN ? AND ?"
            )),
            // A hole is a step between consecutive stored open times longer than one
            // interval: LEAD over the primary key, the database walks its index once.
            holes: r(format!(
                "SELECT open_time, next_open FROM ( \
                     SELECT open_time, LEAD(open_time) OVER (ORDER BY open_time) AS next_open \
                     FROM klines WHERE {SERIES} AND open_time >= ? AND open_time < ? \
                 ) AS steps WHERE next_open - open_time > ? ORDER BY open_time"
            )),
            klines: r(format!(
                "SELECT {} FROM klines WHERE {SERIES} AND open_time >= ? AND open_time < ? ORDER BY open_time",
                columns.join(", ")
            )),
            ledger: r(format!(
                "SELECT gap_start, gap_end, state, first_seen, last_attempt, attempts, rows_filled \
                 FROM gap_ledger WHERE {SERIES} ORDER BY gap_start, gap_end"
            )),
            record_gap: r(format!(
                "INSERT INTO gap_ledger (market, symbol, \"interval\", gap_start, gap_end, state, first_seen, \
                 last_attempt, attempts, rows_filled) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
                dialect.ledger_upsert_clause()
            )),
            outbox_insert: r(
                "INSERT INTO event_outbox (id, subject, label, payload, created_at) VALUES (?, ?, ?, ?, ?)"
                    .into(),
            ),
            outbox_delivered: r("UPDATE event_outbox SET delivered_at = ? WHERE id = ?".into()),
            outbox_pending: r(
                "SELECT id, subject, label, payload, created_at FROM event_outbox \
                 WHERE delivered_at IS NULL ORDER BY created_at, id LIMIT ?"
                    .into(),
            ),
            outbox_backlog: r(
                "SELECT COUNT(*), MIN(created_at) FROM event_outbox WHERE delivered_at IS NULL".into(),
            ),
            ban_get: r("SELECT until_ms FROM exchange_bans WHERE market = ?".into()),
            ban_set: r(format!(
                "INSERT INTO exchange_bans (market, until_ms, status, recorded_at) VALUES (?, ?, ?, ?){}",
                dialect.ban_upsert_clause()
            )),
        }
    }
}

/// One column value of a candle as it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Decimal(Decimal),
}

/// The values of `k` for `open_time` and [`VALUE_COLUMNS`], in that (the table's) order:
/// the one place the write paths take their column order from.
pub(crate) fn row_values(k: &Kline) -> [Value; 11] {
    use Value::{Decimal as D, Int};
    [
        Int(k.open_time),
        Int(k.close_time),
        D(k.open),
        D(k.high),
        D(k.low),
        D(k.close),
        D(k.volume),
        D(k.quote_volume),
        // Binance's counts are far below i64::MAX; the columns are signed 64-bit.
        Int(i64::try_from(k.trades).unwrap_or(i64::MAX)),
        D(k.taker_buy_base_volume),
        D(k.taker_buy_quote_volume),
    ]
}

/// Multi-row `INSERT INTO klines … VALUES (?, …), (?, …) <upsert clause>` statements of at
/// most `rows_per_statement` rows (SQLite and MySQL), the full-size one built once.
#[derive(Debug)]
pub(crate) struct MultiRowUpsert {
    dialect: Dialect,
    rows_per_statement: usize,
    /// The backend's upsert clause.
    tail: String,
    full: Arc<str>,
}

impl MultiRowUpsert {
    pub(crate) fn new(dialect: Dialect, rows_per_statement: usize, tail: String) -> Self {
        let full = Arc::from(Self::text(dialect, rows_per_statement, &tail));
        MultiRowUpsert {
            dialect,
            rows_per_statement,
            tail,
            full,
        }
    }

    fn text(dialect: Dialect, rows: usize, tail: &str) -> String {
        let tuple = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
        let mut sql = String::with_capacity(tail.len() + 300 + rows * (tuple.len() + 1));
        let _ = write!(sql, "INSERT INTO klines ({}) VALUES ", kline_columns(dialect));
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(tuple);
        }
        sql.push_str(tail);
        sql
    }

    /// Writing `rows` of `key`, its first statement bound already: a caller that must wait
    /// for its turn to write (SQLite) starts it before waiting.
    pub(crate) fn start<'r, DB: TextBinding>(
        &'r self,
        key: &SeriesKey,
        rows: &'r [Kline],
    ) -> PendingWrite<'r, DB> {
        let key = KeyText::new(key);
        let mut chunks = rows.chunks(self.rows_per_statement);
        let next = chunks.next().map(|chunk| self.bind_chunk(&key, chunk));
        PendingWrite {
            upsert: self,
            key,
            chunks,
            next,
        }
    }

    fn bind_chunk<DB: TextBinding>(&self, key: &KeyText, chunk: &[Kline]) -> Bound<DB> {
        let statement = if chunk.len() == self.rows_per_statement {
            self.full.clone()
        } else {
            Arc::from(Self::text(self.dialect, chunk.len(), &self.tail))
        };
        bind_rows(sqlx::query::<DB>(AssertSqlSafe(statement)), key, chunk)
    }
}

/// A write of one batch in statements of at most `rows_per_statement` rows (see
/// [`MultiRowUpsert::start`]).
pub(crate) struct PendingWrite<'r, DB: TextBinding> {
    upsert: &'r MultiRowUpsert,
    key: KeyText,
    chunks: std::slice::Chunks<'r, Kline>,
    /// The next statement, bound.
    next: Option<Bound<DB>>,
}

impl<DB: TextBinding> PendingWrite<'_, DB> {
    /// Runs the statements inside the caller's transaction `conn`; returns their results
    /// summed (`rows_affected`). Each statement is bound while the one before it runs: the
    /// database works while this program prints the next statement's decimals (binding is
    /// most of the program's share of a write), and only two statements are in memory.
    pub(crate) async fn execute(mut self, conn: &mut DB::Connection) -> Result<DB::QueryResult, sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
    {
        let mut total = DB::QueryResult::default();
        while let Some(statement) = self.next.take() {
            let (upsert, key, chunks) = (self.upsert, &self.key, &mut self.chunks);
            // `join` polls in order: the statement is sent before the next one is bound.
            let (result, next) = futures_util::future::join(statement.execute(&mut *conn), async move {
                chunks.next().map(|chunk| upsert.bind_chunk(key, chunk))
            })
            .await;
            total.extend([result?]);
            self.next = next;
        }
        Ok(total)
    }
}

/// The key columns of a series as text, each shared by every row that binds it.
pub(crate) struct KeyText {
    market: Arc<str>,
    symbol: Arc<str>,
    interval: Arc<str>,
}

impl KeyText {
    fn new(key: &SeriesKey) -> Self {
        KeyText {
            market: Arc::from(key.market.as_str()),
            symbol: Arc::from(key.symbol.as_str()),
            interval: Arc::from(key.interval.as_str()),
        }
    }
}

/// A statement with (some of) its values bound, owning them.
type Bound<DB> = Query<'static, DB, <DB as Database>::Arguments>;

/// How a backend's driver takes bound values, so that binding a row allocates as little as
/// that driver allows. MySQL's driver copies each value into the statement's packet at once:
/// borrowed text costs nothing. SQLite's keeps every value until the statement runs, copying
/// a borrowed `&str` into a new `String` in a new `Arc` (two allocations per value), but
/// takes an `Arc<str>` as it is: the key columns then share one `Arc` per batch and each
/// decimal costs one allocation (8 per row instead of 22).
pub(crate) trait TextBinding: Database {
    /// Binds one of the key columns.
    fn bind_shared(q: Bound<Self>, text: &Arc<str>) -> Bound<Self>;

    /// Binds `text` (a decimal printed into a reused buffer).
    fn bind_text(q: Bound<Self>, text: &str) -> Bound<Self>;

    /// Binds an integer column.
    fn bind_int(q: Bound<Self>, n: i64) -> Bound<Self>;
}

impl TextBinding for sqlx::Sqlite {
    fn bind_shared(q: Bound<Self>, text: &Arc<str>) -> Bound<Self> {
        q.bind(text.clone())
    }

    fn bind_text(q: Bound<Self>, text: &str) -> Bound<Self> {
        q.bind(Arc::<str>::from(text))
    }

    fn bind_int(q: Bound<Self>, n: i64) -> Bound<Self> {
        q.bind(n)
    }
}

impl TextBinding for sqlx::MySql {
    fn bind_shared(q: Bound<Self>, text: &Arc<str>) -> Bound<Self> {
        q.bind(&**text)
    }

    fn bind_text(q: Bound<Self>, text: &str) -> Bound<Self> {
        q.bind(text)
    }

    fn bind_int(q: Bound<Self>, n: i64) -> Bound<Self> {
        q.bind(n)
    }
}

/// Binds every column of `rows` of `key`, in `klines`' column order, to a multi-row
/// INSERT. Decimals go as their exact text.
fn bind_rows<DB: TextBinding>(mut q: Bound<DB>, key: &KeyText, rows: &[Kline]) -> Bound<DB> {
    // One buffer for every decimal's text: what a driver keeps is its own copy.
    let mut text = String::with_capacity(40);
    for k in rows {
        q = DB::bind_shared(q, &key.market);
        q = DB::bind_shared(q, &key.symbol);
        q = DB::bind_shared(q, &key.interval);
        for value in row_values(k) {
            q = match value {
                Value::Int(n) => DB::bind_int(q, n),
                Value::Decimal(d) => {
                    text.clear();
                    push_decimal(&mut text, d);
                    DB::bind_text(q, &text)
                }
            };
        }
    }
    q
}

/// Appends `open_time` and the value columns of `k` ([`VALUE_COLUMNS`] order) as text
/// separated by `sep`: the body of a COPY line or of a VALUES tuple. Decimals print exactly,
/// with their scale.
pub(crate) fn push_row(out: &mut String, k: &Kline, sep: char) {
    for (i, value) in row_values(k).into_iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        match value {
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Decimal(d) => push_decimal(out, d),
        }
    }
}

/// Appends `d` as `Decimal`'s `Display` prints it (digits, scale kept, never an exponent),
/// several times faster: the bulk paths print eight decimals per row, and this was their
/// largest cost in the program.
pub(crate) fn push_decimal(out: &mut String, d: Decimal) {
    let mantissa = d.mantissa();
    let scale = d.scale() as usize;
    if mantissa < 0 {
        out.push('-');
    }
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    let mut rest = mantissa.unsigned_abs();
    // Digits from the right; u64 arithmetic once the value fits (nearly always).
    while rest > u128::from(u64::MAX) {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut small = rest as u64;
    loop {
        at -= 1;
        buf[at] = b'0' + (small % 10) as u8;
        small /= 10;
        if small == 0 {
            break;
        }
    }
    let digits = &buf[at..];
    // ASCII digits only.
    let text = std::str::from_utf8(digits).unwrap_or_default();
    if scale == 0 {
        out.push_str(text);
    } else if digits.len() > scale {
        let (int, frac) = text.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(text);
    }
}

/// How many candles of `key` are stored with open times in `[first, last]`, as the
/// transaction `conn` sees them.
pub(crate) async fn count_range<'c, DB, E>(
    conn: E,
    sql: &'static Statements,
    key: &SeriesKey,
    (first, last): (i64, i64),
) -> Result<i64, sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    sqlx::query_scalar::<DB, i64>(sql.count_range.as_str())
        .bind(key.market.as_str())
        .bind(key.symbol.as_str())
        .bind(key.interval.as_str())
        .bind(first)
        .bind(last)
        .fetch_one(conn)
        .await
}

/// The smallest and largest open time of a non-empty batch.
pub(crate) fn open_time_bounds(rows: &[Kline]) -> (i64, i64) {
    rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), k| {
        (lo.min(k.open_time), hi.max(k.open_time))
    })
}

/// A stored decimal's text as a [`Decimal`], exactly. MySQL pads to the column's 12
/// decimals, which can exceed the 28 digits a `Decimal` holds ("98765432109876543210.
/// 123456780000"); those padding zeros are dropped when they do not fit.
fn parse_decimal(text: &str) -> Result<Decimal, rust_decimal::Error> {
    Decimal::from_str_exact(text).or_else(|e| match text.contains('.') {
        true => Decimal::from_str_exact(text.trim_end_matches('0').trim_end_matches('.')).map_err(|_| e),
        false => Err(e),
    })
}

/// A pool plus the shared statements: the reads, the hole query and the ledger, identical on
/// every backend but for the SQL spelling.
#[derive(Debug)]
pub(crate) struct SharedQueries<DB: Database> {
    pub(crate) pool: Pool<DB>,
    /// "database 'x' on host:port", for errors.
    pub(crate) target: Arc<str>,
    sql: &'static Statements,
}

impl<DB: Database> Clone for SharedQueries<DB> {
    fn clone(&self) -> Self {
        SharedQueries {
            pool: self.pool.clone(),
            target: self.target.clone(),
            sql: self.sql,
        }
    }
}

impl<DB> SharedQueries<DB>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    pub(crate) fn new(pool: Pool<DB>, target: &str, sql: &'static Statements) -> Self {
        SharedQueries {
            pool,
            target: Arc::from(target),
            sql,
        }
    }

    /// The error for a failed `operation`.
    pub(crate) fn fail(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |e| StoreError::query(&self.target, operation, e)
    }

    pub(crate) async fn newest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        self.series_scalar(&self.sql.newest, key, "reading the newest candle")
            .await
    }

    pub(crate) async fn oldest_open_time(&self, key: &SeriesKey) -> Result<Option<i64>, StoreError> {
        self.series_scalar(&self.sql.oldest, key, "reading the oldest candle")
            .await
    }

    pub(crate) async fn count(&self, key: &SeriesKey) -> Result<u64, StoreError> {
        let n = self
            .series_scalar(&self.sql.count, key, "counting klines")
            .await?;
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn series_scalar(
        &self,
        sql: &'static str,
        key: &SeriesKey,
        operation: &'static str,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar::<DB, Option<i64>>(sql)
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail(operation))
    }

    pub(crate) async fn holes(
        &self,
        key: &SeriesKey,
        within: TimeRange,
    ) -> Result<Vec<TimeRange>, StoreError> {
        let rows = sqlx::query::<DB>(self.sql.holes.as_str())
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .bind(within.start)
            .bind(within.end)
            .bind(key.interval.max_step_ms())
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("finding holes"))?;
        rows.iter()
            .map(|r| Ok(TimeRange::new(self.get::<i64>(r, 0)? + 1, self.get(r, 1)?)))
            .collect()
    }

    pub(crate) async fn klines(&self, key: &SeriesKey, range: TimeRange) -> Result<Vec<Kline>, StoreError> {
        let rows = sqlx::query::<DB>(self.sql.klines.as_str())
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .bind(range.start)
            .bind(range.end)
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("reading klines"))?;
        rows.iter().map(|r| self.kline(r)).collect()
    }

    /// A row of the `klines` statement: open_time, then [`VALUE_COLUMNS`].
    fn kline(&self, r: &DB::Row) -> Result<Kline, StoreError> {
        let dec = |i: usize| -> Result<Decimal, StoreError> {
            let text: String = self.get(r, i)?;
            parse_decimal(&text).map_err(|e| self.corrupt("klines", format!("'{text}': {e}")))
        };
        Ok(Kline {
            open_time: self.get(r, 0)?,
            close_time: self.get(r, 1)?,
            open: dec(2)?,
            high: dec(3)?,
            low: dec(4)?,
            close: dec(5)?,
            volume: dec(6)?,
            quote_volume: dec(7)?,
            trades: u64::try_from(self.get::<i64>(r, 8)?)
                .map_err(|e| self.corrupt("klines.trades", e.to_string()))?,
            taker_buy_base_volume: dec(9)?,
            taker_buy_quote_volume: dec(10)?,
            ignore: Decimal::ZERO,
        })
    }

    pub(crate) async fn ledger(&self, key: &SeriesKey) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = sqlx::query::<DB>(self.sql.ledger.as_str())
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("reading the gap ledger"))?;
        rows.iter()
            .map(|r| {
                let state: String = self.get(r, 2)?;
                Ok(LedgerEntry {
                    range: TimeRange::new(self.get(r, 0)?, self.get(r, 1)?),
                    state: GapState::parse(&state)
                        .ok_or_else(|| self.corrupt("gap_ledger.state", state.clone()))?,
                    first_seen: self.get(r, 3)?,
                    last_attempt: self.get(r, 4)?,
                    attempts: u32::try_from(self.get::<i64>(r, 5)?).unwrap_or(u32::MAX),
                    rows_filled: u64::try_from(self.get::<i64>(r, 6)?).unwrap_or(0),
                })
            })
            .collect()
    }

    pub(crate) async fn record_gap(
        &self,
        key: &SeriesKey,
        range: TimeRange,
        outcome: GapOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (state, attempts, rows) = outcome_columns(outcome);
        sqlx::query::<DB>(self.sql.record_gap.as_str())
            .bind(key.market.as_str())
            .bind(key.symbol.as_str())
            .bind(key.interval.as_str())
            .bind(range.start)
            .bind(range.end)
            .bind(state.as_str())
            .bind(now_ms)
            .bind((attempts > 0).then_some(now_ms))
            .bind(i64::from(attempts))
            .bind(i64::try_from(rows).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(self.fail("recording a gap"))?;
        Ok(())
    }

    pub(crate) async fn outbox_insert(&self, row: &OutboxRow) -> Result<(), StoreError> {
        sqlx::query::<DB>(self.sql.outbox_insert.as_str())
            .bind(row.id.as_str())
            .bind(row.subject.as_str())
            .bind(row.label.as_str())
            .bind(row.payload.as_str())
            .bind(row.created_at)
            .execute(&self.pool)
            .await
            .map_err(self.fail("recording an event in the outbox"))?;
        Ok(())
    }

    pub(crate) async fn outbox_mark_delivered(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query::<DB>(self.sql.outbox_delivered.as_str())
            .bind(at_ms)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.fail("marking an event delivered"))?;
        Ok(())
    }

    pub(crate) async fn outbox_pending(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query::<DB>(self.sql.outbox_pending.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("reading the event outbox"))?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: self.get(r, 0)?,
                    subject: self.get(r, 1)?,
                    label: self.get(r, 2)?,
                    payload: self.get(r, 3)?,
                    created_at: self.get(r, 4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn outbox_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let row = sqlx::query::<DB>(self.sql.outbox_backlog.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail("reading the event outbox"))?;
        let count: i64 = self.get(&row, 0)?;
        Ok((u64::try_from(count).unwrap_or(0), self.get(&row, 1)?))
    }

    pub(crate) async fn ban_until(&self, market: Market) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar::<DB, i64>(self.sql.ban_get.as_str())
            .bind(market.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("reading a recorded ban"))
    }

    pub(crate) async fn record_ban(
        &self,
        market: Market,
        until_ms: i64,
        status: u16,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query::<DB>(self.sql.ban_set.as_str())
            .bind(market.as_str())
            .bind(until_ms)
            .bind(i64::from(status))
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(self.fail("recording a ban"))?;
        Ok(())
    }

    /// Column `i` of `r`, or a [`StoreError::Corrupt`] naming it.
    fn get<T>(&self, r: &DB::Row, i: usize) -> Result<T, StoreError>
    where
        T: for<'r> Decode<'r, DB> + Type<DB>,
    {
        r.try_get(i).map_err(|e| self.corrupt("a column", e.to_string()))
    }

    fn corrupt(&self, what: &'static str, detail: String) -> StoreError {
        StoreError::Corrupt {
            target: self.target.to_string(),
            what,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_spelled_per_dialect() {
        let template = "SELECT a FROM klines WHERE market = ? AND \"interval\" = ? AND open_time < ?";
        assert_eq!(Dialect::Sqlite.render(template), template);
        assert_eq!(
            Dialect::Postgres.render(template),
            "SELECT a FROM klines WHERE market = $1 AND \"interval\" = $2 AND open_time < $3"
        );
        assert_eq!(
            Dialect::MySql.render(template),
            "SELECT a FROM klines WHERE market = ? AND `interval` = ? AND open_time < ?"
        );
        let pg = Statements::new(Dialect::Postgres);
        assert!(
            pg.klines.contains("open::text") && pg.klines.contains("$5"),
            "{}",
            pg.klines
        );
        assert!(pg.record_gap.contains("$10") && pg.record_gap.contains("ON CONFLICT"));
        let my = Statements::new(Dialect::MySql);
        assert!(
            my.klines.contains("CAST(open AS CHAR)") && !my.klines.contains('"'),
            "{}",
            my.klines
        );
        assert!(my.record_gap.contains("ON DUPLICATE KEY UPDATE") && !my.record_gap.contains('"'));
    }

    #[test]
    fn padded_decimals_beyond_28_digits_read_back() {
        assert_eq!(parse_decimal("30453.00").unwrap().to_string(), "30453.00");
        assert_eq!(
            parse_decimal("98765432109876543210.123456780000")
                .unwrap()
                .to_string(),
            "98765432109876543210.12345678"
        );
        assert_eq!(
            parse_decimal("100000000000000000000000000.000000000000")
                .unwrap()
                .to_string(),
            "100000000000000000000000000"
        );
        assert!(parse_decimal("12x").is_err());
        assert!(parse_decimal("123456789012345678901234567890123").is_err());
    }

    #[test]
    fn decimals_print_as_display_does() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut cases: Vec<Decimal> = [
            "0",
            "0.00000000",
            "0.00000001",
            "1",
            "-1.5",
            "30453.00",
            "100",
            "0.1",
            "10.000",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "7.9228162514264337593543950335",
            "18446744073709551615",
            "18446744073709551616",
            "1844674407370955161.6",
        ]
        .iter()
        .map(|s| dec(s))
        .collect();
        for _ in 0..20_000 {
            let m = rng.i128(..) >> rng.u32(0..100);
            cases.push(
                Decimal::try_from_i128_with_scale(
                    m % 79_228_162_514_264_337_593_543_950_335,
                    rng.u32(0..=28),
                )
                .unwrap(),
            );
        }
        for d in cases {
            let mut out = String::new();
            push_decimal(&mut out, d);
            assert_eq!(out, d.to_string(), "{d:?}");
        }
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn values_print_exactly_in_table_order() {
        let d = dec;
        let k = Kline {
            open_time: 1_681_516_800_000,
            open: d("30453.00"),
            high: d("30455.00"),
            low: d("30446.40"),
            close: d("30452.40"),
            volume: d("174.120"),
            close_time: 1_681_516_859_999,
            quote_volume: d("5301913.57520"),
            trades: 1884,
            taker_buy_base_volume: d("83.714"),
            taker_buy_quote_volume: d("2549037.25020"),
            ignore: Decimal::ZERO,
        };
        let mut out = String::new();
        push_row(&mut out, &k, '\t');
        assert_eq!(
            out,
            "1681516800000\t1681516859999\t30453.00\t30455.00\t30446.40\t30452.40\t174.120\t5301913.57520\t1884\t83.714\t2549037.25020"
        );
    }
}
