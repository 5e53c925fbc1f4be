package queue_test

import (
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// An item another replica committed is forgotten, unless a worker holds it or the name
// holds a newer version than the one committed; a listing that read the source before
// that commit does not bring it back, a later one or a new version does.
func TestAnItemCommittedElsewhereIsForgottenUnlessHeldOrNewer(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, time.Hour, c.Now)
	done := item("done.csv", c, time.Minute)
	// Nanoseconds that the ledger (microseconds) does not keep.
	done.ModTime = done.ModTime.Add(789 * time.Nanosecond)
	newer := item("newer.csv", c, time.Minute)
	held := item("held.csv", c, 2*time.Minute) // the oldest: taken first
	for _, it := range []source.Item{done, newer, held} {
		q.Found(it, true)
	}
	if got := q.Take(1, 1<<30); len(got) != 1 || got[0].Name != "held.csv" {
		t.Fatalf("took %v, want held.csv", names(got))
	}
	committed := done.ModTime.Truncate(time.Microsecond)
	if !q.CommittedElsewhere("done.csv", done.Size, committed) {
		t.Fatal("the version committed elsewhere (at the ledger's precision) was kept")
	}
	if q.CommittedElsewhere("newer.csv", newer.Size, newer.ModTime.Add(-time.Second)) {
		t.Fatal("a version modified after the one committed elsewhere was forgotten")
	}
	if q.CommittedElsewhere("held.csv", held.Size, held.ModTime) {
		t.Fatal("an item a worker holds was forgotten")
	}
	if q.CommittedElsewhere("unknown.csv", 10, c.Now()) {
		t.Fatal("an item never found was reported forgotten")
	}
	if n := q.Len(); n != 2 {
		t.Fatalf("queue holds %d items, want 2 (newer.csv, held.csv)", n)
	}

	// A listing that began before the commit reports it again: not taken.
	began := c.Now()
	c.Advance(time.Second)
	q.Found(done, true)
	q.Listed(began.Add(-time.Second))
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "newer.csv" {
		t.Fatalf("took %v, want only newer.csv", names(got))
	}
	q.Done("newer.csv")
	// A listing that began after it: the name is there again, so it is queued.
	c.Advance(time.Second)
	later := c.Now()
	q.Found(done, true)
	q.Listed(later)
	q.Found(done, true)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "done.csv" {
		t.Fatalf("after a later listing took %v, want done.csv", names(got))
	}
	// A new version under a forgotten name is queued at once.
	q.Done("done.csv")
	v2 := item("v2.csv", c, 0)
	q.Found(v2, true)
	if !q.CommittedElsewhere("v2.csv", v2.Size, v2.ModTime) {
		t.Fatal("v2.csv kept")
	}
	v2.ETag, v2.ModTime = "v2-new", v2.ModTime.Add(time.Second)
	q.Found(v2, true)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "v2.csv" {
		t.Fatalf("a new version of a name forgotten: took %v, want v2.csv", names(got))
	}
}

// A new version written over a name within a second of the one another replica
// committed is not forgotten for it when its size differs. A bucket's listing gives
// Last-Modified in whole seconds while the ledger keeps the committed version's finer
// time (the producer's mtime, up to a second past Last-Modified's second, or a
// notification's milliseconds), so the new version's time alone does not tell it from
// the old; forgotten, it would wait for this replica's listings (Listed, then one more)
// and every other replica that forgot it likewise.
func TestANewVersionOfTheSameSecondIsNotForgottenForTheOldOne(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, time.Hour, c.Now)
	second := c.Now().Truncate(time.Second)
	// v1 was committed elsewhere with its producer's mtime, 700 ms into the second;
	// v2, uploaded 200 ms later, is listed at the whole second.
	committed := second.Add(700 * time.Millisecond)
	v2 := source.Item{Name: "s3://b/in/a.csv", Version: source.Version{Size: 120, ModTime: second, ETag: "v2"}}
	q.Found(v2, true)
	if q.CommittedElsewhere("s3://b/in/a.csv", 100, committed) {
		t.Fatal("the new version was forgotten for the old one committed elsewhere (another size)")
	}
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].ETag != "v2" {
		t.Fatalf("took %v, want the new version", got)
	}
	q.Done("s3://b/in/a.csv")
	// The same size: the committed version, as far as the ledger tells.
	v3 := source.Item{Name: "s3://b/in/b.csv", Version: source.Version{Size: 100, ModTime: second, ETag: "v1"}}
	q.Found(v3, true)
	if !q.CommittedElsewhere("s3://b/in/b.csv", 100, committed) {
		t.Fatal("the version committed elsewhere (its size, an earlier whole second) was kept")
	}
}
