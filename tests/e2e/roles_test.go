package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

// withPassword puts a password into url's user info. The test clusters trust local
// connections, so it is not checked; it is there to be looked for in the logs.
func withPassword(url, password string) string {
	return strings.Replace(url, "@", ":"+password+"@", 1)
}

// runIngesterCommand runs `ingester ARGS...` to its end (an operator's command).
func runIngesterCommand(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "ingester"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("ingester %v: %v", args, err)
	}
	return 0, string(out)
}

// TestEveryServiceRunsAsItsOwnRole: the pipeline as compose runs it in the database —
// migrated once by the administrator, then two ingesters (with partition maintenance and
// all three retention windows), the operator's commands and the collector, each
// connected as its own role of sql/0005 — ingests every row exactly once, expires what
// is past retention, measures everything, and never logs a password.
func TestEveryServiceRunsAsItsOwnRole(t *testing.T) {
	admin := pgtest.DB(t)
	d := newDirs(t)
	db := pool(t, admin)
	ctx := context.Background()
	// The administrator's migration sets the database's retention policy from the same
	// settings the ingesters run with (compose and the Helm chart pass both the same).
	retention := []string{"--events-retention", "30d", "--ledger-retention", "60d", "--rejected-retention", "30d"}
	ingURL := ingesterURL(t, admin, retention...) // migrates as the administrator
	const secret = "Pw-never-in-a-log-7f3a"
	var policy string
	if err := db.QueryRow(ctx, `SELECT string_agg(kind || ' ' || coalesce(justify_hours(min_age)::text, 'never'), ', ' ORDER BY kind)
		FROM ecomstream_retention_policy`).Scan(&policy); err != nil || policy != "events 30 days, ledger 60 days, rejected 30 days" {
		t.Fatalf("the policy ingester migrate wrote: %q (%v), want the retention settings", policy, err)
	}

	// What retention must remove: a partition of 60 days ago with its rows, rows of 90
	// days ago in the default partition, a ledger row and a rejected line of 90 days ago.
	now := time.Now().UTC()
	oldDay := now.Add(-60 * 24 * time.Hour).Truncate(24 * time.Hour)
	oldPart := "events_p" + oldDay.Format("20060102")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT public.ecomstream_create_partition($1, $2, $3)", []any{oldPart, oldDay, oldDay.Add(24 * time.Hour)}},
		{`INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT gen_random_uuid(), $1, 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'ancient.csv' FROM generate_series(1, 5)`, []any{oldDay.Add(time.Hour)}},
		{`INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT gen_random_uuid(), $1, 'view', 1, gen_random_uuid(), 1, 'c', 1, 1, 'ancient.csv' FROM generate_series(1, 3)`, []any{now.Add(-90 * 24 * time.Hour)}},
		{`INSERT INTO ingested_files (file_name, sha256, outcome, file_created_at, committed_at, records_total, records_inserted,
			records_rejected, records_duplicate, bytes, ingester_instance) VALUES ('ancient.csv', 'x', 'failed', $1, $1, 0, 0, 0, 0, 0, 'old')`, []any{now.Add(-90 * 24 * time.Hour)}},
		{`INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message, rejected_at)
			VALUES ('ancient.csv', 0, '', 'not_csv', 'm', $1)`, []any{now.Add(-90 * 24 * time.Hour)}},
	} {
		if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	// ing-role-2 keeps events 20 days, less than the policy's 30 (a settings mismatch, or
	// what stolen credentials would ask): the database refuses that step of its
	// maintenance, it says so in its log, and it ingests on like the other.
	shorter := append(slices.Clone(retention), "--events-retention", "20d")
	var procs []*proc
	for _, keep := range [][]string{retention, shorter} {
		args := append([]string{"--input-dir", d.In, "--archive-dir", d.Archive, "--failed-dir", d.Failed,
			"--http-addr", freeAddr(t), "--instance", fmt.Sprintf("ing-role-%d", len(procs)+1), "--rescan-interval", "500ms", "--db-wait", "120s",
			"--migrate-at-start=false", "--partition-maintenance-interval", "1s"}, keep...)
		procs = append(procs, start(t, "ingester", []string{"DATABASE_URL=" + withPassword(ingURL, secret)}, args...))
	}
	ing2 := procs[1]
	colAddr := freeAddr(t)
	col := start(t, "collector", []string{"DATABASE_URL=" + withPassword(pgtest.AsRole(t, admin, "ecomstream_collector"), secret),
		"COLLECTOR_MIGRATE_AT_START=false"},
		"--http-addr", colAddr, "--watch-dir", d.In, "--interval", "1s", "--query-interval", "2s")
	procs = append(procs, col)

	gen := start(t, "generator", nil, genArgs(d, t, 40, "gen-role",
		"--min-records", "50", "--max-records", "200", "--sleep", "0.02", "--bad-rate", "0.05", "--duplicate-rate", "0.05")...)
	if err := gen.wait(2 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	waitFor(t, "retention to expire the old partition, rows, ledger and rejected lines", time.Minute, func() bool {
		var parts, stray, ledger, rejected int64
		err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class WHERE relname = $1),
			(SELECT count(*) FROM events WHERE source_file = 'ancient.csv'),
			(SELECT count(*) FROM ingested_files WHERE file_name = 'ancient.csv'),
			(SELECT count(*) FROM rejected_records WHERE source_file = 'ancient.csv')`, oldPart).Scan(&parts, &stray, &ledger, &rejected)
		return err == nil && parts+stray+ledger+rejected == 0
	})
	waitDrained(t, db, d, counts.Files, time.Minute)
	checkInvariant(t, db, d, &counts)
	// Its start-up pass (which waits for the maintenance lock) and each of its loop's
	// refuse. Waited for: ing-role-1 alone may drain the files before ing-role-2 is up.
	waitFor(t, "ing-role-2, whose events retention is shorter than the policy, to log the refusal", time.Minute, func() bool {
		l := strings.Join(ing2.log.all(), "\n")
		return strings.Contains(l, "retention of events refused") && strings.Contains(l, "ingester migrate")
	})
	// From here on ing-role-2 ingests alone.
	if err := procs[0].stop(); err != nil {
		t.Errorf("ing-role-1: %v", err)
	}
	var ahead int64
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events_p%'`).Scan(&ahead); err != nil || ahead < 8 {
		t.Errorf("the ingesters made %d partitions (want the window: yesterday, today and 7 ahead): %v", ahead, err)
	}

	// The operator's commands, with the ingester's settings and role.
	opsEnv := []string{"DATABASE_URL=" + withPassword(ingURL, secret), "INGESTER_INPUT_DIR=" + d.In,
		"INGESTER_ARCHIVE_DIR=" + d.Archive, "INGESTER_FAILED_DIR=" + d.Failed}
	header := strings.Join(event.Columns, ",")
	bad := strings.ReplaceAll(header, ",price", "") + "\n00000000-0000-4000-8000-000000000001,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000002,42,Books,1\n"
	placeFile(t, d.In, "role-bad.csv", bad)
	waitFor(t, "role-bad.csv in the failed directory", time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(d.Failed, "role-bad.csv.reason.txt"))
		return err == nil
	})
	var outputs []string
	code, out := runIngesterCommand(t, opsEnv, "failed")
	outputs = append(outputs, out)
	if code != 0 || !strings.Contains(out, "role-bad.csv") || !strings.Contains(out, "missing_columns") {
		t.Fatalf("ingester failed as the ingester role: exit %d\n%s", code, out)
	}
	good := header + "\n00000000-0000-4000-8000-0000000000a1,2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000002,42,Books,12.50,1\n"
	if err := os.WriteFile(filepath.Join(d.Failed, "role-bad.csv"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runIngesterCommand(t, opsEnv, "retry", "role-bad.csv")
	outputs = append(outputs, out)
	if code != 0 || !strings.Contains(out, "role-bad.retry1.csv") {
		t.Fatalf("ingester retry as the ingester role: exit %d\n%s", code, out)
	}
	waitFor(t, "the retried file committed (by ing-role-2, its retention refused)", time.Minute, func() bool {
		var n int64
		err := db.QueryRow(ctx, `SELECT count(*) FROM ingested_files WHERE file_name = 'role-bad.retry1.csv' AND outcome = 'ingested'
			AND ingester_instance = 'ing-role-2'`).Scan(&n)
		return err == nil && n == 1
	})
	code, out = runIngesterCommand(t, opsEnv, "status")
	outputs = append(outputs, out)
	if code != 0 || !strings.Contains(out, "ing-role-1") && !strings.Contains(out, "ing-role-2") {
		t.Fatalf("ingester status as the ingester role: exit %d\n%s", code, out)
	}

	// The collector, read-only, measures everything: every measurement succeeded.
	var failing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		seen := 0
		failing = failing[:0]
		if res, err := http.Get("http://" + colAddr + "/metrics"); err == nil {
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if l := sc.Text(); strings.HasPrefix(l, "ecomstream_collector_scrape_success{") {
					seen++
					if !strings.HasSuffix(l, " 1") {
						failing = append(failing, l)
					}
				}
			}
			res.Body.Close()
		}
		if seen > 5 && len(failing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector's measurements as its role: %d seen, failing %v", seen, failing)
		}
	}

	for _, p := range procs {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	logs := strings.Join(outputs, "\n")
	for _, p := range append(procs, gen) {
		logs += strings.Join(p.log.all(), "\n")
	}
	if strings.Contains(logs, secret) {
		t.Error("a password is in a log or a command's output")
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// placeFile writes name into dir atomically, as a producer does.
func placeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
