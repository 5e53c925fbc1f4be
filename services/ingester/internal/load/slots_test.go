package load

import (
	"context"
	"fmt"
	"testing"
	"time"

	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// awaitEvent waits for cond, failing at once if stop happens first (a deadline only
// stops a test that would hang; nothing here is timed).
func awaitEvent(t *testing.T, what string, stop <-chan struct{}, stopped string, extra func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case <-stop:
			t.Fatal(stopped + extra())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With every load slot held elsewhere (other replicas loading), a batch claims its files
// and waits: nothing is committed and its files stay claimed, so no other replica reads
// them. The slots released let it load; the slot is its own only until its commit, not
// through the finish that follows (its claim still held).
func TestNoBatchLoadsWhileEverySlotIsHeldElsewhere(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	others, err := pool.Acquire(ctx) // the sessions of two replicas loading now
	if err != nil {
		t.Fatal(err)
	}
	defer others.Release()
	if _, err := others.Exec(ctx, "SELECT pg_advisory_lock($1, 0), pg_advisory_lock($1, 1)", slotKey); err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, t.TempDir(), "slot.csv", row(), row(), row())
	l := &Loader{Pool: pool, Instance: "waiting", MaxRejected: 100, LoadSlots: 2}
	var o Outcome
	loaded := make(chan struct{})
	go func() { o = l.Load(ctx, byPath{}, []input.Item{f}); close(loaded) }()
	t.Cleanup(func() { <-loaded; o.Claim.Release() }) // before the pool closes

	awaitEvent(t, "the batch waiting for a slot", loaded, "the batch loaded while every slot was held", func() string { return fmt.Sprintf(": %s %v", o.Verdict, o.Err) }, func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
			AND query LIKE '%pg_advisory_xact_lock%'`) == 1
	})
	if n := count(t, pool, "SELECT count(*) FROM events"); n != 0 {
		t.Fatalf("%d events committed while every slot was held", n)
	}
	other := &Loader{Pool: pool, Instance: "other", MaxRejected: 100}
	b, claim, err := loadOnce(ctx, other, f)
	if err != nil {
		t.Fatal(err)
	}
	claim.Release()
	if got := b.Files[0].Outcome; got != OutcomeLocked {
		t.Fatalf("another replica found the waiting batch's file %q, want locked", got)
	}

	if _, err := others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	<-loaded
	if o.Verdict != Done || o.Batch.Files[0].Inserted != 3 {
		t.Fatalf("once a slot was free: %s %v %+v", o.Verdict, o.Err, o.Batch)
	}
	var free bool
	if err := others.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, 0) AND pg_try_advisory_lock($1, 1)", slotKey).Scan(&free); err != nil || !free {
		t.Fatalf("a slot still held after the commit (claim not yet released): %v %v", free, err)
	}
}

// LoadSlots 0 sets no bound: a batch loads whatever slots are held.
func TestZeroLoadSlotsSetNoBound(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	others, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer others.Release()
	if _, err := others.Exec(ctx, "SELECT pg_advisory_lock($1, 0)", slotKey); err != nil {
		t.Fatal(err)
	}
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	if b := load(t, l, writeFile(t, t.TempDir(), "free.csv", row())); b.Files[0].Inserted != 1 {
		t.Fatalf("%+v", b.Files[0])
	}
}
