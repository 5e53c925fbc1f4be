// Package memory is a source whose items are byte slices in a map: the runner's fast
// tests use it to drive every branch of the runner (retry, reject, split, give up,
// changed, gone, settle) without a file system or a database. It keeps the contract of
// source.Source the way a real source must: Open checks the version, Finish finishes
// only the version that was read, and errors can be injected where a real source meets
// them.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

type object struct {
	data     []byte
	v        source.Version
	complete bool
}

// Source is an in-memory source. The zero value is not usable; call New.
type Source struct {
	now func() time.Time

	mu        sync.Mutex
	items     map[string]*object
	etag      int
	changed   chan struct{}
	openErr   map[string][]error
	finishErr map[string][]error
	onOpen    map[string]func()
	opens     map[string]int
	finished  map[string][]source.Finish
}

var _ source.Source = (*Source)(nil)

// New returns an empty source whose versions are stamped with now (the queue's clock).
func New(now func() time.Time) *Source {
	if now == nil {
		now = time.Now
	}
	return &Source{now: now, items: map[string]*object{}, changed: make(chan struct{}, 1),
		openErr: map[string][]error{}, finishErr: map[string][]error{}, onOpen: map[string]func(){},
		opens: map[string]int{}, finished: map[string][]source.Finish{}}
}

func (s *Source) String() string { return "memory" }

func (s *Source) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *Source) put(name string, data []byte, complete bool) source.Item {
	s.mu.Lock()
	s.etag++
	o := &object{data: append([]byte(nil), data...), complete: complete,
		v: source.Version{Size: int64(len(data)), ModTime: s.now(), ETag: fmt.Sprintf("%q", fmt.Sprint(s.etag))}}
	s.items[name] = o
	s.mu.Unlock()
	s.signal()
	return s.item(name, o)
}

func (s *Source) item(name string, o *object) source.Item {
	return source.Item{Name: name, Version: o.v, Path: "memory:" + name}
}

// Put stores a complete new version of name (an object uploaded, a file renamed in).
func (s *Source) Put(name string, data []byte) source.Item { return s.put(name, data, true) }

// Write stores a new version of name that is still being written: Settled says no
// until Complete.
func (s *Source) Write(name string, data []byte) source.Item { return s.put(name, data, false) }

// Complete marks the version of name as written to the end.
func (s *Source) Complete(name string) {
	s.mu.Lock()
	if o, ok := s.items[name]; ok {
		o.complete = true
	}
	s.mu.Unlock()
	s.signal()
}

// Remove takes name out of the source (another replica finished it).
func (s *Source) Remove(name string) {
	s.mu.Lock()
	delete(s.items, name)
	s.mu.Unlock()
	s.signal()
}

// FailOpen makes the next Opens of name fail with errs, one each, in order.
func (s *Source) FailOpen(name string, errs ...error) {
	s.mu.Lock()
	s.openErr[name] = append(s.openErr[name], errs...)
	s.mu.Unlock()
}

// FailFinish makes the next Finishes of name fail with errs, one each, in order.
func (s *Source) FailFinish(name string, errs ...error) {
	s.mu.Lock()
	s.finishErr[name] = append(s.finishErr[name], errs...)
	s.mu.Unlock()
}

// OnOpen runs f once, at the next Open of name, before the version is checked: what a
// producer or another replica does between discovery and reading (Put a new version,
// Remove it).
func (s *Source) OnOpen(name string, f func()) {
	s.mu.Lock()
	s.onOpen[name] = f
	s.mu.Unlock()
}

// Opens returns how many times name was opened (successfully or not).
func (s *Source) Opens(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[name]
}

// Finished returns what Finish did with name, in order (successful finishes only).
func (s *Source) Finished(name string) []source.Finish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]source.Finish(nil), s.finished[name]...)
}

// Has tells whether name is in the source.
func (s *Source) Has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.items[name]
	return ok
}

// Discover tells sink of every item, then again after every change, until ctx ends
// (source.Source). Each telling is a full listing: complete items are found complete,
// the others as written in place, and items gone since are forgotten.
func (s *Source) Discover(ctx context.Context, sink source.Sink) error {
	reported := map[string]bool{}
	for {
		began := s.now()
		s.mu.Lock()
		var found []source.Item
		var complete []bool
		for name, o := range s.items {
			found, complete = append(found, s.item(name, o)), append(complete, o.complete)
		}
		s.mu.Unlock()
		now := map[string]bool{}
		for i, it := range found {
			sink.Found(it, complete[i])
			now[it.Name] = true
		}
		for name := range reported {
			if !now[name] {
				sink.Removed(name)
			}
		}
		reported = now
		sink.Listed(began)
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		}
	}
}

// Open returns the bytes of it's version (source.Source): ErrGone if name is not there,
// ErrChanged if it holds another version, or an injected error.
func (s *Source) Open(_ context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	s.mu.Lock()
	s.opens[it.Name]++
	f := s.onOpen[it.Name]
	delete(s.onOpen, it.Name)
	s.mu.Unlock()
	if f != nil {
		f()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errs := s.openErr[it.Name]; len(errs) > 0 {
		s.openErr[it.Name] = errs[1:]
		return nil, source.Version{}, fmt.Errorf("open %s: %w", it.Path, errs[0])
	}
	o, ok := s.items[it.Name]
	switch {
	case !ok:
		return nil, source.Version{}, source.ErrGone
	case !it.Version.IsZero() && !it.Version.Same(o.v):
		return nil, source.Version{}, fmt.Errorf("open %s: version %s, taken %s: %w", it.Path, o.v.ETag, it.ETag, source.ErrChanged)
	}
	return io.NopCloser(bytes.NewReader(o.data)), o.v, nil
}

// Settled tells whether an item written in place is complete now (source.Source).
func (s *Source) Settled(_ context.Context, it source.Item) (source.Item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.items[it.Name]
	if !ok {
		return it, false
	}
	return s.item(it.Name, o), o.complete && o.v.Same(it.Version)
}

// Finish finishes items whose name still holds the version that was read
// (source.Source): Archive, Delete and Fail take them out, Keep leaves them.
func (s *Source) Finish(_ context.Context, fs []source.Finish) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(fs))
	for i, f := range fs {
		name := f.Item.Name
		if e := s.finishErr[name]; len(e) > 0 {
			s.finishErr[name], errs[i] = e[1:], fmt.Errorf("finish %s: %w", f.Item.Path, e[0])
			continue
		}
		o, ok := s.items[name]
		switch {
		case !ok:
			errs[i] = source.ErrGone
			continue
		case !f.Version.IsZero() && !f.Version.Same(o.v):
			errs[i] = fmt.Errorf("finish %s: %w", f.Item.Path, source.ErrChanged)
			continue
		}
		if f.Action != source.Keep {
			delete(s.items, name)
		}
		s.finished[name] = append(s.finished[name], f)
	}
	return errs
}
