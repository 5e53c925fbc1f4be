-- Events: one row per accepted event, identified by event_id (stored once).
-- The four secondary indexes are the report's ("Index Effectiveness").
CREATE TABLE IF NOT EXISTS events (
    event_id     uuid           NOT NULL PRIMARY KEY,
    event_time   timestamptz    NOT NULL,
    event_type   text           NOT NULL,
    user_id      bigint         NOT NULL,
    session_id   uuid           NOT NULL,
    product_id   bigint         NOT NULL,
    category     text           NOT NULL,
    price        numeric(12, 2) NOT NULL,
    quantity     integer        NOT NULL,
    source_file  text           NOT NULL,
    -- The start of the transaction that inserted the row (now()); the ledger's
    -- committed_at is the commit time, and latency is measured from there.
    ingested_at  timestamptz    NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_events_event_type ON events (event_type);
CREATE INDEX IF NOT EXISTS idx_events_user_id    ON events (user_id);
CREATE INDEX IF NOT EXISTS idx_events_product_id ON events (product_id);
CREATE INDEX IF NOT EXISTS idx_events_event_time ON events (event_time);
