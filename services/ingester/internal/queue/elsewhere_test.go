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
	if !q.CommittedElsewhere("done.csv", committed) {
		t.Fatal("the version committed elsewhere (at the ledger's precision) was kept")
	}
	if q.CommittedElsewhere("newer.csv", newer.ModTime.Add(-time.Second)) {
		t.Fatal("a version modified after the one committed elsewhere was forgotten")
	}
	if q.CommittedElsewhere("held.csv", held.ModTime) {
		t.Fatal("an item a worker holds was forgotten")
	}
	if q.CommittedElsewhere("unknown.csv", c.Now()) {
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
	if !q.CommittedElsewhere("v2.csv", v2.ModTime) {
		t.Fatal("v2.csv kept")
	}
	v2.ETag, v2.ModTime = "v2-new", v2.ModTime.Add(time.Second)
	q.Found(v2, true)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "v2.csv" {
		t.Fatalf("a new version of a name forgotten: took %v, want v2.csv", names(got))
	}
}
