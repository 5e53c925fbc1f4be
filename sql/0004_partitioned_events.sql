-- events becomes range-partitioned by event_time (issue 13). PostgreSQL has no unique
-- index across partitions, so the primary key becomes (event_id, event_time): a
-- duplicate (same id, same time) is still stored once; the same event_id arriving with a
-- different event_time is stored as a second row and shows in the collector's
-- duplicate_event_ids gauge (see docs/scaling.md).
--
-- Partitions themselves are made by the ingester (`ingester migrate` and its maintenance
-- loop; width and window are settings), not here: a migration is applied once, while
-- partitions are needed every day. Until they exist, rows land in events_default.
--
-- An existing unpartitioned events table is renamed events_unpartitioned here (cheap,
-- atomic) and its rows are moved by `ingester migrate` in resumable chunks; an empty one
-- (a fresh database, which 0001 has just made) is simply dropped.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('events') AND relkind = 'r') THEN
        IF EXISTS (SELECT 1 FROM events LIMIT 1) THEN
            ALTER TABLE events RENAME TO events_unpartitioned;
            ALTER INDEX events_pkey RENAME TO events_unpartitioned_pkey;
            ALTER INDEX idx_events_event_type RENAME TO idx_events_unpartitioned_event_type;
            ALTER INDEX idx_events_user_id RENAME TO idx_events_unpartitioned_user_id;
            ALTER INDEX idx_events_product_id RENAME TO idx_events_unpartitioned_product_id;
            ALTER INDEX idx_events_event_time RENAME TO idx_events_unpartitioned_event_time;
        ELSE
            DROP TABLE events;
        END IF;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS events (
    event_id     uuid           NOT NULL,
    event_time   timestamptz    NOT NULL,
    event_type   text           NOT NULL,
    user_id      bigint         NOT NULL,
    session_id   uuid           NOT NULL,
    product_id   bigint         NOT NULL,
    category     text           NOT NULL,
    price        numeric(12, 2) NOT NULL,
    quantity     integer        NOT NULL,
    source_file  text           NOT NULL,
    ingested_at  timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (event_id, event_time)
) PARTITION BY RANGE (event_time);

-- Rows older or newer than every partition land here rather than being refused; the
-- ingester counts them (ecomstream_ingester_events_default_partition_rows) and moves
-- them when it creates the partition for their range.
CREATE TABLE IF NOT EXISTS events_default PARTITION OF events DEFAULT;

-- The report's four indexes, on the parent: every partition gets its own.
CREATE INDEX IF NOT EXISTS idx_events_event_type ON events (event_type);
CREATE INDEX IF NOT EXISTS idx_events_user_id    ON events (user_id);
CREATE INDEX IF NOT EXISTS idx_events_product_id ON events (product_id);
CREATE INDEX IF NOT EXISTS idx_events_event_time ON events (event_time);
