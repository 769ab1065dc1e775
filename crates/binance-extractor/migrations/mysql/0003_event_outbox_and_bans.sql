-- The event outbox: every event is recorded here before it is published, and marked
-- delivered once NATS has confirmed it. Undelivered rows are sent by the next run or by
-- `binance-extractor events flush`, with the same id (sent as Nats-Msg-Id).
CREATE TABLE IF NOT EXISTS event_outbox (
    id            VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    subject       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    label         VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    payload       MEDIUMTEXT   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at    BIGINT       NOT NULL,
    delivered_at  BIGINT,
    INDEX event_outbox_pending (delivered_at, created_at, id)
) ENGINE = InnoDB;

-- Bans Binance imposed (HTTP 418) or pauses it asked for (429), per market: a process
-- started before the end waits instead of extending the ban. Times are epoch ms.
CREATE TABLE IF NOT EXISTS exchange_bans (
    market       VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    until_ms     BIGINT     NOT NULL,
    status       INT        NOT NULL,
    recorded_at  BIGINT     NOT NULL
) ENGINE = InnoDB;
