-- Views for people migrating from the Python extractor (petrosa-binance-data-extractor),
-- which kept one MySQL table per interval: klines_m1, klines_m15, klines_h1, klines_d1, …
-- (its suffix moves the unit letter to the front: 1m→m1, 1h→h1, 1d→d1, 1w→w1, 1M→M1).
-- They show klines under its column names. Its jobs read USD-M futures
-- (fapi.binance.com), so the views show market 'usdm' only; 1s had no Python table.
--
-- id is SYMBOL_OPENMS as the Python writer built it; timestamp (= open_time) and
-- close_time are UTC DATETIME(3) (computed without the session time zone). The columns the
-- Python rows added on their own (price_change, price_change_percent, extracted_at,
-- extractor_version, source) are not stored here and not shown.
--
-- Read-only: a view over a derived table is not updatable, so a stray INSERT, UPDATE or
-- DELETE through one fails instead of touching klines. The derived table is still merged,
-- so WHERE symbol = … uses the primary key.
CREATE VIEW klines_python AS
SELECT CONCAT(k.symbol, '_', k.open_time)                                           AS id,
       k.symbol                                                                     AS symbol,
       CAST(TIMESTAMP '1970-01-01 00:00:00' + INTERVAL (k.open_time * 1000) MICROSECOND AS DATETIME(3)) AS `timestamp`,
       CAST(TIMESTAMP '1970-01-01 00:00:00' + INTERVAL (k.open_time * 1000) MICROSECOND AS DATETIME(3)) AS open_time,
       CAST(TIMESTAMP '1970-01-01 00:00:00' + INTERVAL (k.close_time * 1000) MICROSECOND AS DATETIME(3)) AS close_time,
       k.`interval`                                                                 AS `interval`,
       k.open                                                                       AS open_price,
       k.high                                                                       AS high_price,
       k.low                                                                        AS low_price,
       k.close                                                                      AS close_price,
       k.volume                                                                     AS volume,
       k.quote_volume                                                               AS quote_asset_volume,
       k.trades                                                                     AS number_of_trades,
       k.taker_buy_base_volume                                                      AS taker_buy_base_asset_volume,
       k.taker_buy_quote_volume                                                     AS taker_buy_quote_asset_volume
FROM (SELECT * FROM klines WHERE market = 'usdm') AS k;

CREATE VIEW klines_m1    AS SELECT * FROM klines_python WHERE `interval` = '1m';
CREATE VIEW klines_m3    AS SELECT * FROM klines_python WHERE `interval` = '3m';
CREATE VIEW klines_m5    AS SELECT * FROM klines_python WHERE `interval` = '5m';
CREATE VIEW klines_m15   AS SELECT * FROM klines_python WHERE `interval` = '15m';
CREATE VIEW klines_m30   AS SELECT * FROM klines_python WHERE `interval` = '30m';
CREATE VIEW klines_h1    AS SELECT * FROM klines_python WHERE `interval` = '1h';
CREATE VIEW klines_h2    AS SELECT * FROM klines_python WHERE `interval` = '2h';
CREATE VIEW klines_h4    AS SELECT * FROM klines_python WHERE `interval` = '4h';
CREATE VIEW klines_h6    AS SELECT * FROM klines_python WHERE `interval` = '6h';
CREATE VIEW klines_h8    AS SELECT * FROM klines_python WHERE `interval` = '8h';
CREATE VIEW klines_h12   AS SELECT * FROM klines_python WHERE `interval` = '12h';
CREATE VIEW klines_d1    AS SELECT * FROM klines_python WHERE `interval` = '1d';
CREATE VIEW klines_d3    AS SELECT * FROM klines_python WHERE `interval` = '3d';
CREATE VIEW klines_w1    AS SELECT * FROM klines_python WHERE `interval` = '1w';

-- klines_M1 (the month) is a different name from klines_m1 (the minute) only where table
-- names keep their case (lower_case_table_names = 0, the Linux default). Elsewhere it would
-- collide, so it is created only there; read the months from klines_python WHERE
-- `interval` = '1M' otherwise.
SET @klines_month_view = IF(@@lower_case_table_names = 0,
    'CREATE VIEW klines_M1 AS SELECT * FROM klines_python WHERE `interval` = ''1M''',
    'DO 0');
PREPARE klines_month_view FROM @klines_month_view;
EXECUTE klines_month_view;
DEALLOCATE PREPARE klines_month_view;
