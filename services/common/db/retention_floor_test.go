package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

// setPolicy writes the retention policy of sql/0006 as the administrator does (`ingester
// migrate`; package partition's WritePolicy, which this module cannot import): each
// argument an interval, or "" for never.
func setPolicy(t *testing.T, url, events, ledger, rejected string) {
	t.Helper()
	admin := connect(t, url)
	for kind, age := range map[string]string{"events": events, "ledger": ledger, "rejected": rejected} {
		var v any
		if age != "" {
			v = age
		}
		if _, err := admin.Exec(context.Background(), `UPDATE ecomstream_retention_policy SET min_age = $2::interval WHERE kind = $1`, kind, v); err != nil {
			t.Fatal(err)
		}
	}
}

// counts is what retention could remove: the old partition (1 if it is there), the rows
// of events (the old partition's and the default partition's), the ledger rows and the
// rejected rows.
func counts(t *testing.T, url string) [4]int64 {
	t.Helper()
	var c [4]int64
	err := connect(t, url).QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_class WHERE relname = 'events_p20200101'), (SELECT count(*) FROM events),
		(SELECT count(*) FROM ingested_files), (SELECT count(*) FROM rejected_records)`).Scan(&c[0], &c[1], &c[2], &c[3])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The attack sql/0006 closes: with the ingester's credentials only, a cutoff a century
// ahead dropped every partition, emptied the default partition and deleted the whole
// ledger and every rejected line. Now each of the three functions refuses any cutoff
// newer than the administrator's policy (never, by default), removing nothing; within
// the policy they work as before; the ledger never goes sooner than the events.
func TestRetentionFunctionsRefuseACutoffNewerThanTheDatabasesPolicy(t *testing.T) {
	url := migrated(t)
	ctx := context.Background()
	admin := connect(t, url)
	for _, s := range []string{
		`SELECT public.ecomstream_create_partition('events_p20200101', '2020-01-01Z', '2020-01-02Z')`,
		`INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT gen_random_uuid(), '2020-01-01 10:00Z', 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'old.csv' FROM generate_series(1, 5)`,
		// The default partition: 3 rows of 90 days ago, 4 of an hour ago.
		`INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT gen_random_uuid(), now() - interval '90 days', 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'old.csv' FROM generate_series(1, 3)`,
		`INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT gen_random_uuid(), now() - interval '1 hour', 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'new.csv' FROM generate_series(1, 4)`,
		// Ledger and rejected rows of 90 days, 20 days and an hour ago.
		`INSERT INTO ingested_files (file_name, sha256, file_created_at, committed_at, records_total, records_inserted,
			records_rejected, records_duplicate, bytes, ingester_instance)
			SELECT 'f' || d || '.csv', 'x', now() - d * interval '1 hour', now() - d * interval '1 hour', 0, 0, 0, 0, 0, 'i'
			FROM unnest(ARRAY[2160, 480, 1]) d`,
		`INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message, rejected_at)
			SELECT 'f.csv', d, 'x', 'bad_event_id', 'm', now() - d * interval '1 hour' FROM unnest(ARRAY[2160, 480, 1]) d`,
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	all := [4]int64{1, 12, 3, 3}
	if got := counts(t, url); got != all {
		t.Fatalf("set-up: %v, want %v", got, all)
	}
	ing := connect(t, pgtest.AsRole(t, url, "ecomstream_ingester"))
	attack := []string{
		"SELECT public.ecomstream_drop_partition('events_p20200101', now() + interval '100 years')",
		"SELECT public.ecomstream_expire_default(now() + interval '100 years')",
		"SELECT public.ecomstream_prune('ingested_files', now() + interval '100 years', 100000)",
		"SELECT public.ecomstream_prune('rejected_records', now() + interval '100 years', 100000)",
	}
	within30 := []string{ // what a 30-day policy (10 days for rejected lines) allows
		"SELECT public.ecomstream_drop_partition('events_p20200101', now() - interval '31 days')",
		"SELECT public.ecomstream_expire_default(now() - interval '31 days')",
		"SELECT public.ecomstream_prune('ingested_files', now() - interval '31 days', 100000)",
		"SELECT public.ecomstream_prune('rejected_records', now() - interval '11 days', 100000)",
	}
	// Each statement commits on its own (autocommit), as the maintenance runs them: a
	// refusal must hold, not just roll back with the test's transaction.
	refusedNow := func(what string, stmts []string) {
		t.Helper()
		for _, s := range stmts {
			_, err := ing.Exec(ctx, s)
			if sqlstate(err) != "42501" {
				t.Errorf("%s: %q gave %v, want insufficient_privilege (42501)", what, s, err)
			}
		}
		if got := counts(t, url); got != all {
			t.Fatalf("%s: rows left %v, want all of them %v", what, got, all)
		}
	}
	// The default policy is never: nothing may go, however old.
	refusedNow("policy never, a cutoff a century ahead", attack)
	refusedNow("policy never, an old cutoff", within30)
	setPolicy(t, url, "30 days", "30 days", "10 days")
	refusedNow("a 30-day policy, a cutoff a century ahead", attack)
	refusedNow("a 30-day policy, cutoffs a day too new", []string{
		"SELECT public.ecomstream_drop_partition('events_p20200101', now() - interval '29 days')",
		"SELECT public.ecomstream_expire_default(now() - interval '29 days')",
		"SELECT public.ecomstream_prune('ingested_files', now() - interval '29 days', 100000)",
		"SELECT public.ecomstream_prune('rejected_records', now() - interval '9 days', 100000)",
	})
	// The ledger goes no sooner than the events, whatever its own row says.
	setPolicy(t, url, "30 days", "7 days", "10 days")
	refusedNow("a ledger policy below the events'", []string{"SELECT public.ecomstream_prune('ingested_files', now() - interval '21 days', 100000)"})
	setPolicy(t, url, "", "7 days", "10 days")
	refusedNow("a ledger policy with the events kept forever", []string{"SELECT public.ecomstream_prune('ingested_files', now() - interval '91 days', 100000)"})
	var msg string
	if _, err := ing.Exec(ctx, attack[2]); err != nil {
		msg = err.Error()
	}
	for _, want := range []string{"retention of ledger refused", "never remove", "the ledger is kept as long as the events",
		"ingester migrate", "INGESTER_LEDGER_RETENTION"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal %q does not say %q", msg, want)
		}
	}

	// Within the policy the functions work as before.
	setPolicy(t, url, "30 days", "30 days", "10 days")
	removed := make([]int64, 0, 4)
	for _, s := range within30 {
		var n any
		if err := ing.QueryRow(ctx, s).Scan(&n); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if c, ok := n.(int64); ok {
			removed = append(removed, c)
		}
	}
	if got, want := counts(t, url), [4]int64{0, 4, 2, 1}; got != want || len(removed) != 3 || removed[0] != 3 || removed[1] != 1 || removed[2] != 2 {
		t.Fatalf("within the policy: rows left %v (want %v), removed %v (want [3 1 2])", got, want, removed)
	}
}

// The policy is the administrator's: the ingester (and the collector) read it and
// cannot change it, directly or by the functions' owner.
func TestOnlyTheAdministratorWritesTheRetentionPolicy(t *testing.T) {
	url := migrated(t)
	for _, role := range []string{"ecomstream_ingester", "ecomstream_collector"} {
		c := connect(t, pgtest.AsRole(t, url, role))
		allowed(t, c, role, "SELECT kind, min_age FROM ecomstream_retention_policy")
		refused(t, c, role,
			"UPDATE ecomstream_retention_policy SET min_age = NULL",
			"UPDATE ecomstream_retention_policy SET min_age = interval '1 second'",
			"INSERT INTO ecomstream_retention_policy (kind, min_age) VALUES ('x', interval '1 second')",
			"DELETE FROM ecomstream_retention_policy",
			"TRUNCATE ecomstream_retention_policy",
			"DROP TABLE ecomstream_retention_policy",
			"ALTER TABLE ecomstream_retention_policy DROP CONSTRAINT ecomstream_retention_policy_min_age_check",
			"SET ROLE ecomstream_migrator")
	}
	var n int64
	if err := connect(t, url).QueryRow(context.Background(),
		"SELECT count(*) FROM ecomstream_retention_policy WHERE min_age IS NULL").Scan(&n); err != nil || n != 3 {
		t.Fatalf("the default policy: %d kinds never removed (%v), want all 3", n, err)
	}
}

// The functions read a partition's bounds back as text (pg_get_expr) and write them as
// text (format's %L), both in the caller's DateStyle and TimeZone. A caller that prints
// them with a zone abbreviation the input side reads otherwise (TimeZone 'LINT+167':
// 167 hours west, printed "LINT", read back as Line Islands Time, 14 hours east) moved
// every bound seven and a half days earlier: the ingester's role dropped a partition
// holding rows days newer than the policy, and made a partition whose range is not the
// one its name says (the maintenance then fails on it, "already exists", every pass).
func TestRetentionFloorHoldsWhateverTheCallersTimeZoneAndDateStyle(t *testing.T) {
	url := migrated(t)
	ctx := context.Background()
	setPolicy(t, url, "30 days", "30 days", "30 days")
	// A day 3 days inside the policy: its rows are too new to go.
	from := time.Now().UTC().Add(-27 * 24 * time.Hour).Truncate(24 * time.Hour)
	name := "events_p" + from.Format("20060102")
	ing := connect(t, pgtest.AsRole(t, url, "ecomstream_ingester"))
	if _, err := ing.Exec(ctx, "SELECT public.ecomstream_create_partition($1, $2, $3)", name, from, from.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := ing.Exec(ctx, `INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
		SELECT gen_random_uuid(), $1, 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'f.csv' FROM generate_series(1, 2)`, from.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := ing.Exec(ctx, "SET TimeZone = 'LINT+167'; SET DateStyle = 'Postgres'"); err != nil {
		t.Fatal(err)
	}
	_, err := ing.Exec(ctx, "SELECT public.ecomstream_drop_partition($1, now() - interval '30 days 1 minute')", name)
	if sqlstate(err) != "22023" {
		t.Errorf("dropping %s (rows of %s, 3 days inside a 30-day policy) with a cutoff just past the policy: %v, want 22023 (ends after the cutoff)", name, from, err)
	}
	var rows int64
	if err := connect(t, url).QueryRow(ctx, "SELECT count(*) FROM events").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("events left %d (%v), want the 2 the policy keeps", rows, err)
	}

	// A partition made in such a session has the range its name says.
	next := from.Add(24 * time.Hour)
	nextName := "events_p" + next.Format("20060102")
	if _, err := ing.Exec(ctx, "SELECT public.ecomstream_create_partition($1, $2, $3)", nextName, next, next.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, url)
	var bound string
	if err := admin.QueryRow(ctx, `SELECT set_config('TimeZone', 'UTC', false), set_config('DateStyle', 'ISO', false),
		(SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = $1)`, nextName).Scan(nil, nil, &bound); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("FOR VALUES FROM ('%s+00') TO ('%s+00')", next.Format("2006-01-02 15:04:05"), next.Add(24*time.Hour).Format("2006-01-02 15:04:05"))
	if bound != want {
		t.Errorf("%s made as %q, want %q", nextName, bound, want)
	}
}
