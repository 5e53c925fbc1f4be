package load

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
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
	if _, err := others.Exec(ctx, "SELECT pg_advisory_lock($1, 0), pg_advisory_lock($1, 1)", SlotKey); err != nil {
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
	if !o.Waited {
		t.Fatal("the outcome does not tell that the batch waited for a slot (the runner holds back its workers on it)")
	}
	var free bool
	if err := others.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, 0) AND pg_try_advisory_lock($1, 1)", SlotKey).Scan(&free); err != nil || !free {
		t.Fatalf("a slot still held after the commit (claim not yet released): %v %v", free, err)
	}
}

// A batch with nothing of its own to load (one file another replica holds, one already
// in the ledger) takes no load slot: it settles at once, even with every slot held,
// rather than queueing behind the batches that load (and then committing an empty
// transaction). Replicas that list the same objects claim many such batches.
func TestABatchWithNothingToLoadTakesNoSlot(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	dir := t.TempDir()
	held, done := writeFile(t, dir, "held.csv", row()), writeFile(t, dir, "done.csv", row())
	other := &Loader{Pool: pool, Instance: "other", MaxRejected: 100}
	_, claim, err := loadOnce(ctx, other, done)
	if err != nil {
		t.Fatal(err)
	}
	claim.Release()
	_, claim, err = loadOnce(ctx, other, held) // committed, its claim held (being finished)
	if err != nil {
		t.Fatal(err)
	}
	defer claim.Release()
	others := holdSlots(t, pool, 2)

	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100, LoadSlots: 2}
	var o Outcome
	loaded := make(chan struct{})
	go func() { o = l.Load(ctx, byPath{}, []input.Item{held, done}); close(loaded) }()
	t.Cleanup(func() { <-loaded; o.Claim.Release() })
	t.Cleanup(func() { _, _ = others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); others.Release() }) // first, on a failure
	for settled := false; !settled; {
		select {
		case <-loaded:
			settled = true
		default:
			if count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
				AND query LIKE '%pg_advisory_xact_lock%'`) > 0 {
				t.Fatal("a batch with nothing to load waits for a load slot")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if o.Verdict != Done || o.Batch.Files[0].Outcome != OutcomeLocked || o.Batch.Files[1].Outcome != OutcomeAlreadyCommitted || o.Waited {
		t.Fatalf("%s %v %+v waited %v", o.Verdict, o.Err, o.Batch, o.Waited)
	}
}

// A batch that finds a slot free, and one loaded with no bound, did not wait.
func TestABatchThatFindsASlotFreeDidNotWait(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	others := holdSlots(t, pool, 1)
	t.Cleanup(func() { _, _ = others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); others.Release() })
	dir := t.TempDir()
	for _, l := range []*Loader{{Pool: pool, Instance: "t", MaxRejected: 100, LoadSlots: 2}, {Pool: pool, Instance: "t", MaxRejected: 100}} {
		o := l.Load(ctx, byPath{}, []input.Item{writeFile(t, dir, fmt.Sprintf("free-%d.csv", l.LoadSlots), row())})
		if o.Verdict != Done {
			t.Fatalf("%s %v", o.Verdict, o.Err)
		}
		o.Claim.Release()
		if o.Waited {
			t.Fatalf("LoadSlots %d, one of two held: the outcome says the batch waited", l.LoadSlots)
		}
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
	if _, err := others.Exec(ctx, "SELECT pg_advisory_lock($1, 0)", SlotKey); err != nil {
		t.Fatal(err)
	}
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	if b := load(t, l, writeFile(t, t.TempDir(), "free.csv", row())); b.Files[0].Inserted != 1 {
		t.Fatalf("%+v", b.Files[0])
	}
}

// claimedOpener records when the claim tells it which items will be read, and whether
// the batch's slot was then held (another session's view of the slots' locks).
type claimedOpener struct {
	byPath
	told chan []input.Item
}

func (c *claimedOpener) Claimed(items []input.Item) { c.told <- items }

// A batch waiting for a slot reads nothing ahead: the wait has no bound (a statement
// timeout only restarts it), and a response body left unread that long may be dropped
// by the server or a proxy, failing the batch on a read error counted against its
// objects. The read-ahead is told the claimed items once the slot is held.
func TestNothingIsReadAheadWhileTheBatchWaitsForASlot(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	others := holdSlots(t, pool, 1)
	f := writeFile(t, t.TempDir(), "ahead.csv", row(), row())
	l := &Loader{Pool: pool, Instance: "waiting", MaxRejected: 100, LoadSlots: 1}
	open := &claimedOpener{told: make(chan []input.Item, 4)}
	var o Outcome
	loaded := make(chan struct{})
	go func() { o = l.Load(ctx, open, []input.Item{f}); close(loaded) }()
	t.Cleanup(func() { <-loaded; o.Claim.Release() })
	t.Cleanup(func() { _, _ = others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); others.Release() }) // first, on a failure

	awaitEvent(t, "the batch waiting for a slot", loaded, "the batch loaded while its slot was held", func() string { return fmt.Sprintf(": %s %v", o.Verdict, o.Err) }, func() bool {
		return count(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
			AND query LIKE '%pg_advisory_xact_lock%'`) == 1
	})
	select {
	case items := <-open.told:
		t.Fatalf("told to read %d items ahead while the batch waits for a slot", len(items))
	default:
	}
	if _, err := others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	<-loaded
	if o.Verdict != Done {
		t.Fatalf("%s %v", o.Verdict, o.Err)
	}
	select {
	case items := <-open.told:
		if len(items) != 1 || items[0].Name != f.Name {
			t.Fatalf("told %+v, want the claimed item", items)
		}
	default:
		t.Fatal("the read-ahead was never told the claimed items")
	}
}

// As the least-privileged role (docs/security.md), a batch queues for a slot while every
// slot is held (it reads pg_locks and pg_stat_activity to choose where), and one that
// loads holds one slot, not several, however many are free.
func TestTheIngesterRoleQueuesForASlotAndHoldsOnlyOne(t *testing.T) {
	url, admin := migratedDB(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.AsRole(t, url, "ecomstream_ingester"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const slots = 3
	held := func() int64 {
		return count(t, admin, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
			AND classid = $1::int::oid AND granted`, SlotKey)
	}
	l := &Loader{Pool: pool, Instance: "role", MaxRejected: 100, LoadSlots: slots}
	var during []int64
	open := openerFunc(func(ctx context.Context, it input.Item) (io.ReadCloser, input.Version, error) {
		during = append(during, held()) // inside the batch's transaction
		return byPath{}.Open(ctx, it)
	})
	dir := t.TempDir()
	if o := l.Load(ctx, open, []input.Item{writeFile(t, dir, "one.csv", row())}); o.Verdict != Done {
		t.Fatalf("%s %v", o.Verdict, o.Err)
	} else {
		o.Claim.Release()
	}
	if len(during) != 1 || during[0] != 1 {
		t.Fatalf("slots held while loading: %v, want [1]", during)
	}

	others := holdSlots(t, admin, slots)
	t.Cleanup(others.Release)
	if o := loadAfterAWait(t, admin, others, l, writeFile(t, dir, "two.csv", row())); o.Verdict != Done {
		t.Fatalf("once the slots were free: %s %v", o.Verdict, o.Err)
	}
}

type openerFunc func(ctx context.Context, it input.Item) (io.ReadCloser, input.Version, error)

func (f openerFunc) Open(ctx context.Context, it input.Item) (io.ReadCloser, input.Version, error) {
	return f(ctx, it)
}

// holdSlots holds slots 0 to n-1 on a session of its own, as other replicas loading
// would; the caller unlocks and releases it.
func holdSlots(t *testing.T, pool *pgxpool.Pool, n int) *pgxpool.Conn {
	t.Helper()
	others, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := others.Exec(context.Background(), "SELECT pg_advisory_lock($1, s) FROM generate_series(0, $2 - 1) s", SlotKey, n); err != nil {
		others.Release()
		t.Fatal(err)
	}
	return others
}

// A statement timeout ends the wait for a slot (a long queue) but not the batch: it
// waits again, and loads once a slot frees up, its files claimed all along.
func TestAStatementTimeoutWhileWaitingForASlotWaitsAgain(t *testing.T) {
	url, admin := migratedDB(t)
	ctx := context.Background()
	// The timeout must end the slot's wait, not the claim before it: a claim in a new
	// session (its catalogs and plans loaded on the way) took over 300 ms on a busy host
	// under -race and failed the batch. So the session is primed as the ingester primes
	// its own at start, and the timeout leaves a loaded host room.
	cfg, err := db.Options{StatementTimeout: time.Second}.Config(url)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	others := holdSlots(t, admin, 1)
	canceled := func() int64 { // the waits the timeout ended, as the server counts them
		return count(t, admin, `SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()`)
	}
	before := canceled()
	l := &Loader{Pool: pool, Instance: "timeout", MaxRejected: 100, LoadSlots: 1}
	if n := db.Warm(ctx, pool, 1, l.Prime); n != 1 {
		t.Fatalf("the pool holds %d sessions after Warm, want 1", n)
	}
	f := writeFile(t, t.TempDir(), "timeout.csv", row())
	var o Outcome
	loaded := make(chan struct{})
	go func() { o = l.Load(ctx, byPath{}, []input.Item{f}); close(loaded) }()
	t.Cleanup(func() { <-loaded; o.Claim.Release() })
	t.Cleanup(func() { _, _ = others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); others.Release() }) // first, on a failure
	awaitEvent(t, "two waits ended by the statement timeout", loaded, "the batch gave up or loaded while the slot was held", func() string { return fmt.Sprintf(": %s %v", o.Verdict, o.Err) }, func() bool {
		return canceled() >= before+2
	})
	if _, err := others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	<-loaded
	if o.Verdict != Done || o.Batch.Files[0].Inserted != 1 {
		t.Fatalf("once the slot was free: %s %v", o.Verdict, o.Err)
	}
}

// migratedDB is a migrated test database's URL and a pool on it as the administrator.
func migratedDB(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.DB(t)
	admin, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if _, err := db.Migrate(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	return url, admin
}

// A batch that waited for a slot, met a duplicate key on its direct COPY and went again
// through staging with a slot free at once still waited: the runner holds back its
// workers on the batch, not on its last attempt.
func TestABatchThatWaitedThenWentThroughStagingWaited(t *testing.T) {
	pool := newPool(t)
	dir := t.TempDir()
	stored := row()
	load(t, &Loader{Pool: pool, Instance: "other", MaxRejected: 100}, writeFile(t, dir, "first.csv", stored))
	others := holdSlots(t, pool, 2)
	t.Cleanup(others.Release)
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100, LoadSlots: 2}
	o := loadAfterAWait(t, pool, others, l, writeFile(t, dir, "again.csv", stored, row()))
	if o.Verdict != Done || !o.Batch.Staging || o.RolledBack != 1 || o.Batch.Files[0].Duplicate != 1 {
		t.Fatalf("want a direct COPY rolled back on the duplicate, then staging: %s %v rolled back %d %+v", o.Verdict, o.Err, o.RolledBack, o.Batch)
	}
	if !o.Waited {
		t.Fatal("the outcome forgets the first attempt's wait for a slot (the second found one free)")
	}
}

// loadAfterAWait loads it with l while others holds every slot: once the batch queues for
// a slot (as watch sees the server), it frees them and returns the outcome, whose claim
// is released at the test's end.
func loadAfterAWait(t *testing.T, watch *pgxpool.Pool, others *pgxpool.Conn, l *Loader, it input.Item) Outcome {
	t.Helper()
	ctx := context.Background()
	var o Outcome
	loaded := make(chan struct{})
	go func() { o = l.Load(ctx, byPath{}, []input.Item{it}); close(loaded) }()
	t.Cleanup(func() { <-loaded; o.Claim.Release() })
	t.Cleanup(func() { _, _ = others.Exec(ctx, "SELECT pg_advisory_unlock_all()") }) // first, on a failure
	awaitEvent(t, "the batch waiting for a slot", loaded, "the batch did not wait", func() string { return fmt.Sprintf(": %s %v", o.Verdict, o.Err) }, func() bool {
		return count(t, watch, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
			AND query LIKE '%pg_advisory_xact_lock%'`) == 1
	})
	if _, err := others.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	<-loaded
	return o
}
