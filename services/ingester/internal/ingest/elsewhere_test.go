package ingest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

// A replica forgets the items another replica committed, as the ledger (a real
// PostgreSQL) tells it, a page at a time, and reads each commit once past the overlap:
// it never claims them to find them gone. Its own commits and items not committed stay
// its business.
func TestItemsCommittedElsewhereLeaveTheQueue(t *testing.T) {
	ctx := context.Background()
	src, q, me, other := twoReplicas(t)
	var items []source.Item
	for i := range 5 {
		it := src.Put(fmt.Sprintf("f%d.csv", i), []byte(csvBody("Books")))
		items = append(items, it)
		q.Found(it, true)
	}
	r := New(Options{Workers: 1}, zerolog.Nop(), src, q, me, nil)
	commit := func(l *load.Loader, its ...source.Item) {
		t.Helper()
		o := l.Load(ctx, src, its)
		if o.Verdict != load.Done {
			t.Fatalf("%s: %v", o.Verdict, o.Err)
		}
		o.Claim.Release()
	}
	commit(other, items[0], items[1], items[2])
	commit(me, items[4]) // this replica's own: its workers' business (Done), not the ledger's

	e := &elsewhere{ledger: me, limit: 2} // two pages
	n, err := r.followLedger(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("forgot %d items, want the 3 the other replica committed", n)
	}
	if got := names(q.Take(10, 1<<30)); len(got) != 2 || got[0] != "f3.csv" && got[1] != "f3.csv" {
		t.Fatalf("the queue handed out %v, want f3.csv and f4.csv", got)
	}
	q.Done("f3.csv")
	q.Done("f4.csv")
	if e.since.IsZero() {
		t.Fatal("the read did not move on")
	}
	// Read again: nothing new, nothing forgotten; a later commit elsewhere is read.
	again := src.Put("f5.csv", []byte(csvBody("Toys")))
	q.Found(again, true)
	if n, err := r.followLedger(ctx, e); err != nil || n != 0 {
		t.Fatalf("second read forgot %d (%v), want 0", n, err)
	}
	commit(other, again)
	if n, err := r.followLedger(ctx, e); err != nil || n != 1 {
		t.Fatalf("after another commit elsewhere forgot %d (%v), want 1", n, err)
	}
	if q.Len() != 0 {
		t.Fatalf("queue holds %d items, want none", q.Len())
	}
}

func names(items []source.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

// fakeLedger is a ledger whose visible rows the test sets: the query of load's
// CommittedElsewhere (after since, oldest first, at most limit).
type fakeLedger struct {
	rows  []load.Committed
	asOf  time.Time // the database's clock
	reads int       // reads so far; with asOf set, a zero since reads the minute before it
}

func (f *fakeLedger) CommittedElsewhere(_ context.Context, since time.Time, limit int) ([]load.Committed, time.Time, error) {
	f.reads++
	if since.IsZero() && !f.asOf.IsZero() {
		since = f.asOf.Add(-time.Minute)
	}
	rows := slices.Clone(f.rows)
	slices.SortStableFunc(rows, func(a, b load.Committed) int { return a.At.Compare(b.At) })
	var out []load.Committed
	for _, c := range rows {
		if c.At.After(since) && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, f.asOf, nil
}

// The overlap holds after a read that ended on a full page, and rows that share the
// last instant of a full page are read with the next: neither is skipped.
func TestFollowingTheLedgerSkipsNoRowAtAPageEnd(t *testing.T) {
	ctx := context.Background()
	src := memory.New(nil)
	q := queue.New(src, time.Hour)
	item := func(name string) source.Item {
		it := src.Put(name, []byte(csvBody("Books")))
		q.Found(it, true)
		return it
	}
	row := func(it source.Item, at time.Time) load.Committed {
		return load.Committed{Name: it.Name, Size: it.Size, Modified: it.ModTime, At: at}
	}
	r := New(Options{Workers: 1}, zerolog.Nop(), src, q, nil, nil)
	t0 := time.Now().Truncate(time.Microsecond)
	a, b, c, late := item("a.csv"), item("b.csv"), item("c.csv"), item("late.csv")
	// b and c committed at the same instant; a page of two ends between them.
	ledger := &fakeLedger{rows: []load.Committed{row(a, t0), row(b, t0.Add(time.Millisecond)), row(c, t0.Add(time.Millisecond))}}
	e := &elsewhere{ledger: ledger, limit: 2}
	if n, err := r.followLedger(ctx, e); err != nil || n != 3 {
		t.Fatalf("forgot %d (%v), want a, b and c", n, err)
	}
	// Exactly a full page, then a row stamped before its end becomes visible after it
	// (its transaction committed later): within the overlap, it is read.
	d := item("d.csv")
	ledger.rows = append(ledger.rows, row(d, t0.Add(3*time.Millisecond)))
	e2 := &elsewhere{ledger: &fakeLedger{rows: ledger.rows[2:]}, limit: 2, since: t0}
	if n, err := r.followLedger(ctx, e2); err != nil || n != 1 {
		t.Fatalf("forgot %d (%v), want d", n, err)
	}
	e2.ledger.(*fakeLedger).rows = append(ledger.rows[2:], row(late, t0.Add(2*time.Millisecond)))
	if n, err := r.followLedger(ctx, e2); err != nil || n != 1 {
		t.Fatalf("forgot %d (%v), want the row that became visible late", n, err)
	}
	if q.Len() != 0 {
		t.Fatalf("queue holds %d items, want none", q.Len())
	}
}

// A replica alone (or one whose peers stopped committing: scaled down) moves its read
// on all the same, on the database's clock: otherwise each read, five a second, went
// over every row it committed itself since the last row of another (its own rows are
// only filtered out), a range that grew for as long as it ran alone.
func TestFollowingTheLedgerMovesOnWithNothingCommittedElsewhere(t *testing.T) {
	ctx := context.Background()
	src, q, me, other := twoReplicas(t)
	r := New(Options{Workers: 1}, zerolog.Nop(), src, q, me, nil)
	commit := func(l *load.Loader, it source.Item) {
		t.Helper()
		o := l.Load(ctx, src, []source.Item{it})
		if o.Verdict != load.Done {
			t.Fatalf("%s: %v", o.Verdict, o.Err)
		}
		o.Claim.Release()
	}
	commit(other, src.Put("theirs.csv", []byte(csvBody("Books"))))
	e := &elsewhere{ledger: me, limit: 100}
	if _, err := r.followLedger(ctx, e); err != nil {
		t.Fatal(err)
	}
	first := e.since
	commit(me, src.Put("mine.csv", []byte(csvBody("Toys"))))
	time.Sleep(20 * time.Millisecond)
	if _, err := r.followLedger(ctx, e); err != nil {
		t.Fatal(err)
	}
	if !e.since.After(first) {
		t.Fatalf("a read that found nothing committed elsewhere left the read at %v", e.since)
	}
}

// A replica whose queue is empty reads nothing, and once it holds items again reads
// from the last minute, not every row committed while it was idle.
func TestAnIdleReplicaReadsNoLedgerAndStartsAgainFromTheLastMinute(t *testing.T) {
	ctx := context.Background()
	src := memory.New(nil)
	q := queue.New(src, time.Hour)
	r := New(Options{Workers: 1}, zerolog.Nop(), src, q, nil, nil)
	ledger := &fakeLedger{asOf: time.Now()}
	stopped := time.Now().Add(-time.Hour)
	e := &elsewhere{ledger: ledger, limit: 2, since: stopped}
	for i := range 10 { // an hour of others' commits, five pages
		ledger.rows = append(ledger.rows, load.Committed{Name: fmt.Sprintf("x%d.csv", i), At: stopped.Add(time.Duration(i+1) * time.Minute)})
	}
	if _, err := r.lookElsewhere(ctx, e); err != nil || ledger.reads != 0 {
		t.Fatalf("an empty queue read the ledger %d times (%v)", ledger.reads, err)
	}
	it := src.Put("a.csv", []byte(csvBody("Books")))
	q.Found(it, true)
	if _, err := r.lookElsewhere(ctx, e); err != nil || ledger.reads != 1 {
		t.Fatalf("after an idle hour the ledger was read %d times (%v), want once: the last minute", ledger.reads, err)
	}
}

// A running replica follows the ledger by itself: its workers held (a trigger that
// never comes), another replica's commit of one of its items takes that item out of its
// queue, and the metric counts it.
func TestARunningReplicaForgetsWhatAnotherCommits(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	src := memory.New(nil)
	x := src.Put("x.csv", []byte(csvBody("Books")))
	src.Put("y.csv", []byte(csvBody("Toys")))
	q := queue.New(src, time.Hour)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, q, pool)
	me := &load.Loader{Pool: pool, Instance: "me", MaxRejected: 100}
	r := New(Options{Workers: 1, TriggerInterval: time.Hour}, zerolog.Nop(), src, q, me, m)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	await := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}
	await("the first listing queued both items", func() bool { return q.Len() == 2 })

	other := &load.Loader{Pool: pool, Instance: "other", MaxRejected: 100}
	o := other.Load(ctx, src, []source.Item{x})
	if o.Verdict != load.Done {
		t.Fatalf("%s: %v", o.Verdict, o.Err)
	}
	o.Claim.Release()
	await("x.csv forgotten", func() bool { return q.Len() == 1 })
	if n := testutil.ToFloat64(m.Elsewhere); n != 1 {
		t.Fatalf("files_committed_elsewhere_total %v, want 1", n)
	}
	if got := names(q.Take(10, 1<<30)); !slices.Equal(got, []string{"y.csv"}) {
		t.Fatalf("the queue holds %v, want y.csv", got)
	}
}

// twoReplicas is a queue over an in-memory source and the loaders of two replicas, "me"
// and "other", on one migrated database.
func twoReplicas(t *testing.T) (*memory.Source, *queue.Queue, *load.Loader, *load.Loader) {
	pool := migratedPool(t)
	src := memory.New(nil)
	return src, queue.New(src, time.Hour), &load.Loader{Pool: pool, Instance: "me", MaxRejected: 100},
		&load.Loader{Pool: pool, Instance: "other", MaxRejected: 100}
}
