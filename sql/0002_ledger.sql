-- The ledger: one row per file whose outcome is committed, in the same transaction as
-- its events. Name and checksum together are a file's identity.
CREATE TABLE IF NOT EXISTS ingested_files (
    id                 bigserial   PRIMARY KEY,
    file_name          text        NOT NULL,
    sha256             text        NOT NULL,
    -- ingested: its rows were loaded (some may be rejected or duplicates);
    -- failed: the whole file was rejected (not CSV, missing column) and moved aside.
    outcome            text        NOT NULL DEFAULT 'ingested'
                       CHECK (outcome IN ('ingested', 'failed')),
    file_created_at    timestamptz NOT NULL,
    committed_at       timestamptz NOT NULL DEFAULT now(),
    records_total      bigint      NOT NULL,
    records_inserted   bigint      NOT NULL,
    records_rejected   bigint      NOT NULL,
    records_duplicate  bigint      NOT NULL,
    bytes              bigint      NOT NULL,
    ingester_instance  text        NOT NULL,
    CONSTRAINT ingested_files_identity UNIQUE (file_name, sha256),
    CONSTRAINT ingested_files_counts CHECK
        (records_total = records_inserted + records_rejected + records_duplicate)
);

CREATE INDEX IF NOT EXISTS idx_ingested_files_committed_at ON ingested_files (committed_at);

-- One row per rejected line; line_number 0 is a whole-file rejection.
CREATE TABLE IF NOT EXISTS rejected_records (
    id           bigserial   PRIMARY KEY,
    source_file  text        NOT NULL,
    line_number  bigint      NOT NULL,
    raw_line     text        NOT NULL,
    reason       text        NOT NULL,  -- stable machine code, e.g. bad_event_id
    message      text        NOT NULL,  -- what a person needs to fix it
    rejected_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_rejected_records_source_file ON rejected_records (source_file);
CREATE INDEX IF NOT EXISTS idx_rejected_records_rejected_at ON rejected_records (rejected_at);
