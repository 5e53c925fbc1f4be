-- The database bounds retention (docs/security.md, "Retention floor"). Until now the
-- maintenance functions of 0005 took any cutoff from the ingester: its credentials alone
-- could pass a cutoff a century ahead and drop every events partition, empty the default
-- partition and delete the whole ledger and every rejected line. Now the administrator
-- says, here, how old rows must be before they may go, and the functions refuse a cutoff
-- newer than that.
--
-- ecomstream_retention_policy holds one row per kind (events: the partitions and the
-- default partition's rows; ledger: ingested_files; rejected: rejected_records) with the
-- minimum age of what may be removed; NULL (the default) = never. `ingester migrate`
-- writes it from INGESTER_EVENTS_RETENTION, INGESTER_LEDGER_RETENTION and
-- INGESTER_REJECTED_RETENTION (package partition, WritePolicy), as the administrator. The
-- ingester reads it (default privileges give it SELECT) and cannot write it.
SET LOCAL ROLE ecomstream_migrator;

CREATE TABLE public.ecomstream_retention_policy (
    kind     text        PRIMARY KEY CHECK (kind IN ('events', 'ledger', 'rejected')),
    min_age  interval    CHECK (min_age > interval '0'),
    set_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.ecomstream_retention_policy (kind, min_age) VALUES ('events', NULL), ('ledger', NULL), ('rejected', NULL);

-- Refuses p_cutoff unless everything before it is older than the policy of p_kind allows
-- to remove, measured on the database's clock (now(): the caller's transaction start,
-- which a caller cannot move ahead). The ledger is never removed sooner than the events
-- (a file dropped again after its ledger row is gone is ingested again: docs/scaling.md),
-- whatever its own row says. The age counts as its seconds (a day is 24 h), so a session's
-- time zone and its daylight-saving changes cannot move the floor.
CREATE FUNCTION public.ecomstream_retention_check(p_kind text, p_cutoff timestamptz)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    age interval;
    events_age interval;
    setting text := CASE p_kind WHEN 'events' THEN 'INGESTER_EVENTS_RETENTION'
                                WHEN 'ledger' THEN 'INGESTER_LEDGER_RETENTION'
                                WHEN 'rejected' THEN 'INGESTER_REJECTED_RETENTION' END;
    why text := '';
    oldest timestamptz;
BEGIN
    IF setting IS NULL THEN
        RAISE EXCEPTION 'no retention policy for %', p_kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min_age INTO age FROM public.ecomstream_retention_policy WHERE kind = p_kind;
    IF p_kind = 'ledger' THEN
        SELECT min_age INTO events_age FROM public.ecomstream_retention_policy WHERE kind = 'events';
        IF events_age IS NULL AND age IS NOT NULL THEN
            age := NULL;
            why := ' (the ledger is kept as long as the events, and the events policy is never)';
        ELSIF age < events_age THEN
            age := events_age;
            why := ' (the ledger is kept as long as the events)';
        END IF;
    END IF;
    IF age IS NOT NULL THEN
        oldest := now() - make_interval(secs => extract(epoch FROM age));
    END IF;
    IF p_cutoff IS NULL OR oldest IS NULL OR p_cutoff > oldest THEN
        RAISE EXCEPTION '%', format('retention of %s refused: cutoff %s is newer than the database''s retention policy for %s allows: %s%s; '
            'an administrator sets the policy with `ingester migrate` from %s, and an ingester''s %s must not be shorter',
            p_kind, coalesce(p_cutoff::text, 'NULL'), p_kind,
            CASE WHEN age IS NULL THEN 'never remove'
                 ELSE format('remove only what is older than %s (a cutoff at or before %s)', justify_hours(age), oldest) END,
            why, setting, setting)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$fn$;

-- 0005's three removing functions, unchanged but for the policy check (after their own
-- checks of what they are asked to remove, which keep their invalid_parameter_value).
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
    PERFORM public.ecomstream_retention_check('events', p_cutoff);
    EXECUTE format('DROP TABLE %s', part::regclass);
END
$fn$;

CREATE OR REPLACE FUNCTION public.ecomstream_expire_default(p_cutoff timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    n bigint;
BEGIN
    PERFORM public.ecomstream_retention_check('events', p_cutoff);
    DELETE FROM public.events_default WHERE event_time < p_cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;

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
        PERFORM public.ecomstream_retention_check('ledger', p_cutoff);
        DELETE FROM public.ingested_files WHERE id IN
            (SELECT id FROM public.ingested_files WHERE committed_at < p_cutoff LIMIT p_limit);
    WHEN 'rejected_records' THEN
        PERFORM public.ecomstream_retention_check('rejected', p_cutoff);
        DELETE FROM public.rejected_records WHERE id IN
            (SELECT id FROM public.rejected_records WHERE rejected_at < p_cutoff LIMIT p_limit);
    ELSE
        RAISE EXCEPTION 'no retention for table %', p_table USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;

-- CREATE OR REPLACE keeps the three functions' grants; the new check is callable like
-- them, by the ingester only (it removes nothing: it says whether a cutoff may be used).
REVOKE ALL ON FUNCTION public.ecomstream_retention_check(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ecomstream_retention_check(text, timestamptz) TO ecomstream_ingester;

-- The partition functions read a bound back as text (pg_get_expr, cast to timestamptz)
-- and write one as text (format's %L), both in the session's DateStyle and TimeZone,
-- which are the caller's to set. A caller printing them with a zone abbreviation the
-- input side reads otherwise (TimeZone 'LINT+167' prints "LINT", which reads back as
-- UTC+14) moved each bound up to 7.5 days: drop_partition then dropped a partition
-- holding rows days newer than the policy, and create_partition made a partition whose
-- range is not the one its name says. In ISO style a bound carries its numeric offset.
ALTER FUNCTION public.ecomstream_drop_partition(text, timestamptz) SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD';
ALTER FUNCTION public.ecomstream_create_partition(text, timestamptz, timestamptz) SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD';
