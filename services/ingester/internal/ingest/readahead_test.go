package ingest

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
)

// closeCounting is a memory source that counts the readers it hands out and those closed.
type closeCounting struct {
	*memory.Source
	opened, closed atomic.Int64
}

type countedReader struct {
	io.ReadCloser
	closed *atomic.Int64
}

func (r *countedReader) Close() error { r.closed.Add(1); return r.ReadCloser.Close() }

func (c *closeCounting) Open(ctx context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	r, v, err := c.Source.Open(ctx, it)
	if err != nil {
		return nil, v, err
	}
	c.opened.Add(1)
	return &countedReader{ReadCloser: r, closed: &c.closed}, v, nil
}

// Reading ahead opens each item of a batch once at most, hands each out with its own
// bytes, gives the version asked for (not a stale one), and closes everything the loader
// skipped: every reader opened is closed exactly once.
func TestReadAheadOpensEachItemOnceAndClosesWhatTheLoaderSkips(t *testing.T) {
	src := &closeCounting{Source: memory.New(nil)}
	var items []source.Item
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		items = append(items, src.Put(name, []byte("bytes of "+name)))
	}
	stale := items[6]
	src.Put("g", []byte("new bytes of g")) // g changes after the batch was taken
	ra := newReadAhead(context.Background(), src, items, 2)
	read := func(it source.Item) {
		t.Helper()
		r, _, err := ra.Open(context.Background(), it)
		if err != nil {
			t.Fatalf("open %s: %v", it.Name, err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != "bytes of "+it.Name {
			t.Fatalf("%s read %q", it.Name, b)
		}
	}
	// As the loader does: in batch order, skipping b (locked elsewhere) and d, e.
	read(items[0])
	read(items[2])
	read(items[5])
	if _, _, err := ra.Open(context.Background(), stale); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("the stale version of g: %v, want ErrChanged", err)
	}
	ra.close()
	if o, c := src.opened.Load(), src.closed.Load(); o != c {
		t.Fatalf("%d readers opened, %d closed", o, c)
	}
	for _, it := range items[:6] {
		if n := src.Opens(it.Name); n > 1 {
			t.Errorf("%s opened %d times", it.Name, n)
		}
	}
}
