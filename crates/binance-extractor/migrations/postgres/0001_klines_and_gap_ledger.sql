-- Klines: one row per (market, symbol, interval, open_time).
-- Prices and volumes are unconstrained NUMERIC: exact, and the scale Binance sent is kept
-- ("0.01634790" reads back as "0.01634790"). Times are UTC epoch milliseconds.
-- The text key columns use the "C" collation: byte order, case-sensitive ('1m' is a minute,
-- '1M' a month) and the cheapest comparison for the primary key.
CREATE TABLE IF NOT EXISTS klines (
    market                  text    COLLATE "C" NOT NULL,
    symbol                  text    COLLATE "C" NOT NULL,
    "interval"              text    COLLATE "C" NOT NULL,
    open_time               bigint  NOT NULL,
    close_time              bigint  NOT NULL,
    open                    numeric NOT NULL,
    high                    numeric NOT NULL,
    low                     numeric NOT NULL,
    close                   numeric NOT NULL,
    volume                  numeric NOT NULL,
    quote_volume            numeric NOT NULL,
    trades                  bigint  NOT NULL,
    taker_buy_base_volume   numeric NOT NULL,
    taker_buy_quote_volume  numeric NOT NULL,
    PRIMARY KEY (market, symbol, "interval", open_time)
);

-- The gap ledger: every hole found between stored candles, and what fetching it gave.
-- gap_start is the first open time that may be missing (just after the stored candle before
-- the hole), gap_end the open time of the stored candle after it (exclusive).
CREATE TABLE IF NOT EXISTS gap_ledger (
    market        text    COLLATE "C" NOT NULL,
    symbol        text    COLLATE "C" NOT NULL,
    "interval"    text    COLLATE "C" NOT NULL,
    gap_start     bigint  NOT NULL,
    gap_end       bigint  NOT NULL,
    state         text    NOT NULL CHECK (state IN ('open', 'filled', 'exchange_empty')),
    first_seen    bigint  NOT NULL,
    last_attempt  bigint,
    attempts      bigint  NOT NULL DEFAULT 0,
    rows_filled   bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (market, symbol, "interval", gap_start, gap_end)
);
