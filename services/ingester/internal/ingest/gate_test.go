package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

// free is how many more workers the gate would let through now.
func (g *gate) free() int { return len(g.tokens) }

// Each batch that waited for a load slot holds back one more worker, down to one; a
// worker holding a batch when the limit drops keeps it, and its token does not come
// back. Batches that find a slot free let the workers back in, one per raiseAfter.
func TestTheGateHoldsBackAWorkerPerBatchThatWaitedAndLetsThemBackWhenSlotsAreFree(t *testing.T) {
	var limits []int
	g := newGate(3, func(n int) { limits = append(limits, n) })
	ctx := context.Background()
	for range 3 {
		if !g.acquire(ctx) {
			t.Fatal("acquire")
		}
	}
	g.observe(true)
	g.observe(true)
	g.observe(true) // already at one: stays
	if g.current() != 1 || g.free() != 0 {
		t.Fatalf("limit %d, %d free, want 1 and 0", g.current(), g.free())
	}
	for range 3 {
		g.release()
	}
	if g.free() != 1 {
		t.Fatalf("%d workers let through after the three came back, want 1", g.free())
	}
	if !g.acquire(ctx) {
		t.Fatal("acquire")
	}
	for range raiseAfter - 1 {
		g.observe(false)
	}
	if g.current() != 1 {
		t.Fatalf("limit %d after %d batches found a slot free, want still 1", g.current(), raiseAfter-1)
	}
	g.observe(false)
	if g.current() != 2 || g.free() != 1 {
		t.Fatalf("limit %d, %d free after %d calm batches, want 2 and 1", g.current(), g.free(), raiseAfter)
	}
	g.observe(true) // the free token leaves at once
	if g.current() != 1 || g.free() != 0 {
		t.Fatalf("limit %d, %d free, want 1 and 0", g.current(), g.free())
	}
	for range 4 * raiseAfter {
		g.observe(false)
	}
	g.release()
	if g.current() != 3 || g.free() != 3 {
		t.Fatalf("limit %d, %d free, want every worker back (3, 3)", g.current(), g.free())
	}
	if want := []int{3, 2, 1, 2, 1, 2, 3}; !equalInts(limits, want) {
		t.Fatalf("limits told %v, want %v", limits, want)
	}
}

func fmtName(i int) string { return fmt.Sprintf("w-%02d.csv", i) }

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Whatever the order of takes, returns and verdicts, the workers let through plus those
// holding a batch, less the tokens owed, are the limit, and it stays within 1..max.
func TestTheGateNeverLetsMoreWorkersThroughThanItsLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := newGate(4, nil)
	out := 0
	for i := range 20000 {
		switch rng.IntN(3) {
		case 0:
			if g.free() > 0 {
				g.acquire(context.Background())
				out++
			}
		case 1:
			if out > 0 {
				g.release()
				out--
			}
		case 2:
			g.observe(rng.IntN(4) == 0)
		}
		if l := g.current(); l < 1 || l > 4 || g.free()+out-g.debt != l || out-g.debt > l || g.free() > l {
			t.Fatalf("step %d: limit %d, free %d, out %d, owed %d", i, l, g.free(), out, g.debt)
		}
	}
}

// The runner holds back its workers while its batches wait for a load slot, and shows
// it (ecomstream_ingester_workers_limit); while they do not, every worker runs.
func TestTheRunnerHoldsBackWorkersWhileBatchesWaitForALoadSlot(t *testing.T) {
	for _, waited := range []bool{true, false} {
		f := runFast(t, Options{Workers: 3, MaxBatchFiles: 1}, func(src *memory.Source, l *fakeLoader) {
			l.waited = waited
			for i := range 20 {
				src.Put(fmtName(i), body("h", "1"))
			}
		})
		for i := range 20 {
			f.finished(t, fmtName(i))
		}
		want := 3.0
		if waited {
			want = 1
		}
		if got := testutil.ToFloat64(f.m.WorkerLimit); got != want {
			t.Fatalf("batches waited %v: workers_limit %v, want %v", waited, got, want)
		}
		if f.src.Finished(fmtName(0))[0].Action != source.Archive {
			t.Fatalf("%+v", f.src.Finished(fmtName(0)))
		}
	}
}

// crowdLoader is the fake loader with every batch finding the load slots taken (as with
// more replicas than slots); each Load waits for the test's word, outside the fake's
// lock, so the test sees how many run at once.
type crowdLoader struct {
	*fakeLoader
	mu      sync.Mutex
	in      int // Loads running now
	ended   int // Loads returned
	proceed chan struct{}
}

func (c *crowdLoader) Load(ctx context.Context, open load.Opener, items []source.Item) load.Outcome {
	c.mu.Lock()
	c.in++
	c.mu.Unlock()
	select {
	case <-c.proceed:
	case <-ctx.Done():
	}
	o := c.fakeLoader.Load(ctx, open, items)
	o.Waited = true
	c.mu.Lock()
	c.in--
	c.ended++
	c.mu.Unlock()
	return o
}

// running is the Loads running now and those returned.
func (c *crowdLoader) running() (in, ended int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in, c.ended
}

// heldAtTheGate counts the goroutines waiting in gate.acquire.
func heldAtTheGate() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "ingest.(*gate).acquire(")
}

// The gate is in front of the workers, not beside them: once batches have waited for a
// load slot, the workers it holds back take nothing (they wait before the queue, their
// items left for a replica with a slot) and one batch loads at a time. Without the
// acquire in the worker loop the gauge would still read 1 while three batches load.
func TestWorkersHeldBackByTheGateTakeNothing(t *testing.T) {
	src := memory.New(nil)
	const items = 10
	for i := range items {
		src.Put(fmtName(i), body("h", "1"))
	}
	l := &crowdLoader{fakeLoader: newFakeLoader(), proceed: make(chan struct{})}
	f := startFast(t, Options{Workers: 3, MaxBatchFiles: 1}, src, l)

	eventually(t, "all three workers loading at first", func() bool { in, _ := l.running(); return in == 3 })
	for range 3 {
		l.proceed <- struct{}{}
	}
	for n := 3; n < items; n++ {
		eventually(t, fmt.Sprintf("batch %d loading, the two other workers held at the gate", n+1), func() bool {
			in, ended := l.running()
			if ended == n && in > 1 {
				t.Fatalf("%d batches loading at once after every batch waited for a slot, want 1", in)
			}
			return ended == n && in == 1 && heldAtTheGate() == 2 && f.runner.gate.free() == 0
		})
		if ready := f.queue.Ready(); ready != items-n-1 {
			t.Fatalf("%d items ready while batch %d loads, want %d: a held worker took some", ready, n+1, items-n-1)
		}
		l.proceed <- struct{}{}
	}
	for i := range items {
		if fin := f.finished(t, fmtName(i)); fin.Action != source.Archive {
			t.Fatalf("%s: %s", fmtName(i), fin.Action)
		}
	}
	if got := testutil.ToFloat64(f.m.WorkerLimit); got != 1 {
		t.Fatalf("workers_limit %v, want 1", got)
	}
}
