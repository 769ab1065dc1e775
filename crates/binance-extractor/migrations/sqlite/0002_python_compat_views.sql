-- Views for people migrating from the Python extractor (petrosa-binance-data-extractor),
-- which kept one MySQL table per interval: klines_m1, klines_m15, klines_h1, klines_d1, …
-- (its suffix moves the unit letter to the front: 1m→m1, 1h→h1, 1d→d1, 1w→w1, 1M→M1).
-- They show klines under its column names. Its jobs read USD-M futures
-- (fapi.binance.com), so the views show market 'usdm' only; 1s had no Python table.
--
-- id is SYMBOL_OPENMS as the Python writer built it; timestamp (= open_time) and
-- close_time are UTC datetimes as text, 'YYYY-MM-DD HH:MM:SS.SSS'. The columns the Python
-- rows added on their own (price_change, price_change_percent, extracted_at,
-- extractor_version, source) are not stored here and not shown. SQLite views are read-only.
--
-- There is no klines_M1 (the month) on SQLite: SQLite compares names without regard to
-- case even when quoted, so it would be the same name as klines_m1 (the minute). Read the
-- monthly candles from klines_python WHERE "interval" = '1M'.
CREATE VIEW klines_python AS
SELECT k.symbol || '_' || k.open_time                                        AS id,
       k.symbol                                                              AS symbol,
       strftime('%Y-%m-%d %H:%M:%f', k.open_time / 1000.0, 'unixepoch')      AS "timestamp",
       strftime('%Y-%m-%d %H:%M:%f', k.open_time / 1000.0, 'unixepoch')      AS open_time,
       strftime('%Y-%m-%d %H:%M:%f', k.close_time / 1000.0, 'unixepoch')     AS close_time,
       k."interval"                                                          AS "interval",
       k.open                                                                AS open_price,
       k.high                                                                AS high_price,
       k.low                                                                 AS low_price,
       k.close                                                               AS close_price,
       k.volume                                                              AS volume,
       k.quote_volume                                                        AS quote_asset_volume,
       k.trades                                                              AS number_of_trades,
       k.taker_buy_base_volume                                               AS taker_buy_base_asset_volume,
       k.taker_buy_quote_volume                                              AS taker_buy_quote_asset_volume
FROM (SELECT * FROM klines WHERE market = 'usdm') AS k;

CREATE VIEW klines_m1    AS SELECT * FROM klines_python WHERE "interval" = '1m';
CREATE VIEW klines_m3    AS SELECT * FROM klines_python WHERE "interval" = '3m';
CREATE VIEW klines_m5    AS SELECT * FROM klines_python WHERE "interval" = '5m';
CREATE VIEW klines_m15   AS SELECT * FROM klines_python WHERE "interval" = '15m';
CREATE VIEW klines_m30   AS SELECT * FROM klines_python WHERE "interval" = '30m';
CREATE VIEW klines_h1    AS SELECT * FROM klines_python WHERE "interval" = '1h';
CREATE VIEW klines_h2    AS SELECT * FROM klines_python WHERE "interval" = '2h';
CREATE VIEW klines_h4    AS SELECT * FROM klines_python WHERE "interval" = '4h';
CREATE VIEW klines_h6    AS SELECT * FROM klines_python WHERE "interval" = '6h';
CREATE VIEW klines_h8    AS SELECT * FROM klines_python WHERE "interval" = '8h';
CREATE VIEW klines_h12   AS SELECT * FROM klines_python WHERE "interval" = '12h';
CREATE VIEW klines_d1    AS SELECT * FROM klines_python WHERE "interval" = '1d';
CREATE VIEW klines_d3    AS SELECT * FROM klines_python WHERE "interval" = '3d';
CREATE VIEW klines_w1    AS SELECT * FROM klines_python WHERE "interval" = '1w';
