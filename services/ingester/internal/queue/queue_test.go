package queue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

type clock = memory.Clock

func newClock() *clock { return memory.NewClock() }

func names(items []source.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

// item is an item of the given age on c's clock.
func item(name string, c *clock, age time.Duration) source.Item {
	return source.Item{Name: name, Version: source.Version{Size: 10, ModTime: c.Now().Add(-age), ETag: name}}
}

func TestACompleteItemIsTakenWithoutSettling(t *testing.T) {
	c := newClock()
	src := memory.New(c.Now)
	q := queue.NewWithClock(src, time.Hour, c.Now)
	q.Found(src.Put("a.csv", []byte("x\n")), true)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Name != "a.csv" {
		t.Fatalf("a complete item on a clock that never moves: %v", names(got))
	}
}

// An item written in place is taken only once its version has been still for the
// settle duration and the source says it is complete.
func TestAnItemWrittenInPlaceWaitsUntilStillAndComplete(t *testing.T) {
	c := newClock()
	src := memory.New(c.Now)
	q := queue.NewWithClock(src, time.Second, c.Now)
	q.Found(src.Write("w.csv", []byte("half a ro")), false)
	for i := 0; i < 3; i++ { // a new version every half settle: never still long enough
		c.Advance(500 * time.Millisecond)
		q.Found(src.Write("w.csv", []byte(fmt.Sprintf("half a row %d", i))), false)
		if got := q.Take(10, 1<<30); len(got) > 0 {
			t.Fatalf("taken while being written (version %d)", i)
		}
	}
	c.Advance(time.Hour)
	if got := q.Take(10, 1<<30); len(got) > 0 {
		t.Fatal("still, but the source says it is not complete: taken")
	}
	src.Complete("w.csv")
	if got := q.Take(10, 1<<30); len(got) != 1 {
		t.Fatal("still and complete: not taken")
	}
}

// A version the queue did not know, reported by the source's Settled (an event was
// lost), restarts the settle clock.
func TestANewVersionSeenWhenSettlingRestartsTheClock(t *testing.T) {
	c := newClock()
	src := memory.New(c.Now)
	q := queue.NewWithClock(src, time.Second, c.Now)
	q.Found(src.Write("w.csv", []byte("a\n")), false)
	src.Put("w.csv", []byte("a\nb\n")) // complete, but the queue was not told
	c.Advance(time.Second)
	if got := q.Take(10, 1<<30); len(got) > 0 {
		t.Fatal("a version never seen still was taken")
	}
	c.Advance(time.Second)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Size != 4 {
		t.Fatalf("the new version once still: %v", got)
	}
}

func TestOldestComesFirstAndInFlightItemsAreNotHandedOutTwice(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	for i, name := range []string{"c.csv", "a.csv", "b.csv"} {
		q.Found(item(name, c, time.Duration(10-i)*time.Second), true)
	}
	if got := names(q.Take(10, 1<<30)); fmt.Sprint(got) != "[c.csv a.csv b.csv]" {
		t.Fatalf("got %v, want [c.csv a.csv b.csv] (oldest first)", got)
	}
	if again := q.Take(10, 1<<30); len(again) != 0 {
		t.Fatalf("in-flight items handed out twice: %v", names(again))
	}
	q.Defer("a.csv", 0)
	if again := names(q.Take(10, 1<<30)); fmt.Sprint(again) != "[a.csv]" {
		t.Fatalf("deferred item: %v", again)
	}
	if n, _, _ := q.Backlog(); n != 3 {
		t.Fatalf("backlog %d items, want 3", n)
	}
}

// Take picks the oldest of many with a bounded heap: the order must still be exact.
func TestTakeHandsOutTheOldestOfManyInOrder(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	const n = 300
	for i := 0; i < n; i++ {
		j := (i * 7919) % n // found in an order unrelated to age
		q.Found(item(fmt.Sprintf("f%d.csv", j), c, time.Duration(n-j)*time.Second), true)
	}
	var last time.Time
	taken := 0
	for got := q.Take(7, 1<<30); len(got) > 0; got = q.Take(7, 1<<30) {
		for _, it := range got {
			if it.ModTime.Before(last) {
				t.Fatalf("%s handed out after a younger item", it.Name)
			}
			last = it.ModTime
			taken++
		}
	}
	if taken != n {
		t.Fatalf("took %d of %d", taken, n)
	}
}

// Items whose modification times are equal (a bucket's whole seconds: a hundred objects
// a second share one) are handed out in the order they were found (notifications, one
// at a time), which follows their age, not in name order, which put one producer's
// objects before another's.
func TestItemsOfEqualTimesAreHandedOutInTheOrderFound(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	second := c.Now().Truncate(time.Second)
	for _, name := range []string{"lat3-1.csv", "lat1-1.csv", "lat2-1.csv", "lat0-1.csv"} {
		q.Found(source.Item{Name: name, Version: source.Version{Size: 10, ModTime: second, ETag: name}}, true)
		c.Advance(time.Second)
	}
	q.Found(source.Item{Name: "lat1-1.csv", Version: source.Version{Size: 10, ModTime: second, ETag: "lat1-1.csv"}}, true) // found again: keeps its place
	if got := names(q.Take(2, 1<<30)); fmt.Sprint(got) != "[lat3-1.csv lat1-1.csv]" {
		t.Fatalf("got %v, want [lat3-1.csv lat1-1.csv] (found first)", got)
	}
	if got := names(q.Take(2, 1<<30)); fmt.Sprint(got) != "[lat2-1.csv lat0-1.csv]" {
		t.Fatalf("got %v, want [lat2-1.csv lat0-1.csv]", got)
	}
}

// A listing reports many items at once, in the same (key) order to every replica. Items
// found together with equal times are handed out in an order of each queue's own: three
// replicas' first batches from the same listing share few items, where in the listing's
// order they were the same batch (each replica then found the others' items held).
func TestItemsListedTogetherAreHandedOutInADifferentOrderByEachQueue(t *testing.T) {
	c := newClock()
	second := c.Now().Truncate(time.Second)
	const n, batch = 120, 10
	var firsts [3]map[string]bool
	for r := range firsts {
		q := queue.NewWithClock(nil, 0, c.Now)
		for i := range n {
			name := fmt.Sprintf("incoming/gen-%04d.csv", i)
			q.Found(source.Item{Name: name, Version: source.Version{Size: 10, ModTime: second, ETag: name}}, true)
		}
		firsts[r] = map[string]bool{}
		for _, name := range names(q.Take(batch, 1<<30)) {
			firsts[r][name] = true
		}
		if len(firsts[r]) != batch {
			t.Fatalf("replica %d took %d items, want %d", r, len(firsts[r]), batch)
		}
	}
	// Independent orders share 10 × 10 / 120 ≈ 0.8 items a pair on average; a sum of 10
	// (one pair's whole batch) is more than 5 standard deviations out.
	shared := 0
	for a := range firsts {
		for b := a + 1; b < len(firsts); b++ {
			for name := range firsts[a] {
				if firsts[b][name] {
					shared++
				}
			}
		}
	}
	if shared >= batch {
		t.Fatalf("the three first batches share %d items (pairs summed): the replicas would take the same objects", shared)
	}
}

// Fail counts an attempt (Attempts exports it) and keeps the item back for the delay
// its backoff gives; Defer counts none.
func TestFailCountsAttemptsAndBacksOffDeferDoesNot(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	q.Found(item("f.csv", c, 0), true)
	backoff := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	for want := 1; want <= 3; want++ {
		if got := q.Take(10, 1<<30); len(got) != 1 {
			t.Fatalf("attempt %d: not handed out", want)
		}
		if n := q.Fail("f.csv", backoff); n != want || q.Attempts("f.csv") != want {
			t.Fatalf("attempts %d (exported %d), want %d", n, q.Attempts("f.csv"), want)
		}
		c.Advance(time.Duration(want)*time.Minute - time.Second)
		if got := q.Take(10, 1<<30); len(got) != 0 {
			t.Fatalf("handed out before its backoff of %d min", want)
		}
		c.Advance(time.Second)
	}
	q.Take(10, 1<<30)
	q.Defer("f.csv", time.Second)
	if q.Attempts("f.csv") != 3 {
		t.Fatal("Defer counted an attempt")
	}
}

// Unavailable counts no attempt, and each such failure of the item waits longer than
// the last (the backoff of its own count of them); a new version starts over.
func TestUnavailableCountsNoAttemptAndBacksOffPerItem(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	q.Found(item("f.csv", c, 0), true)
	backoff := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	for n := 1; n <= 3; n++ {
		if got := q.Take(10, 1<<30); len(got) != 1 {
			t.Fatalf("failure %d: not handed out", n)
		}
		if d := q.Unavailable("f.csv", backoff); d != time.Duration(n)*time.Minute {
			t.Fatalf("failure %d: wait %s, want %d min", n, d, n)
		}
		if q.Attempts("f.csv") != 0 {
			t.Fatalf("failure %d counted an attempt", n)
		}
		c.Advance(time.Duration(n)*time.Minute - time.Second)
		if got := q.Take(10, 1<<30); len(got) != 0 {
			t.Fatalf("handed out before its wait of %d min", n)
		}
		c.Advance(time.Second)
	}
	q.Take(10, 1<<30)
	q.Changed("f.csv") // a new version took the name
	q.Found(item("f.csv", c, 0), true)
	if got := q.Take(10, 1<<30); len(got) != 1 {
		t.Fatal("the new version was not handed out")
	}
	if d := q.Unavailable("f.csv", backoff); d != time.Minute {
		t.Fatalf("a new version's first failure waits %s, want 1 min", d)
	}
}

// A parked item stays in the backlog, out of Take, until a new version is found, which
// gets a fresh start (no attempts).
func TestAParkedItemWaitsForANewVersion(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	q.Found(item("bad.csv", c, 0), true)
	q.Take(10, 1<<30)
	q.Fail("bad.csv", func(int) time.Duration { return 0 })
	q.Take(10, 1<<30)
	q.Park("bad.csv")
	c.Advance(24 * time.Hour)
	q.Found(item("bad.csv", c, 24*time.Hour), false) // the same version found again
	if got := q.Take(10, 1<<30); len(got) != 0 {
		t.Fatal("a parked item was handed out")
	}
	if n, _, _ := q.Backlog(); n != 1 || q.Parked() != 1 {
		t.Fatalf("backlog %d, parked %d; want 1 and 1", n, q.Parked())
	}
	next := item("bad.csv", c, 0)
	next.ETag = "v2"
	q.Found(next, true)
	if got := q.Take(10, 1<<30); len(got) != 1 || q.Parked() != 0 || q.Attempts("bad.csv") != 0 {
		t.Fatalf("the new version: taken %v, parked %d, attempts %d", names(got), q.Parked(), q.Attempts("bad.csv"))
	}
}

// A listing forgets what it did not find, except an item in a worker's hands or one an
// event added after the listing began.
func TestListedForgetsOnlyWhatItDidNotFind(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	q.Found(item("gone.csv", c, 0), true)
	q.Found(item("held.csv", c, time.Hour), true)
	q.Take(1, 1<<30) // held.csv, the oldest
	c.Advance(time.Second)
	began := c.Now()
	c.Advance(time.Second)
	q.Found(item("new.csv", c, 0), true) // an event during the listing
	q.Listed(began)
	if n, _, _ := q.Backlog(); n != 2 {
		t.Fatalf("backlog %d after the listing, want held.csv and new.csv", n)
	}
	if got := names(q.Take(10, 1<<30)); fmt.Sprint(got) != "[new.csv]" {
		t.Fatalf("after the listing: %v", got)
	}
}

// An item whose name changed under a worker settles again like one written in place,
// with a fresh start.
func TestAChangedItemSettlesAgainWithAFreshStart(t *testing.T) {
	c := newClock()
	src := memory.New(c.Now)
	q := queue.NewWithClock(src, time.Second, c.Now)
	q.Found(src.Put("x.csv", []byte("v1\n")), true)
	q.Take(10, 1<<30)
	q.Fail("x.csv", func(int) time.Duration { return 0 })
	q.Take(10, 1<<30)
	src.Put("x.csv", []byte("v2, longer\n"))
	q.Changed("x.csv")
	if got := q.Take(10, 1<<30); len(got) != 0 || q.Attempts("x.csv") != 0 {
		t.Fatalf("taken at once (%v) or attempts kept (%d)", names(got), q.Attempts("x.csv"))
	}
	c.Advance(time.Second) // Settled reports the new version: the clock starts again
	q.Take(10, 1<<30)
	c.Advance(time.Second)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Size != int64(len("v2, longer\n")) {
		t.Fatalf("the new version: %v", got)
	}
}

// A listing that began before an item was done reports it after: the queue does not
// take that version again. A new version under the name is taken at once, and the same
// version again once a listing that began after the finish has ended.
func TestAListingOlderThanAnItemsFinishDoesNotBringItBack(t *testing.T) {
	c := newClock()
	q := queue.NewWithClock(nil, 0, c.Now)
	a := item("a.csv", c, 0)
	q.Found(a, true)
	began := c.Now() // the listing reads the source here, a.csv still in it
	c.Advance(time.Second)
	if got := names(q.Take(10, 1<<30)); fmt.Sprint(got) != "[a.csv]" {
		t.Fatalf("taken: %v", got)
	}
	q.Done("a.csv")
	q.Found(a, true) // the old listing reports what it read
	q.Listed(began)
	if n, _, _ := q.Backlog(); n != 0 || q.Ready() != 0 {
		t.Fatalf("backlog %d, ready %d after a listing older than the finish: the done item came back", n, q.Ready())
	}

	b := item("b.csv", c, 0)
	q.Found(b, true)
	q.Take(10, 1<<30)
	q.Done("b.csv")
	b2 := b
	b2.ETag, b2.Size = "b.csv, new bytes", 20
	q.Found(b2, true)
	if got := q.Take(10, 1<<30); len(got) != 1 || got[0].Size != 20 {
		t.Fatalf("a new version under a done name: %v", got)
	}

	c.Advance(time.Second)
	q.Listed(c.Now()) // began after a.csv's finish
	q.Found(a, true)  // the same bytes put again
	if got := names(q.Take(10, 1<<30)); fmt.Sprint(got) != "[a.csv]" {
		t.Fatalf("the same version put again after a newer listing: %v", got)
	}
}
