-- Klines: one row per (market, symbol, interval, open_time).
-- Prices and volumes are TEXT holding Binance's exact decimal string (SQLite has no exact
-- decimal type; REAL would round). Times are UTC epoch milliseconds.
CREATE TABLE IF NOT EXISTS klines (
    market                  TEXT    NOT NULL,
    symbol                  TEXT    NOT NULL,
    "interval"              TEXT    NOT NULL,
    open_time               INTEGER NOT NULL,
    close_time              INTEGER NOT NULL,
    open                    TEXT    NOT NULL,
    high                    TEXT    NOT NULL,
    low                     TEXT    NOT NULL,
    close                   TEXT    NOT NULL,
    volume                  TEXT    NOT NULL,
    quote_volume            TEXT    NOT NULL,
    trades                  INTEGER NOT NULL,
    taker_buy_base_volume   TEXT    NOT NULL,
    taker_buy_quote_volume  TEXT    NOT NULL,
    PRIMARY KEY (market, symbol, "interval", open_time)
) WITHOUT ROWID;

-- The gap ledger: every hole found between stored candles, and what fetching it gave.
-- gap_start is the first open time that may be missing (just after the stored candle before
-- the hole), gap_end the open time of the stored candle after it (exclusive).
CREATE TABLE IF NOT EXISTS gap_ledger (
    market        TEXT    NOT NULL,
    symbol        TEXT    NOT NULL,
    "interval"    TEXT    NOT NULL,
    gap_start     INTEGER NOT NULL,
    gap_end       INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('open', 'filled', 'exchange_empty')),
    first_seen    INTEGER NOT NULL,
    last_attempt  INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    rows_filled   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market, symbol, "interval", gap_start, gap_end)
) WITHOUT ROWID;
