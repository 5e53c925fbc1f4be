// Package sourcetest is the contract every source.Source keeps, as tests: a new source
// (a bucket, ...) runs Run against itself and gets the same checks as the directory and
// the in-memory source. It checks what the runner relies on: discovery finds what is
// there, Open reads exactly the version found and refuses any other (ErrChanged) or none
// (ErrGone), and Finish takes out only the version that was read, once.
package sourcetest

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// Harness is a source under test and the producer's hands on it.
type Harness struct {
	Source source.Source
	// Put places name holding data, complete (renamed into place, uploaded), replacing
	// what the name held.
	Put func(name string, data []byte)
	// Remove takes name away (as another replica finishing it would).
	Remove func(name string)
}

// recorder is a sink that keeps the last item found under each name.
type recorder struct {
	mu     sync.Mutex
	found  map[string]source.Item
	listed chan struct{}
	once   sync.Once
}

func (r *recorder) Found(it source.Item, _ bool) {
	r.mu.Lock()
	r.found[it.Name] = it
	r.mu.Unlock()
}
func (r *recorder) Removed(string)       {}
func (r *recorder) Aside(string, string) {}
func (r *recorder) Listed(time.Time)     { r.once.Do(func() { close(r.listed) }) }

// discover runs one discovery until its first complete listing and returns what it
// found.
func discover(t *testing.T, src source.Source) map[string]source.Item {
	t.Helper()
	r := &recorder{found: map[string]source.Item{}, listed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Discover(ctx, r) }()
	select {
	case <-r.listed:
	case err := <-done:
		cancel()
		t.Fatalf("discovery ended before its first listing: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("no complete listing within 30 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("discovery: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.found
}

func read(t *testing.T, src source.Source, it source.Item) ([]byte, source.Version, error) {
	t.Helper()
	rc, v, err := src.Open(context.Background(), it)
	if err != nil {
		return nil, v, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", it.Name, err)
	}
	return b, v, nil
}

// Run checks the contract on sources newHarness makes, a fresh one per check.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("discovery finds what is there and Open reads the version found", func(t *testing.T) {
		h := newHarness(t)
		h.Put("a.csv", []byte("h\n1\n"))
		h.Put("b.csv", []byte("h\n1\n2\n"))
		found := discover(t, h.Source)
		if len(found) != 2 || found["a.csv"].Version.IsZero() {
			t.Fatalf("found %v, want a.csv and b.csv with their versions", found)
		}
		b, v, err := read(t, h.Source, found["b.csv"])
		if err != nil || string(b) != "h\n1\n2\n" || !v.Same(found["b.csv"].Version) {
			t.Fatalf("Open: %q, version %+v (found %+v), %v", b, v, found["b.csv"].Version, err)
		}
	})
	t.Run("Open refuses another version (ErrChanged) and a name gone (ErrGone)", func(t *testing.T) {
		h := newHarness(t)
		h.Put("a.csv", []byte("h\n1\n"))
		h.Put("b.csv", []byte("h\n1\n"))
		found := discover(t, h.Source)
		h.Put("a.csv", []byte("h\nanother version\n"))
		if _, _, err := read(t, h.Source, found["a.csv"]); !errors.Is(err, source.ErrChanged) {
			t.Fatalf("Open of a replaced item: %v, want ErrChanged", err)
		}
		h.Remove("b.csv")
		if _, _, err := read(t, h.Source, found["b.csv"]); !errors.Is(err, source.ErrGone) {
			t.Fatalf("Open of a removed item: %v, want ErrGone", err)
		}
	})
	t.Run("Finish takes out only the version read, once", func(t *testing.T) {
		h := newHarness(t)
		h.Put("a.csv", []byte("h\n1\n"))
		h.Put("b.csv", []byte("h\n1\n"))
		h.Put("c.csv", []byte("h\n1\n"))
		found := discover(t, h.Source)
		h.Put("b.csv", []byte("h\nthe next version\n"))
		fin := func(name string, a source.Action) source.Finish {
			return source.Finish{Item: found[name], Version: found[name].Version, Action: a, Reason: "test: why"}
		}
		errs := h.Source.Finish(context.Background(), []source.Finish{fin("a.csv", source.Archive), fin("b.csv", source.Archive), fin("c.csv", source.Fail)})
		if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], source.ErrChanged) || errs[2] != nil {
			t.Fatalf("Finish: %v, want nil, ErrChanged, nil", errs)
		}
		if err := h.Source.Finish(context.Background(), []source.Finish{fin("a.csv", source.Archive)})[0]; !errors.Is(err, source.ErrGone) {
			t.Fatalf("Finish of an item already finished: %v, want ErrGone", err)
		}
		again := discover(t, h.Source)
		if _, ok := again["a.csv"]; ok || len(again) != 1 {
			t.Fatalf("after Finish, discovery found %v, want only b.csv's next version", again)
		}
		if b, _, err := read(t, h.Source, again["b.csv"]); err != nil || string(b) != "h\nthe next version\n" {
			t.Fatalf("the next version: %q, %v", b, err)
		}
	})
}
