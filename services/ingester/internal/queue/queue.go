// Package queue keeps the items waiting to be ingested, whatever source they come from:
// it hands them to workers oldest first, keeps each one's backoff, attempts, parking and
// whether a worker holds it, and decides when an item is complete enough to read. It
// knows nothing of paths or files: it is the source.Sink that discovery feeds, and it
// asks the source (Settled) whether an item found incomplete may be read.
//
// The settle rule (DESIGN.md): an item that arrived complete (a file renamed into place,
// an uploaded object) is ready at once; one written in place is ready only once its
// version has been still for the settle duration, timed on this process's clock (not on
// the mtime, which a writer on another host stamps with its own clock), and the source's
// Settled agrees (for a file: it still has that version and ends with a line terminator).
//
// Cost with many items: Take selects the oldest few with a bounded heap instead of
// sorting every candidate under the lock, and asks the source only about those.
package queue

import (
	"container/heap"
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// Settler is the part of a source the queue needs.
type Settler interface {
	Settled(ctx context.Context, it source.Item) (source.Item, bool)
}

type entry struct {
	source.Item
	complete bool      // arrived complete (renamed, uploaded)
	inflight bool      // handed to a worker
	notUntil time.Time // do not hand out before (retry backoff)
	attempts int
	away     int  // failures the source blamed on itself (Unavailable), counted apart
	parked   bool // failed too often: kept out of Take until it changes or Unpark
	// still is when this process last saw the item's version change (or first saw it).
	still time.Time
	seen  time.Time // last observation, so a listing never drops what an event just added
	// tick, spread and order are the tiebreaks of items whose modification times are
	// equal (see older): the foundTick the item was first found in, a hash of its name
	// seeded per queue, and when it was first found, as a count.
	tick   int64
	spread uint64
	order  uint64
}

// foundTick is the granularity of "found earlier" in older. A listing reports all its
// items within a few milliseconds, one notification arrives at a time: items found in
// one tick were found together.
const foundTick = 100 * time.Millisecond

// Queue is safe for concurrent use by discovery and the workers.
type Queue struct {
	src    Settler
	settle time.Duration
	now    func() time.Time

	mu    sync.Mutex
	items map[string]*entry
	found uint64 // items first found so far: the next entry's order
	seed  maphash.Seed
	wake  chan struct{}
	// done holds the versions of items done since the last listing that began after
	// them (see Done): a listing that read its page before a worker finished an item
	// reports it after, and without this the queue would take it again.
	done map[string]doneVersion
}

// doneVersion is the version of an item Done forgot, and when.
type doneVersion struct {
	v  source.Version
	at time.Time
}

var _ source.Sink = (*Queue)(nil)

// New returns an empty queue whose incomplete items src settles, timed by the wall clock.
func New(src Settler, settle time.Duration) *Queue {
	return NewWithClock(src, settle, time.Now)
}

// NewWithClock is New with the clock the settle rule and retry delays are timed on
// (tests step it by hand).
func NewWithClock(src Settler, settle time.Duration, now func() time.Time) *Queue {
	return &Queue{src: src, settle: settle, now: now, items: map[string]*entry{}, done: map[string]doneVersion{},
		wake: make(chan struct{}, 1), seed: maphash.MakeSeed()}
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Found records an item that exists now (source.Sink). A new version of a known item
// (another version identity) restarts its settle clock and gets a fresh start: attempts
// and parking were the old version's.
func (q *Queue) Found(it source.Item, complete bool) {
	now := q.now()
	q.mu.Lock()
	e, known := q.items[it.Name]
	if d, ok := q.done[it.Name]; ok && !known {
		if d.v.Same(it.Version) {
			q.mu.Unlock() // a listing older than the item's finish: not there any more
			return
		}
		delete(q.done, it.Name) // a new version took the name
	}
	if !known {
		q.found++
		e = &entry{Item: it, still: now, order: q.found,
			tick: now.UnixNano() / int64(foundTick), spread: maphash.String(q.seed, it.Name)}
		q.items[it.Name] = e
	}
	e.seen = now
	if !e.inflight {
		changed := known && !e.Version.Same(it.Version)
		if changed {
			e.still = now
			e.parked, e.attempts = false, 0
		}
		e.Item = it
		// Arriving complete makes an item ready; a later in-place write makes it
		// incomplete again.
		e.complete = complete || (e.complete && !changed)
	}
	q.mu.Unlock()
	q.signal()
}

// Removed forgets an item that left the source (source.Sink).
func (q *Queue) Removed(name string) {
	q.mu.Lock()
	if e, ok := q.items[name]; ok && !e.inflight {
		delete(q.items, name)
	}
	q.mu.Unlock()
}

// Listed ends a full listing that began at began (source.Sink): items not found since
// then and not in a worker's hands are forgotten; what an event added after the listing
// began stays.
func (q *Queue) Listed(began time.Time) {
	q.mu.Lock()
	for name, e := range q.items {
		if !e.inflight && e.seen.Before(began) {
			delete(q.items, name)
		}
	}
	for name, d := range q.done {
		// This listing began after the item was done, so it read the source after the
		// finish: whatever it or a later event reports under the name is there now.
		if d.at.Before(began) {
			delete(q.done, name)
		}
	}
	q.mu.Unlock()
	q.signal()
}

// Aside forgets an entry that discovery moved aside unread (source.Sink); the runner
// wraps it to count and log it.
func (q *Queue) Aside(name, _ string) { q.Removed(name) }

// settled reports whether e may be read now: at once if it arrived complete; otherwise
// once its version has been still for the settle duration and the source agrees. The
// source is asked again each time, so a write whose event was lost restarts the clock.
func (q *Queue) settled(e *entry, now time.Time) bool {
	if e.complete {
		return true
	}
	if now.Sub(e.still) < q.settle {
		return false
	}
	cur, ok := q.src.Settled(context.Background(), e.Item)
	if !cur.Version.Same(e.Version) {
		e.Item, e.still = cur, now
		return false
	}
	return ok
}

// oldestFirst is a max-heap on age order: its root is the youngest of the oldest k.
type oldestFirst []*entry

// older orders items by modification time and, where those are equal, by when they
// were found; items found in the same tick, by their spread (every entry has an order
// of its own, so no tie is left).
//
// Equal times are common where they come whole seconds at a time (an S3 server's
// Last-Modified, a notification's event time): a hundred objects a second share one.
// Ordering those by name handed out, within each second, one producer's objects before
// another's whatever their age; the order they were found in (notifications' arrivals)
// follows their age. But a listing reports its page at once, in key order, and every
// replica reads the same listing: in that order three replicas took the same objects at
// the same moment, and all but one found each of them held by another (a placed drain
// of 600 objects by three ingesters: 1,803 claims found an object locked, 670 found it
// gone, 336 batches for 66 loading transactions). The spread, a hash of the name with
// a seed of this queue's own, orders what was found together differently in each
// replica and puts no producer first.
func older(a, b *entry) bool {
	if !a.ModTime.Equal(b.ModTime) {
		return a.ModTime.Before(b.ModTime)
	}
	if a.tick != b.tick {
		return a.tick < b.tick
	}
	if a.spread != b.spread {
		return a.spread < b.spread
	}
	return a.order < b.order
}

func (h oldestFirst) Len() int           { return len(h) }
func (h oldestFirst) Less(i, j int) bool { return older(h[j], h[i]) }
func (h oldestFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *oldestFirst) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *oldestFirst) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Take hands out up to maxItems ready items, oldest modification time first, stopping
// once their bytes reach maxBytes (at least one item is always taken). They stay in
// flight until Done, Fail, Defer, Park or Changed. The oldest candidates are picked with
// a heap bounded by a small multiple of maxItems, not by sorting every waiting item
// under the lock.
func (q *Queue) Take(maxItems int, maxBytes int64) []source.Item {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	// A few spares beyond maxItems: some candidates turn out not settled.
	k := maxItems + maxItems/4 + 8
	h := make(oldestFirst, 0, k)
	ready := 0
	for _, e := range q.items {
		if !q.ready(e, now) {
			continue
		}
		ready++
		if len(h) < k {
			heap.Push(&h, e)
		} else if older(e, h[0]) {
			h[0] = e
			heap.Fix(&h, 0)
		}
	}
	cands := make([]*entry, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		cands[i] = heap.Pop(&h).(*entry)
	}
	var out []source.Item
	var bytes int64
	more := ready > len(cands)
	for _, e := range cands {
		if len(out) >= maxItems || (len(out) > 0 && bytes+e.Size > maxBytes) {
			more = true
			break
		}
		if !q.settled(e, now) {
			continue
		}
		e.inflight = true
		out = append(out, e.Item)
		bytes += e.Size
	}
	if len(out) > 0 && more {
		q.signal() // more is ready: wake another worker
	}
	return out
}

// Done forgets an item whose outcome is settled (committed and finished, or gone).
//
// Its version is remembered until a listing that began after now ends: a listing
// snapshots the source (a directory read, a bucket's pages) before it reports, so one
// that began before the finish still reports the item after it. Taken again, it cost a
// claim and a read answered "gone" (or, in a bucket shared by replicas, a GET answered
// 404); a test saw the first items of a burst loaded twice, the second time in a large
// batch. The same version reported later (the same bytes uploaded again under the
// name) is taken from the next listing on; a new version at once.
func (q *Queue) Done(name string) {
	q.mu.Lock()
	if e, ok := q.items[name]; ok {
		q.done[name] = doneVersion{e.Version, q.now()}
		delete(q.items, name)
	}
	q.mu.Unlock()
}

// CommittedElsewhere forgets an item that another replica committed, as Done does for
// this one's: the ledger says so (package load's CommittedElsewhere), with the size and
// the modification time of the version committed. An item a worker holds, or whose
// version is another than that (another size, or modified after it: the name was
// written again since), stays. It tells whether the item was forgotten. modified is
// compared to the microsecond, the ledger's precision (a file's modification time has
// nanoseconds).
//
// The size is what tells most new versions apart: the times alone do not within a
// second, where a bucket's listing gives Last-Modified in whole seconds and the ledger
// the committed version's finer time (the producer's mtime, which may lie past
// Last-Modified's second, or a notification's milliseconds).
//
// Why: replicas that list the same source each queue every item, and one that never
// hears of another's finish (a gateway that publishes no removals, turns that leave the
// listing to another replica) claims it later only to find it gone: three replicas
// draining 600 objects claimed 430 that way, and the batches they made loaded 5.6
// objects each instead of 9. A wrong guess (a new version of the same size written
// within the same second, a clock that steps back) costs a delay, never the item: as
// after Done, the version is taken again from the second listing of this replica's own
// that finds it (the first ends the memory of it, Listed), or at once by a replica
// that did not forget it.
func (q *Queue) CommittedElsewhere(name string, size int64, modified time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.items[name]
	if !ok || e.inflight || e.Size != size || e.ModTime.Truncate(time.Microsecond).After(modified) {
		return false
	}
	q.done[name] = doneVersion{e.Version, q.now()}
	delete(q.items, name)
	return true
}

// Len is the number of items the queue holds, in flight included.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Fail puts back an item that failed for a reason of its own: its attempts are counted
// and it is not handed out again before backoff(attempts) has passed. It returns the
// attempts so far (the caller's bound).
func (q *Queue) Fail(name string, backoff func(attempts int) time.Duration) int {
	n, _ := q.putBack(name, func(e *entry) *int { return &e.attempts }, backoff)
	return n
}

// putBack puts back a failed item with the count counter names one higher, held back
// for backoff of that count; it returns the count and the wait (0, 0 if the item is no
// longer queued).
func (q *Queue) putBack(name string, counter func(*entry) *int, backoff func(n int) time.Duration) (int, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.items[name]
	if !ok {
		return 0, 0
	}
	n := counter(e)
	*n++
	e.inflight = false
	wait := backoff(*n)
	e.notUntil = q.now().Add(wait)
	return *n, wait
}

// Attempts returns how many times the item has failed for a reason of its own since it
// was found (or since its last new version).
func (q *Queue) Attempts(name string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.items[name]; ok {
		return e.attempts
	}
	return 0
}

// Unavailable puts back an item the source could not serve for a reason of its own
// (source.ErrUnavailable): no attempt is counted, so it is never given up, but each such
// failure of the item waits longer than the last (backoff(n) after the n-th; a new
// version starts over), so that an outage, or one object a store keeps failing on, is
// asked about ever less often. It returns the wait.
func (q *Queue) Unavailable(name string, backoff func(n int) time.Duration) time.Duration {
	_, wait := q.putBack(name, func(e *entry) *int { return &e.away }, backoff)
	return wait
}

// Defer puts back an item that could not be tried for reasons not its own (locked by
// another replica, the database away): no attempt is counted.
func (q *Queue) Defer(name string, delay time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.items[name]; ok {
		e.inflight = false
		e.notUntil = q.now().Add(delay)
	}
}

// Wake returns a channel that receives when items may have become ready.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

// Backlog returns the items waiting (including those in flight), their bytes and the
// modification time of the oldest.
// ready tells whether e may be taken now, by cheap checks only: the source is asked
// only about the items about to be taken (Take). q.mu is held.
func (q *Queue) ready(e *entry, now time.Time) bool {
	return !e.inflight && !e.parked && !now.Before(e.notUntil) && (e.complete || now.Sub(e.still) >= q.settle)
}

// Ready counts the items Take could take now: not in flight, parked, waiting out a
// retry delay or still settling. The runner shares them among its workers; the backlog
// counts the rest too.
func (q *Queue) Ready() (n int) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.items {
		if q.ready(e, now) {
			n++
		}
	}
	return n
}

func (q *Queue) Backlog() (items int, bytes int64, oldest time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.items {
		items++
		bytes += e.Size
		if oldest.IsZero() || e.ModTime.Before(oldest) {
			oldest = e.ModTime
		}
	}
	return items, bytes, oldest
}

// Park keeps an item that keeps failing out of Take until a new version of it is found
// (a fresh start); it stays in the backlog, so it is seen.
func (q *Queue) Park(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.items[name]; ok {
		e.inflight, e.parked = false, true
	}
}

// Parked returns how many items are parked.
func (q *Queue) Parked() (n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.items {
		if e.parked {
			n++
		}
	}
	return n
}

// Changed puts back an item whose name no longer holds the version that was taken (it
// was replaced or rewritten meanwhile): it settles again like an item written in place
// (the source's Settled reports its new version) and is read as a new one.
func (q *Queue) Changed(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.items[name]; ok {
		e.inflight, e.complete, e.still = false, false, q.now()
		e.parked, e.attempts, e.away, e.notUntil = false, 0, 0, time.Time{}
	}
}
