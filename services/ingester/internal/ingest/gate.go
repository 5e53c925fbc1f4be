package ingest

import (
	"context"
	"sync"
)

// raiseAfter is how many batches in a row must find a load slot free before the gate
// lets one more worker hold a batch.
const raiseAfter = 8

// gate bounds how many workers hold a batch at once: all of them (Options.Workers)
// while their batches find a load slot free, one fewer each time a batch had to wait
// for one (down to one), one more after raiseAfter batches in a row did not wait.
//
// Why: the load slots bound the batches loading at once across every replica, but not
// the batches behind them. Three replicas of two workers on two slots kept four
// batches waiting, their objects claimed, and spread the loading over three times as
// many sessions; PostgreSQL then spent 18-30 % more CPU a row, in its index inserts
// (BenchmarkBucketPipeline, placed drains of 600 objects: one replica with six workers
// cost as much as three of two; three of one worker each came within 0.88-0.91 of one
// replica's rate, three of two at 0.80). A worker that would only wait for a slot is
// better held here, before it takes (and claims) anything: the objects stay free for a
// replica that has a slot. A single replica whose workers fit the slots never waits
// and keeps them all.
type gate struct {
	tokens chan struct{} // one per worker allowed to hold a batch, up to max
	mu     sync.Mutex
	max    int
	limit  int // tokens in circulation, less debt
	debt   int // tokens to swallow as they come back: the limit was lowered while they were out
	calm   int // batches in a row that found a slot free
	set    func(int)
}

// newGate returns a gate of max workers, all let through; set, if not nil, is told
// every new limit.
func newGate(max int, set func(int)) *gate {
	g := &gate{tokens: make(chan struct{}, max), max: max, limit: max, set: set}
	for range max {
		g.tokens <- struct{}{}
	}
	if set != nil {
		set(max)
	}
	return g
}

// acquire waits until the worker may hold a batch; false once ctx ends.
func (g *gate) acquire(ctx context.Context) bool {
	select {
	case <-g.tokens:
		return true
	case <-ctx.Done():
		return false
	}
}

// release gives back what acquire took.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.debt > 0 {
		g.debt--
		return
	}
	g.tokens <- struct{}{} // never blocks: at most max are out
}

// observe records whether a batch had to wait for a load slot and moves the limit.
func (g *gate) observe(waited bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case waited:
		g.calm = 0
		if g.limit == 1 {
			return
		}
		g.limit--
		select {
		case <-g.tokens: // a free one leaves now
		default:
			g.debt++ // else the next to come back does
		}
	case g.limit < g.max:
		g.calm++
		if g.calm < raiseAfter {
			return
		}
		g.calm = 0
		g.limit++
		if g.debt > 0 {
			g.debt--
		} else {
			g.tokens <- struct{}{}
		}
	default:
		return
	}
	if g.set != nil {
		g.set(g.limit)
	}
}

// current is the number of workers let through at once now.
func (g *gate) current() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}
