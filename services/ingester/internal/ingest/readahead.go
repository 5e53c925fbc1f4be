package ingest

import (
	"context"
	"io"
	"sync"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// ReadAheader is a source whose Open is a network round trip (a bucket's GET): the
// runner opens the items of a batch up to ReadAhead() ahead of the loader, so each
// one's round trip overlaps the parsing and COPY of the item before it (from the moment
// the batch holds its load slot). A directory's open is a system call and gains nothing
// from it.
type ReadAheader interface {
	ReadAhead() int
}

// readAhead is the opener of one batch: it opens the batch's items in batch order (the
// loader's order), at most n of them opened and not yet handed out at a time, and hands
// each out when the loader opens it. An item the loader asks for in another version than
// was opened ahead, or that was not opened ahead, is opened then. close closes what the
// loader never asked for (already committed, gone).
//
// It opens ahead only the items the loader's claim took (load.ClaimedOpener), once it
// has been told them: another replica holds the others (every replica lists every
// object, and replicas that hear of an object from one notification all try it), and
// opening one of those would read it for nothing. Until then it opens nothing ahead: an
// item the claim opens to hash (one the ledger already knows) is opened then.
type readAhead struct {
	src   source.Source
	ctx   context.Context
	items []source.Item
	n     int

	mu      sync.Mutex
	claimed bool                // told the claim's items: opening ahead may start
	next    int                 // index of the next item to open ahead
	pending map[string]*opening // opened ahead, not yet handed out
	wg      sync.WaitGroup
}

type opening struct {
	it   source.Item
	idx  int // in the batch
	done chan struct{}
	r    io.ReadCloser
	v    source.Version
	err  error
}

func newReadAhead(ctx context.Context, src source.Source, items []source.Item, n int) *readAhead {
	return &readAhead{src: src, ctx: ctx, items: items, n: n, pending: map[string]*opening{}}
}

// Claimed is told the items the claim took, in batch order (every attempt of the batch
// tells it again): only those are opened ahead, from the first. What was opened ahead
// and is not among them is closed.
func (ra *readAhead) Claimed(items []source.Item) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.items, ra.next, ra.claimed = items, 0, true
	at := make(map[string]int, len(items))
	for i, it := range items {
		at[it.Name] = i
	}
	for name, p := range ra.pending {
		if i, ok := at[name]; ok {
			p.idx = i
		} else {
			delete(ra.pending, name)
			ra.discard(p)
		}
	}
	ra.fill()
}

// fill opens items ahead until n are pending or none is left; mu is held.
func (ra *readAhead) fill() {
	for ra.claimed && len(ra.pending) < ra.n && ra.next < len(ra.items) && ra.ctx.Err() == nil {
		it := ra.items[ra.next]
		ra.next++
		if _, dup := ra.pending[it.Name]; dup {
			continue
		}
		o := &opening{it: it, idx: ra.next - 1, done: make(chan struct{})}
		ra.pending[it.Name] = o
		ra.wg.Add(1)
		go func() {
			defer ra.wg.Done()
			defer close(o.done)
			o.r, o.v, o.err = ra.src.Open(ra.ctx, o.it)
		}()
	}
}

// Open hands out the item opened ahead, or opens it now.
func (ra *readAhead) Open(ctx context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	ra.mu.Lock()
	o, ok := ra.pending[it.Name]
	if ok {
		delete(ra.pending, it.Name)
		// The loader opens in batch order: what lies before this one was skipped (locked
		// by another replica, already committed) and frees its slot.
		for name, p := range ra.pending {
			if p.idx < o.idx {
				delete(ra.pending, name)
				ra.discard(p)
			}
		}
	} else if ra.claimed {
		// Opened now, not ahead: what lies before it in the batch was skipped.
		for i := ra.next; i < len(ra.items); i++ {
			if ra.items[i].Name == it.Name {
				ra.next = i + 1
				break
			}
		}
	}
	ra.fill()
	ra.mu.Unlock()
	if ok {
		<-o.done
		if o.it.Version.Same(it.Version) {
			return o.r, o.v, o.err
		}
		if o.err == nil { // another version is asked for: what was opened is not it
			o.r.Close()
		}
	}
	return ra.src.Open(ctx, it)
}

// discard closes p once it is open; mu is held.
func (ra *readAhead) discard(p *opening) {
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		<-p.done
		if p.err == nil {
			p.r.Close()
		}
	}()
}

// close stops opening ahead and closes every item opened ahead and never handed out.
func (ra *readAhead) close() {
	ra.mu.Lock()
	ra.next = len(ra.items)
	left := ra.pending
	ra.pending = map[string]*opening{}
	ra.mu.Unlock()
	ra.wg.Wait()
	for _, o := range left {
		if o.err == nil {
			o.r.Close()
		}
	}
}
