package partition

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

const day = 24 * time.Hour

// The policy `ingester migrate` writes is the settings' windows (off = never); the
// ingester's role cannot write it; a ledger kept less long than the events is refused
// with the settings named.
func TestWritePolicyIsTheSettingsAndTheAdministratorsOnly(t *testing.T) {
	ing, admin := freshDBAndAdmin(t)
	ctx := context.Background()
	if p, err := ReadPolicy(ctx, ing); err != nil || p != (Policy{}) {
		t.Fatalf("the policy after the migrations: %v (%v), want never for every kind", p, err)
	}
	want := Policy{Events: 30 * day, Ledger: 60 * day, Rejected: 36 * time.Hour}
	if err := WritePolicy(ctx, admin, PolicyOf(Options{Retention: 30 * day, LedgerRetention: 60 * day, RejectedRetention: 36 * time.Hour})); err != nil {
		t.Fatal(err)
	}
	if p, err := ReadPolicy(ctx, ing); err != nil || p != want {
		t.Fatalf("the policy read back: %v (%v), want %v", p, err, want)
	}
	if err := WritePolicy(ctx, ing, Policy{Events: time.Second}); err == nil || !strings.Contains(err.Error(), "SQLSTATE 42501") {
		t.Fatalf("the ingester's role wrote the policy, or failed otherwise: %v", err)
	}
	for _, bad := range []Policy{{Events: 30 * day, Ledger: 7 * day}, {Ledger: 7 * day}} {
		err := WritePolicy(ctx, admin, bad)
		if err == nil || !strings.Contains(err.Error(), "INGESTER_LEDGER_RETENTION") || !strings.Contains(err.Error(), "INGESTER_EVENTS_RETENTION") {
			t.Errorf("policy %v: %v, want a refusal naming both settings", bad, err)
		}
	}
	if p, err := ReadPolicy(ctx, ing); err != nil || p != want {
		t.Fatalf("a refused or failed write changed the policy: %v (%v)", p, err)
	}
	// Off again is never again.
	if err := WritePolicy(ctx, admin, Policy{}); err != nil {
		t.Fatal(err)
	}
	if p, err := ReadPolicy(ctx, ing); err != nil || p != (Policy{}) {
		t.Fatalf("the policy after off: %v (%v)", p, err)
	}
}

// An ingester whose retention is shorter than the database's policy (a settings mismatch,
// or stolen credentials) has that step refused: nothing of that kind is removed, the pass
// is logged as an error naming the policy and counted as one, and the rest of the
// maintenance (partitions ahead, the other kinds' retention, the gauges) still runs;
// the next pass does the same, at the next interval, without a crash.
func TestARetentionShorterThanThePolicyIsRefusedLoggedAndTheRestRuns(t *testing.T) {
	p, admin := freshDBAndAdmin(t)
	ctx := context.Background()
	now := time.Now().UTC()
	setPolicy(t, admin, func(o *Options) { o.Retention, o.LedgerRetention, o.RejectedRetention = 30*day, 30*day, 10*day })
	old, _ := Slot(now.Add(-25*day), day) // within the policy, past the ingester's 20 days
	if _, err := p.Exec(ctx, "SELECT public.ecomstream_create_partition($1, $2, $3)", Name(old), old, old.Add(day)); err != nil {
		t.Fatal(err)
	}
	insertAt(t, p, old.Add(time.Hour), 5)
	insertOld(t, p, now, 15, 25) // the rejected line of 15 days is past the policy's 10: it goes

	var logs bytes.Buffer
	short := func(o *Options) { o.Retention, o.LedgerRetention, o.RejectedRetention = 20*day, 21*day, 10*day }
	m := maintainer(p, now, short)
	m.Log = zerolog.New(&logs)
	met := NewMetrics(prometheus.NewRegistry())
	for pass := 1; pass <= 2; pass++ {
		m.Once(ctx, met)
		if got := testutil.ToFloat64(met.passes.WithLabelValues("error")); got != float64(pass) {
			t.Fatalf("pass %d: %v passes counted as errors, want %d", pass, got, pass)
		}
	}
	if got := testutil.ToFloat64(met.passes.WithLabelValues("done")); got != 0 {
		t.Errorf("%v refused passes counted as done", got)
	}
	if got := left(t, p); got != [3]int64{5, 2, 0} {
		t.Errorf("rows left (events, ledger, rejected) %v, want [5 2 0]: the policy keeps the events and the ledger, and the rejected line within it goes", got)
	}
	if got := testutil.ToFloat64(met.coverage); got <= 0 {
		t.Errorf("the coverage gauge %v was not updated by a pass whose retention was refused", got)
	}
	if n := len(names(t, p)); n != 10 { // the old one, yesterday, today and 7 ahead
		t.Errorf("%d partitions, want the old one and the window of 9", n)
	}
	out := logs.String()
	for _, want := range []string{`"level":"error"`, "retention refused by the database's retention policy",
		"retention of events refused", "retention of ledger refused", "ingester migrate", "INGESTER_EVENTS_RETENTION"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "retention of rejected refused") {
		t.Errorf("the rejected lines' retention, within the policy, was refused:\n%s", out)
	}
}

// An existing deployment that pruned only the ledger (INGESTER_LEDGER_RETENTION set, the
// events kept) is the likely one to meet this refusal when it upgrades: the message says
// what the events' "off" means and the two ways out, not "(off, or off or more)".
func TestALedgerWindowWithTheEventsKeptIsRefusedWithTheWaysOut(t *testing.T) {
	err := Policy{Ledger: 90 * day, Rejected: 10 * day}.Check()
	if err == nil {
		t.Fatal("a ledger window with the events kept forever was accepted; the database would refuse every prune of it")
	}
	for _, want := range []string{"INGESTER_LEDGER_RETENTION is 90d", "INGESTER_EVENTS_RETENTION is off", "INGESTER_LEDGER_RETENTION=off",
		"INGESTER_EVENTS_RETENTION=90d"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "off or more") {
		t.Errorf("the refusal %q offers \"off or more\"", err)
	}
}

// A host clock ahead of the database's (6 hours here, the maintainer's injected clock)
// counts its cutoffs from the database's: with windows equal to the policy, its own
// clock's cutoffs would be refused, and would remove rows the policy keeps. Rows an hour
// past each window go; rows 3 hours inside it, past it by the host's clock, stay.
func TestAHostClockAheadOfTheDatabasesCountsFromTheDatabases(t *testing.T) {
	p, admin := freshDBAndAdmin(t)
	ctx := context.Background()
	windows := func(o *Options) { o.Retention, o.LedgerRetention, o.RejectedRetention = 30*day, 30*day, 10*day }
	setPolicy(t, admin, windows)
	real := time.Now().UTC()
	insertAt(t, p, real.Add(-31*day), 1)             // a day past the events' window
	insertAt(t, p, real.Add(-30*day+3*time.Hour), 1) // 3 hours inside it
	for _, at := range []time.Time{real.Add(-30*day - time.Hour), real.Add(-30*day + 3*time.Hour)} {
		if _, err := p.Exec(ctx, `INSERT INTO ingested_files (file_name, sha256, file_created_at, committed_at, records_total,
			records_inserted, records_rejected, records_duplicate, bytes, ingester_instance) VALUES ($1, 'x', $2, $2, 0, 0, 0, 0, 0, 't')`,
			"f"+at.Format("20060102T1504")+".csv", at); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []time.Time{real.Add(-10*day - time.Hour), real.Add(-10*day + 3*time.Hour)} {
		if _, err := p.Exec(ctx, `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message, rejected_at)
			VALUES ('f.csv', 1, 'x', 'bad_event_id', 'm', $1)`, at); err != nil {
			t.Fatal(err)
		}
	}
	r, err := maintainer(p, real.Add(6*time.Hour), windows).Pass(ctx, true)
	if err != nil {
		t.Fatalf("a host clock 6 hours ahead, windows equal to the policy: %v", err)
	}
	if got := left(t, p); got != [3]int64{1, 1, 1} {
		t.Errorf("rows left (events, ledger, rejected) %v, want [1 1 1]: the rows inside the policy by the database's clock stay, the others go", got)
	}
	if r.Deleted[Table] != 1 || r.Deleted["ingested_files"] != 1 || r.Deleted["rejected_records"] != 1 {
		t.Errorf("deleted %v, want one of each", r.Deleted)
	}
}

// A kind's policy row deleted by hand (the administrator's to do) means never: the
// functions refuse every cutoff of it, the ledger's too when the events' row is the one
// gone. `ingester migrate` writes the row back rather than failing on it.
func TestADeletedPolicyRowIsNeverAndMigrateWritesItBack(t *testing.T) {
	p, admin := freshDBAndAdmin(t)
	ctx := context.Background()
	windows := func(o *Options) { o.Retention, o.LedgerRetention, o.RejectedRetention = 30*day, 30*day, 10*day }
	setPolicy(t, admin, windows)
	if _, err := admin.Exec(ctx, "DELETE FROM ecomstream_retention_policy WHERE kind IN ('events', 'rejected')"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"SELECT public.ecomstream_expire_default(now() - interval '31 days')",
		"SELECT public.ecomstream_prune('ingested_files', now() - interval '31 days', 10)",
		"SELECT public.ecomstream_prune('rejected_records', now() - interval '31 days', 10)",
	} {
		if _, err := p.Exec(ctx, s); !IsPolicyRefusal(err) {
			t.Errorf("%s with the events' and the rejected lines' rows deleted: %v, want the policy's refusal", s, err)
		}
	}
	setPolicy(t, admin, windows)
	if got, err := ReadPolicy(ctx, p); err != nil || got != (Policy{Events: 30 * day, Ledger: 30 * day, Rejected: 10 * day}) {
		t.Fatalf("the policy migrate wrote back: %v (%v)", got, err)
	}
	if _, err := p.Exec(ctx, "SELECT public.ecomstream_expire_default(now() - interval '31 days')"); err != nil {
		t.Errorf("within the policy written back: %v", err)
	}
}
