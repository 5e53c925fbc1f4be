-- committed_at is written by the last statement before COMMIT: clock_timestamp() there is
-- the commit time to within a round trip, where now() would be the transaction's start.
ALTER TABLE ingested_files ALTER COLUMN committed_at SET DEFAULT clock_timestamp();
