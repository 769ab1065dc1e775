-- The event outbox: every event is recorded here before it is published, and marked
-- delivered once NATS has confirmed it. Undelivered rows are sent by the next run or by
-- `binance-extractor events flush`, with the same id (sent as Nats-Msg-Id).
CREATE TABLE IF NOT EXISTS event_outbox (
    id            text   NOT NULL PRIMARY KEY,
    subject       text   NOT NULL,
    label         text   NOT NULL,
    payload       text   NOT NULL,
    created_at    bigint NOT NULL,
    delivered_at  bigint
);
CREATE INDEX IF NOT EXISTS event_outbox_pending ON event_outbox (delivered_at, created_at, id);

-- Bans Binance imposed (HTTP 418) or pauses it asked for (429), per market: a process
-- started before the end waits instead of extending the ban. Times are epoch ms.
CREATE TABLE IF NOT EXISTS exchange_bans (
    market       text    NOT NULL PRIMARY KEY,
    until_ms     bigint  NOT NULL,
    status       integer NOT NULL,
    recorded_at  bigint  NOT NULL
);
