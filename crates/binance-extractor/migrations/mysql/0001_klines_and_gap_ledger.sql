-- Klines: one row per (market, symbol, interval, open_time).
--
-- Key columns are ASCII with a binary collation: MySQL's default collations ignore case, and
-- '1m' (a minute) and '1M' (a month) must stay two intervals. `interval` is a reserved word.
--
-- Prices and volumes are DECIMAL(38,12): exact, 26 digits before the point and 12 after.
-- Binance prints at most 8 decimals, and its largest values are quote volumes of meme coins
-- (beyond 1e15 on a monthly candle) — 1e26 leaves ample room. The store refuses a value
-- that does not fit rather than letting the server round it. DECIMAL keeps the value, not
-- the scale Binance printed: "30453.00" reads back as 30453.000000000000 (equal, not
-- byte-identical; PostgreSQL and SQLite keep the text).
-- Times are UTC epoch milliseconds.
CREATE TABLE IF NOT EXISTS klines (
    market                  VARCHAR(8)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    symbol                  VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `interval`              VARCHAR(4)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    open_time               BIGINT         NOT NULL,
    close_time              BIGINT         NOT NULL,
    open                    DECIMAL(38,12) NOT NULL,
    high                    DECIMAL(38,12) NOT NULL,
    low                     DECIMAL(38,12) NOT NULL,
    close                   DECIMAL(38,12) NOT NULL,
    volume                  DECIMAL(38,12) NOT NULL,
    quote_volume            DECIMAL(38,12) NOT NULL,
    trades                  BIGINT         NOT NULL,
    taker_buy_base_volume   DECIMAL(38,12) NOT NULL,
    taker_buy_quote_volume  DECIMAL(38,12) NOT NULL,
    PRIMARY KEY (market, symbol, `interval`, open_time)
) ENGINE = InnoDB;

-- The gap ledger: every hole found between stored candles, and what fetching it gave.
-- gap_start is the first open time that may be missing (just after the stored candle before
-- the hole), gap_end the open time of the stored candle after it (exclusive).
CREATE TABLE IF NOT EXISTS gap_ledger (
    market        VARCHAR(8)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    symbol        VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `interval`    VARCHAR(4)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    gap_start     BIGINT      NOT NULL,
    gap_end       BIGINT      NOT NULL,
    state         VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
                  CHECK (state IN ('open', 'filled', 'exchange_empty')),
    first_seen    BIGINT      NOT NULL,
    last_attempt  BIGINT,
    attempts      BIGINT      NOT NULL DEFAULT 0,
    rows_filled   BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (market, symbol, `interval`, gap_start, gap_end)
) ENGINE = InnoDB;
