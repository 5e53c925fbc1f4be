package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
