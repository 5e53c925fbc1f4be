-- Least privilege (issue 10; docs/security.md says why each grant is there).
--
--   ecomstream_migrator   owns every table, index and function of the schema; nobody logs
--                         in as it: the one-shot migration job (an administrator) becomes it
--                         for each migration (SET LOCAL ROLE below and in later migrations).
--   ecomstream_ingester   SELECT and INSERT on the three tables, nothing else directly; its
--                         partition DDL and retention go through the SECURITY DEFINER
--                         functions at the end of this file, which do only that.
--   ecomstream_collector  pg_monitor plus SELECT on the three tables.
--   ecomstream_exporter   pg_monitor (postgres_exporter reads only PostgreSQL's views).
--
-- The roles are NOLOGIN and have no password here: a deployment gives each the LOGIN and
-- the password it chooses (compose: deploy/postgres/logins.sql, from .env). Roles belong
-- to the cluster, not the database, so a second ecomstream database on the same server
-- (the tests make hundreds, concurrently) finds them made and only adds its own grants.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['ecomstream_migrator', 'ecomstream_ingester', 'ecomstream_collector', 'ecomstream_exporter'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- made at the same moment by another database's migration
            END;
        END IF;
    END LOOP;
    FOREACH r IN ARRAY ARRAY['ecomstream_collector', 'ecomstream_exporter'] LOOP
        IF NOT pg_has_role(r, 'pg_monitor', 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT pg_monitor TO %I', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    -- A migration runner that is not a superuser (a CREATEROLE administrator) must be
    -- able to become the owner it hands the schema to.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'ecomstream_migrator', 'MEMBER') THEN
        EXECUTE format('GRANT ecomstream_migrator TO %I', current_user);
    END IF;
END
$$;

-- Only the owner creates objects in the schema (PostgreSQL 15 made this the default; an
-- older server or an upgraded cluster may still let every role create tables there, and
-- a table of someone else's in the SECURITY DEFINER functions' schema is a trap).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO ecomstream_migrator;
GRANT USAGE ON SCHEMA public TO ecomstream_ingester, ecomstream_collector;

-- Everything made so far (by whoever ran 0001-0004, and the partitions the ingester made)
-- now belongs to the migrator; a table's indexes and owned sequences follow it.
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
               AND c.relowner <> 'ecomstream_migrator'::regrole LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO ecomstream_migrator', t);
    END LOOP;
END
$$;

-- From here on the migration is the migrator's: what it makes, it owns.
SET LOCAL ROLE ecomstream_migrator;

-- What the ingester writes: events (COPY, or INSERT ... ON CONFLICT DO NOTHING from its
-- temporary staging table), rejected lines, one ledger row per file. It reads them back
-- (the ledger's identity check, the operator's commands) and updates or deletes nothing.
GRANT SELECT, INSERT ON events, ingested_files, rejected_records TO ecomstream_ingester;
GRANT USAGE ON SEQUENCE ingested_files_id_seq, rejected_records_id_seq TO ecomstream_ingester;
GRANT SELECT ON events, ingested_files, rejected_records TO ecomstream_collector;

-- Partitions are read directly (the maintenance counts the rows of the default partition
-- and of those it is about to drop), so each one is readable like events itself:
-- those that exist now, and, through default privileges, those the maintenance functions
-- (running as the migrator) make later. Writes go through events only.
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'events'::regclass LOOP
        EXECUTE format('GRANT SELECT ON %s TO ecomstream_ingester, ecomstream_collector', t);
    END LOOP;
END
$$;
ALTER DEFAULT PRIVILEGES FOR ROLE ecomstream_migrator IN SCHEMA public
    GRANT SELECT ON TABLES TO ecomstream_ingester, ecomstream_collector;

-- Partition maintenance (services/ingester/internal/partition) as functions that run with
-- the owner's rights (SECURITY DEFINER) and do one narrow thing each, so the ingester
-- needs no ownership of events: owning it would let it DROP, ALTER or TRUNCATE it. Each
-- function pins its search_path and names every object with its schema, so nothing the
-- caller puts in its own temporary schema can stand in for ours. EXECUTE is revoked from
-- PUBLIC and granted to the ingester only.

-- Makes the range partition p_name = [p_from, p_to) of events, moving into it any rows the
-- default partition holds for that range, and returns how many it moved. PostgreSQL
-- refuses to attach a partition while the default one holds rows of its range, so the
-- table is made, filled and attached in the caller's transaction, with the default
-- partition locked against writes meanwhile (the caller's lock_timeout bounds the wait).
CREATE OR REPLACE FUNCTION public.ecomstream_create_partition(p_name text, p_from timestamptz, p_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    moved bigint;
    start timestamp := p_from AT TIME ZONE 'UTC';
    expected text;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_from >= p_to THEN
        RAISE EXCEPTION 'empty partition range [%, %)', p_from, p_to USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The name says where the range starts, as package partition names it (Name):
    -- events_pYYYYMMDD at midnight UTC, with _HHMM or _HHMMSS otherwise.
    expected := 'events_p' || to_char(start, 'YYYYMMDD') || CASE
        WHEN start = date_trunc('day', start) THEN ''
        WHEN start = date_trunc('minute', start) THEN to_char(start, '_HH24MI')
        ELSE to_char(start, '_HH24MISS') END;
    IF p_name IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'partition name % does not name the range starting %', p_name, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOCK TABLE public.events_default IN EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.events INCLUDING DEFAULTS)', p_name);
    -- The constraint lets ATTACH skip scanning the new table for its bound.
    EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT bound CHECK (event_time >= %L AND event_time < %L)', p_name, p_from, p_to);
    EXECUTE format('WITH m AS (DELETE FROM public.events_default WHERE event_time >= %L AND event_time < %L RETURNING *)
                    INSERT INTO public.%I SELECT * FROM m', p_from, p_to, p_name);
    GET DIAGNOSTICS moved = ROW_COUNT;
    -- ATTACH builds the partition's copies of the parent's indexes and primary key and
    -- takes only a SHARE UPDATE EXCLUSIVE lock on events: inserts go on meanwhile.
    EXECUTE format('ALTER TABLE public.events ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)', p_name, p_from, p_to);
    EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT bound', p_name);
    RETURN moved;
END
$fn$;

-- Drops the range partition p_name of events, and only if it ends at or before p_cutoff
-- (retention: the caller says up to when rows may go, the function checks the partition
-- holds nothing newer). The default partition and events itself are never dropped.
CREATE OR REPLACE FUNCTION public.ecomstream_drop_partition(p_name text, p_cutoff timestamptz)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    part oid;
    ends timestamptz;
BEGIN
    SELECT c.oid, substring(pg_get_expr(c.relpartbound, c.oid) FROM '\) TO \(''([^'']+)''\)$')::timestamptz
      INTO part, ends
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'public.events'::regclass
       AND c.relnamespace = 'public'::regnamespace AND c.relname = p_name;
    IF part IS NULL THEN
        RAISE EXCEPTION 'not a partition of events: %', p_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ends IS NULL OR p_cutoff IS NULL OR ends > p_cutoff THEN
        RAISE EXCEPTION 'partition % ends after the cutoff %: not dropped', p_name, p_cutoff
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('DROP TABLE %s', part::regclass);
END
$fn$;

-- Deletes the default partition's rows older than p_cutoff (retention for rows no
-- partition took) and returns how many.
CREATE OR REPLACE FUNCTION public.ecomstream_expire_default(p_cutoff timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    n bigint;
BEGIN
    DELETE FROM public.events_default WHERE event_time < p_cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;

-- Deletes at most p_limit rows older than p_cutoff from the ledger (by committed_at) or
-- the rejected rows (by rejected_at), and returns how many: the ledger and rejected
-- retention windows, in short transactions the caller repeats.
CREATE OR REPLACE FUNCTION public.ecomstream_prune(p_table text, p_cutoff timestamptz, p_limit integer)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    n bigint;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 100000 THEN
        RAISE EXCEPTION 'prune limit % out of 1..100000', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    CASE p_table
    WHEN 'ingested_files' THEN
        DELETE FROM public.ingested_files WHERE id IN
            (SELECT id FROM public.ingested_files WHERE committed_at < p_cutoff LIMIT p_limit);
    WHEN 'rejected_records' THEN
        DELETE FROM public.rejected_records WHERE id IN
            (SELECT id FROM public.rejected_records WHERE rejected_at < p_cutoff LIMIT p_limit);
    ELSE
        RAISE EXCEPTION 'no retention for table %', p_table USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;

REVOKE ALL ON FUNCTION public.ecomstream_create_partition(text, timestamptz, timestamptz),
    public.ecomstream_drop_partition(text, timestamptz), public.ecomstream_expire_default(timestamptz),
    public.ecomstream_prune(text, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ecomstream_create_partition(text, timestamptz, timestamptz),
    public.ecomstream_drop_partition(text, timestamptz), public.ecomstream_expire_default(timestamptz),
    public.ecomstream_prune(text, timestamptz, integer) TO ecomstream_ingester;
