package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/retry"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

// The runner's branches, with the in-memory source and a loader that keeps load's
// protocol without PostgreSQL: these run in the fast tier (go test -short, no database).
// The real-PostgreSQL tests (ingest_test.go, hostile_test.go) stay the proof.

// fakeLoader answers as load.Loader does, from the items' content: a line "poison" makes
// the database refuse the batch's data (Reject), a line "timeout" makes its statement
// time out (Retry, the items' own), a first line other than "h" is a whole-file
// rejection, and every other line is a row. Its ledger (name and checksum) makes a
// committed item already committed when it comes again. down makes the next Loads find
// the database away.
type fakeLoader struct {
	mu      sync.Mutex
	ledger  map[string]ledgerRow
	down    int
	locked  map[string]int // name: the next Loads that find it claimed by another replica
	loads   [][]string     // the names of each Load, in order
	rejects []string
	rows    map[string]int64 // rows committed, per name
	waited  bool             // every Load says it waited for a load slot
}

type ledgerRow struct {
	sum     string
	outcome string
	failure *event.Rejection
}

func newFakeLoader() *fakeLoader {
	return &fakeLoader{ledger: map[string]ledgerRow{}, rows: map[string]int64{}, locked: map[string]int{}}
}

func itemNames(items []source.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

// read opens it as load's reader does: the version read is what gets finished.
func read(ctx context.Context, open load.Opener, fr *load.FileResult) ([]byte, bool) {
	rc, v, err := open.Open(ctx, fr.File)
	switch {
	case errors.Is(err, source.ErrGone):
		fr.Outcome = load.OutcomeGone
	case errors.Is(err, source.ErrChanged):
		fr.Outcome, fr.Err = load.OutcomeChanged, err
	case err != nil:
		fr.Outcome, fr.Err = load.OutcomeRetry, err
	}
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		fr.Outcome, fr.Err = load.OutcomeRetry, err
		return nil, false
	}
	fr.File.Version = v
	return data, true
}

func checksum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func (l *fakeLoader) Load(ctx context.Context, open load.Opener, items []source.Item) load.Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loads = append(l.loads, itemNames(items))
	if l.down > 0 {
		l.down--
		return load.Outcome{Verdict: load.Retry, Stage: "database", After: time.Millisecond, Err: errors.New("dial tcp: connection refused")}
	}
	b := &load.Batch{Committed: time.Now()}
	pending := map[string]ledgerRow{}
	for _, it := range items {
		fr := &load.FileResult{File: it, Outcome: load.OutcomeIngested}
		b.Files = append(b.Files, fr)
		if l.locked[it.Name] > 0 {
			l.locked[it.Name]--
			fr.Outcome = load.OutcomeLocked
			continue
		}
		data, ok := read(ctx, open, fr)
		if !ok {
			continue
		}
		sum := checksum(data)
		if row, ok := l.ledger[it.Name]; ok && row.sum == sum {
			fr.Outcome, fr.Committed, fr.Failure = load.OutcomeAlreadyCommitted, row.outcome, row.failure
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		switch {
		case slices.Contains(lines, "poison"):
			return load.Outcome{Verdict: load.Reject, Reason: load.ReasonDatabaseRejected, Stage: "database",
				Err: errors.New(`new row for relation "events" violates check constraint "no_poison"`)}
		case slices.Contains(lines, "timeout"):
			return load.Outcome{Verdict: load.Retry, Own: true, Stage: "database", Err: errors.New("canceling statement due to statement timeout")}
		case lines[0] != "h":
			fr.Outcome, fr.Failure = load.OutcomeFailed, &event.Rejection{Reason: event.ReasonMissingColumns, Message: "no header"}
		default:
			fr.Total, fr.Inserted = int64(len(lines)-1), int64(len(lines)-1)
		}
		pending[it.Name] = ledgerRow{sum: sum, outcome: fr.Outcome, failure: fr.Failure}
	}
	for name, row := range pending { // committed: all or nothing
		l.ledger[name] = row
	}
	for _, f := range b.Files {
		if _, ok := pending[f.File.Name]; ok {
			l.rows[f.File.Name] += f.Inserted
		}
	}
	return load.Outcome{Verdict: load.Done, Batch: b, Waited: l.waited}
}

func (l *fakeLoader) Reject(ctx context.Context, open load.Opener, it source.Item, rej *event.Rejection) load.Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rejects = append(l.rejects, it.Name)
	fr := &load.FileResult{File: it, Outcome: load.OutcomeFailed, Failure: rej}
	if data, ok := read(ctx, open, fr); ok {
		l.ledger[it.Name] = ledgerRow{sum: checksum(data), outcome: load.OutcomeFailed, failure: rej}
	}
	return load.Outcome{Verdict: load.Done, Batch: &load.Batch{Files: []*load.FileResult{fr}, Committed: time.Now()}}
}

func (l *fakeLoader) loaded(name string) (n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, names := range l.loads {
		if slices.Contains(names, name) {
			n++
		}
	}
	return n
}

// fastRig is a runner over a memory source and a fake loader.
type fastRig struct {
	src    *memory.Source
	loader *fakeLoader
	queue  *queue.Queue
	m      *Metrics
	runner *Runner
}

// fastRules retry an item after a millisecond, three attempts in all.
func fastRules() retry.Policies {
	return retry.Policies{File: retry.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 3, Jitter: 0.5},
		Database: retry.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond}, Locked: time.Millisecond}
}

// runFast starts a runner once place has put the items that wait at its start.
func runFast(t *testing.T, opt Options, place func(*memory.Source, *fakeLoader)) *fastRig {
	t.Helper()
	return runFastOn(t, opt, memory.New(nil), place)
}

// runFastOn is runFast on src (a source on a clock of the test's).
func runFastOn(t *testing.T, opt Options, src *memory.Source, place func(*memory.Source, *fakeLoader)) *fastRig {
	t.Helper()
	l := newFakeLoader()
	if place != nil {
		place(src, l)
	}
	f := startFast(t, opt, src, l)
	f.loader = l
	return f
}

// startFast runs a runner over src and loader until the test ends.
func startFast(t *testing.T, opt Options, src *memory.Source, loader Loader) *fastRig {
	t.Helper()
	q := queue.New(src, 0)
	m := NewMetrics(prometheus.NewRegistry(), q, nil)
	if opt.Retry.File.Base == 0 {
		opt.Retry = fastRules()
	}
	if opt.MaxBatchRecords == 0 {
		opt.MaxBatchRecords = 1000
	}
	r := New(opt, zerolog.Nop(), src, q, loader, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &fastRig{src: src, queue: q, m: m, runner: r}
}

// eventually waits for cond: a generous deadline for goroutines to run, never a
// measurement.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// finished waits until name has been finished and returns how.
func (f *fastRig) finished(t *testing.T, name string) source.Finish {
	t.Helper()
	eventually(t, name+" finished", func() bool { return len(f.src.Finished(name)) > 0 })
	return f.src.Finished(name)[0]
}

func body(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// An item that keeps failing and cannot even be moved aside is parked: out of the way,
// in the backlog (files_parked), and left in its source.
func TestAnItemThatCannotBeMovedAsideIsParked(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("stuck.csv", body("h", "1"))
		src.FailOpen("stuck.csv", syscall.EIO, syscall.EIO, syscall.EIO)
		src.FailFinish("stuck.csv", syscall.EROFS)
		src.Put("fine.csv", body("h", "2"))
	})
	eventually(t, "stuck.csv parked", func() bool { return f.queue.Parked() == 1 })
	f.finished(t, "fine.csv")
	if !f.src.Has("stuck.csv") || len(f.src.Finished("stuck.csv")) != 0 || f.src.Opens("stuck.csv") != 3 {
		t.Fatalf("stuck.csv: in the source %v, finished %v, opened %d times (want 3)", f.src.Has("stuck.csv"), f.src.Finished("stuck.csv"), f.src.Opens("stuck.csv"))
	}
	if n, _, _ := f.queue.Backlog(); n != 1 {
		t.Fatalf("backlog %d, want the parked item", n)
	}
}

// An OS error opening an item says nothing of its content: it is counted as an attempt
// of that item, tried again after its backoff, and loaded whole once the error is gone.
func TestAnItemThatCannotBeOpenedIsRetriedThenLoaded(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("a.csv", body("h", "1", "2"))
		src.FailOpen("a.csv", syscall.EIO, syscall.EMFILE)
	})
	if fin := f.finished(t, "a.csv"); fin.Action != source.Archive {
		t.Fatalf("finished with %s, want archive", fin.Action)
	}
	if got := testutil.ToFloat64(f.m.Retries.WithLabelValues("read")); got != 2 {
		t.Fatalf("read retries %v, want 2", got)
	}
	if f.loader.rows["a.csv"] != 2 || f.src.Opens("a.csv") != 3 {
		t.Fatalf("rows %d (want 2), opens %d (want 3)", f.loader.rows["a.csv"], f.src.Opens("a.csv"))
	}
}

// The source's own trouble (source.ErrUnavailable: a bucket that does not answer)
// counts against no item, however long it lasts: an item that could not be read, and
// one that could not be archived, three times the attempts the policy allows, are
// loaded and archived once the source answers, and nothing is moved aside or parked.
func TestAnUnavailableSourceCountsNoAttemptHoweverLongItLasts(t *testing.T) {
	down := func(n int) []error {
		errs := make([]error, n)
		for i := range errs {
			errs[i] = fmt.Errorf("%w: connection refused", source.ErrUnavailable)
		}
		return errs
	}
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("unread.csv", body("h", "1", "2"))
		src.FailOpen("unread.csv", down(9)...)
		src.Put("unmoved.csv", body("h", "3"))
		src.FailFinish("unmoved.csv", down(9)...)
	})
	for _, name := range []string{"unread.csv", "unmoved.csv"} {
		if fin := f.finished(t, name); fin.Action != source.Archive {
			t.Fatalf("%s finished with %s (%q), want archive", name, fin.Action, fin.Reason)
		}
	}
	if n := f.src.Opens("unread.csv"); n < 10 {
		t.Fatalf("unread.csv opened %d times, want the 9 failures and the read", n)
	}
	if f.loader.rows["unread.csv"] != 2 || f.loader.rows["unmoved.csv"] != 1 {
		t.Fatalf("rows %v", f.loader.rows)
	}
	if got := testutil.ToFloat64(f.m.Aside.WithLabelValues("retries_exhausted")); got != 0 {
		t.Fatalf("%v items moved aside as retries_exhausted", got)
	}
	if got := testutil.ToFloat64(f.m.Retries.WithLabelValues("read")); got < 9 {
		t.Fatalf("read retries %v, want at least 9", got)
	}
	if got := testutil.ToFloat64(f.m.Retries.WithLabelValues("archive")); got != 9 {
		t.Fatalf("archive retries %v, want 9", got)
	}
	if n := f.queue.Parked(); n != 0 {
		t.Fatalf("%d items parked", n)
	}
}

// Attempts are bounded: an item that keeps failing is tried exactly the policy's
// attempts, then moved aside with the stage and the last error as its reason, and
// counted; it never comes back.
func TestAnItemThatKeepsFailingIsMovedAsideWithItsReasonAtTheBound(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("bad.csv", body("h", "1"))
		src.FailOpen("bad.csv", syscall.EIO, syscall.EIO, syscall.EIO, syscall.EIO, syscall.EIO)
	})
	fin := f.finished(t, "bad.csv")
	if fin.Action != source.Fail || !strings.HasPrefix(fin.Reason, "retries_exhausted: read: ") || !strings.Contains(fin.Reason, "input/output error") {
		t.Fatalf("finished %s with reason %q", fin.Action, fin.Reason)
	}
	if n := f.src.Opens("bad.csv"); n != 3 {
		t.Fatalf("opened %d times, want the bound (3)", n)
	}
	eventually(t, "counted as set aside", func() bool { return testutil.ToFloat64(f.m.Aside.WithLabelValues("retries_exhausted")) == 1 })
	if n, _, _ := f.queue.Backlog(); n != 0 {
		t.Fatalf("backlog %d after the item was set aside", n)
	}
}

// An item PostgreSQL refuses does not hold back the items batched with it: the batch
// goes again one item at a time, the others land, and the poison item is committed as a
// whole-file rejection and moved aside with the database's reason.
func TestAPoisonItemIsSplitOutOfItsBatchAndRejected(t *testing.T) {
	f := runFast(t, Options{Workers: 1}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("a.csv", body("h", "1"))
		src.Put("p.csv", body("h", "poison"))
		src.Put("c.csv", body("h", "3"))
	})
	for _, name := range []string{"a.csv", "c.csv"} {
		if fin := f.finished(t, name); fin.Action != source.Archive {
			t.Fatalf("%s: %s, want archive", name, fin.Action)
		}
	}
	fin := f.finished(t, "p.csv")
	if fin.Action != source.Fail || !strings.HasPrefix(fin.Reason, load.ReasonDatabaseRejected+": ") {
		t.Fatalf("poison: %s with reason %q", fin.Action, fin.Reason)
	}
	f.loader.mu.Lock()
	defer f.loader.mu.Unlock()
	if len(f.loader.loads[0]) != 3 || !slices.Equal(f.loader.rejects, []string{"p.csv"}) {
		t.Fatalf("loads %v rejects %v: want one batch of three, then p.csv rejected", f.loader.loads, f.loader.rejects)
	}
	if f.loader.ledger["p.csv"].outcome != load.OutcomeFailed {
		t.Fatal("the rejection of p.csv was not committed")
	}
}

// A batch whose statement times out is the items' own trouble but no verdict on their
// content: it is split, the other items land, and the slow one counts attempts and is
// moved aside with the timeout as its reason, never committed.
func TestAStatementTimeoutIsSplitOutAndCountedNotRejected(t *testing.T) {
	f := runFast(t, Options{Workers: 1}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("slow.csv", body("h", "timeout"))
		src.Put("a.csv", body("h", "1"))
	})
	f.finished(t, "a.csv")
	fin := f.finished(t, "slow.csv")
	if fin.Action != source.Fail || !strings.HasPrefix(fin.Reason, "retries_exhausted: database: ") {
		t.Fatalf("slow: %s with reason %q", fin.Action, fin.Reason)
	}
	if _, ok := f.loader.ledger["slow.csv"]; ok || len(f.loader.rejects) != 0 {
		t.Fatal("a timeout was committed as a rejection")
	}
}

// The database away blames no item: no attempt is counted, nothing is moved aside
// however long it lasts, and the items land once it is back.
func TestTheDatabaseAwayBlamesNoItem(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, l *fakeLoader) {
		src.Put("a.csv", body("h", "1"))
		l.down = 5 // more than the three attempts an item may fail
	})
	if fin := f.finished(t, "a.csv"); fin.Action != source.Archive {
		t.Fatalf("finished with %s", fin.Action)
	}
	for _, stage := range []string{"read", "database", "archive"} {
		if got := testutil.ToFloat64(f.m.Retries.WithLabelValues(stage)); got != 0 {
			t.Fatalf("%s attempts counted: %v", stage, got)
		}
	}
	if got := testutil.ToFloat64(f.m.Errors.WithLabelValues("database")); got != 5 {
		t.Fatalf("database errors %v, want 5", got)
	}
}

// ErrChanged: the name holds another version than the one taken. Nothing of it is read
// then; the new version settles and is loaded as such, and only that version is finished.
func TestAnItemChangedBeforeItIsReadIsLoadedAsItsNewVersion(t *testing.T) {
	var next source.Item
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("x.csv", body("h", "old"))
		src.OnOpen("x.csv", func() { next = src.Put("x.csv", body("h", "new", "rows")) })
	})
	fin := f.finished(t, "x.csv")
	if fin.Action != source.Archive || !fin.Version.Same(next.Version) {
		t.Fatalf("finished %s version %+v, want archive of the new version %+v", fin.Action, fin.Version, next.Version)
	}
	if f.loader.rows["x.csv"] != 2 || testutil.ToFloat64(f.m.Retries.WithLabelValues("read")) != 0 {
		t.Fatalf("rows %d (want the new version's 2); a change counted as an attempt", f.loader.rows["x.csv"])
	}
}

// ErrGone: another replica finished the item first. It is forgotten: nothing committed,
// nothing finished, nothing counted against it.
func TestAnItemGoneBeforeItIsReadIsForgotten(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("g.csv", body("h", "1"))
		src.OnOpen("g.csv", func() { src.Remove("g.csv") })
	})
	eventually(t, "g.csv forgotten", func() bool { n, _, _ := f.queue.Backlog(); return f.src.Opens("g.csv") > 0 && n == 0 })
	if len(f.src.Finished("g.csv")) != 0 || len(f.loader.ledger) != 0 {
		t.Fatal("a gone item was finished or committed")
	}
	if n := testutil.ToFloat64(f.m.Skipped.WithLabelValues(load.OutcomeGone)); n != 1 {
		t.Fatalf("files_skipped_total{outcome=gone} %v, want 1", n)
	}
}

// An item found incomplete (written in place) is not read until its source says it is
// complete, while a complete item found with it is loaded at once.
func TestAnItemWrittenInPlaceIsReadOnlyOnceComplete(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Write("w.csv", body("h", "1"))
		src.Put("b.csv", body("h", "2"))
	})
	f.finished(t, "b.csv") // taken by a Take that saw w.csv too
	if n := f.loader.loaded("w.csv"); n != 0 {
		t.Fatalf("an incomplete item was loaded %d times", n)
	}
	f.src.Complete("w.csv")
	if fin := f.finished(t, "w.csv"); fin.Action != source.Archive {
		t.Fatalf("finished with %s", fin.Action)
	}
}

// An item another replica holds is its business: it is looked at again later without an
// attempt counted against it, however often that happens.
func TestAnItemLockedByAnotherReplicaCountsNoAttempt(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, l *fakeLoader) {
		src.Put("l.csv", body("h", "1"))
		l.locked["l.csv"] = 5 // more than the three attempts an item may fail
	})
	if fin := f.finished(t, "l.csv"); fin.Action != source.Archive {
		t.Fatalf("finished with %s", fin.Action)
	}
	if f.loader.loaded("l.csv") != 6 || testutil.ToFloat64(f.m.Retries.WithLabelValues("read"))+testutil.ToFloat64(f.m.Retries.WithLabelValues("database")) != 0 {
		t.Fatalf("loads %d (want 6), or an attempt was counted", f.loader.loaded("l.csv"))
	}
	if n := testutil.ToFloat64(f.m.Skipped.WithLabelValues(load.OutcomeLocked)); n != 5 {
		t.Fatalf("files_skipped_total{outcome=locked} %v, want 5", n)
	}
}

// A finish that fails is retried (stage archive); the ledger makes the next load a no-op,
// so the rows are committed once.
func TestAFailedFinishIsRetriedAndTheLedgerPreventsASecondLoad(t *testing.T) {
	f := runFast(t, Options{}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("f.csv", body("h", "1", "2"))
		src.FailFinish("f.csv", syscall.EIO)
	})
	f.finished(t, "f.csv")
	if f.loader.rows["f.csv"] != 2 || f.loader.loaded("f.csv") != 2 {
		t.Fatalf("rows %d (want 2, once), loads %d (want 2: the second already committed)", f.loader.rows["f.csv"], f.loader.loaded("f.csv"))
	}
	eventually(t, "archive retry counted", func() bool { return testutil.ToFloat64(f.m.Retries.WithLabelValues("archive")) == 1 })
}

// The ledger decides where an item goes: in delete mode a loaded item is deleted, a
// rejected one is moved aside with its reason, never deleted.
func TestDeleteModeNeverDeletesARejectedItem(t *testing.T) {
	f := runFast(t, Options{OnSuccess: source.Delete}, func(src *memory.Source, _ *fakeLoader) {
		src.Put("good.csv", body("h", "1"))
		src.Put("nohead.csv", body("x", "1"))
	})
	if fin := f.finished(t, "good.csv"); fin.Action != source.Delete {
		t.Fatalf("good: %s, want delete", fin.Action)
	}
	if fin := f.finished(t, "nohead.csv"); fin.Action != source.Fail || !strings.HasPrefix(fin.Reason, event.ReasonMissingColumns+": ") {
		t.Fatalf("rejected: %s with reason %q, want fail", fin.Action, fin.Reason)
	}
}

// A source that cannot start discovery stops the runner with its error.
func TestRunReturnsTheSourcesStartError(t *testing.T) {
	q := queue.New(nil, 0)
	r := New(Options{}, zerolog.Nop(), failing{}, q, newFakeLoader(), NewMetrics(prometheus.NewRegistry(), q, nil))
	if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot list") {
		t.Fatalf("Run: %v", err)
	}
}

type failing struct{ *memory.Source }

func (failing) String() string { return "failing" }
func (failing) Discover(context.Context, source.Sink) error {
	return errors.New("cannot list")
}

// What waits is shared among the workers: a burst found by one listing is loaded by every
// worker at once, no batch taking more than its share (here 10 items, 2 workers: 5).
func TestABurstIsSharedAmongTheWorkers(t *testing.T) {
	names := []string{"a.csv", "b.csv", "c.csv", "d.csv", "e.csv", "f.csv", "g.csv", "h.csv", "i.csv", "j.csv"}
	f := runFast(t, Options{Workers: 2, MaxBatchFiles: 500}, func(src *memory.Source, _ *fakeLoader) {
		for _, n := range names {
			src.Put(n, body("h", "1"))
		}
	})
	for _, n := range names {
		f.finished(t, n)
	}
	f.loader.mu.Lock()
	defer f.loader.mu.Unlock()
	for _, batch := range f.loader.loads {
		if len(batch) > 5 {
			t.Fatalf("a batch of %d items %v: more than its share (5) of the 10 waiting", len(batch), batch)
		}
	}
}

// A burst is shared by what can be taken, not by the whole backlog: items parked (or in
// flight, or waiting out a retry delay) are not there to be shared, and counting them
// let one worker take the whole burst while the other idled.
func TestABurstIsSharedAmongTheWorkersWhateverIsParked(t *testing.T) {
	f := runFast(t, Options{Workers: 2, MaxBatchFiles: 500}, func(src *memory.Source, _ *fakeLoader) {
		for i := range 10 {
			n := fmt.Sprintf("stuck%d.csv", i)
			src.Put(n, body("h", "1"))
			src.FailOpen(n, syscall.EIO, syscall.EIO, syscall.EIO)
			src.FailFinish(n, syscall.EROFS)
		}
	})
	eventually(t, "the stuck items parked", func() bool { return f.queue.Parked() == 10 })
	burst := map[string]bool{}
	for i := range 10 {
		n := fmt.Sprintf("new%d.csv", i)
		burst[n] = true
		f.src.Put(n, body("h", "1"))
	}
	for n := range burst {
		f.finished(t, n)
	}
	f.loader.mu.Lock()
	defer f.loader.mu.Unlock()
	for _, batch := range f.loader.loads {
		k := 0
		for _, n := range batch {
			if burst[n] {
				k++
			}
		}
		if k > 5 {
			t.Fatalf("a batch of %d of the burst's 10 items: more than its share (5), the 10 parked counted as waiting", k)
		}
	}
}

// The oldest items of a burst go first in small batches: a batch holds at most
// burstStart items more than were taken before it (items go oldest first, so that is its
// oldest item's place in the burst), and sizes double, so a burst of a hundred still
// takes a handful of batches rather than a hundred.
func TestTheOldestOfABurstAreCommittedInSmallBatchesFirst(t *testing.T) {
	const n = 100
	c := memory.NewClock()
	f := runFastOn(t, Options{Workers: 2, MaxBatchFiles: 500, MaxBatchRecords: 1 << 20}, memory.New(c.Now), func(src *memory.Source, _ *fakeLoader) {
		for i := range n {
			src.Put(fmt.Sprintf("f%03d.csv", i), body("h", "1")) // oldest first
			c.Advance(10 * time.Millisecond)
		}
	})
	for i := range n {
		f.finished(t, fmt.Sprintf("f%03d.csv", i))
	}
	f.loader.mu.Lock()
	defer f.loader.mu.Unlock()
	loaded := map[string]int{}
	for _, batch := range f.loader.loads {
		for _, name := range batch {
			if loaded[name]++; loaded[name] > 1 {
				t.Fatalf("%s loaded twice: a listing that read the source before its finish brought it back; loads %v", name, f.loader.loads)
			}
		}
	}
	for _, batch := range f.loader.loads {
		oldest := n
		for _, name := range batch {
			var k int
			if _, err := fmt.Sscanf(name, "f%03d.csv", &k); err != nil {
				t.Fatal(err)
			}
			oldest = min(oldest, k)
		}
		if len(batch) > burstStart+oldest {
			t.Fatalf("a batch of %d items whose oldest is the burst's item %d: more than %d; loads %v", len(batch), oldest, burstStart+oldest, f.loader.loads)
		}
	}
	largest := 0
	for _, batch := range f.loader.loads {
		largest = max(largest, len(batch))
	}
	if largest < n/4 {
		t.Fatalf("batches of %d items at most for a burst of %d: sizes do not grow", largest, n)
	}
}
