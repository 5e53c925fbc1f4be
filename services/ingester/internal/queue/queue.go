// Package queue keeps the files of the input directory that are waiting to be ingested,
// hands them to workers oldest first, and decides when a file is complete enough to read.
//
// The settle rule (DESIGN.md): a file renamed into place is complete the moment it
// appears, so it is ready at once; a file written in place (created, then written in
// chunks) is ready only once its size and modification time have been still for the
// settle duration. The watcher tells the two apart (inotify's IN_MOVED_TO versus
// IN_CREATE); a file found only by a rescan is treated as written in place, which can
// cost latency but never a partial read. A file written in place is complete only once it
// is still AND its last byte is a line terminator: a writer that pauses longer than the
// settle duration mid-row must not get the cut-off row committed.
//
// Only regular files are queued (lstat, never following a symlink); anything else named
// like an input file is reported by Rescan so the runner can count it and move it aside.
//
// Cost with many files: a rescan stats only the names it did not know, Take selects the
// oldest few with a bounded heap instead of sorting every candidate, and overflow
// rescans are coalesced into one running at a time.
package queue

import (
	"container/heap"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
)

// File is one candidate file.
type File struct {
	Name    string // base name
	Path    string // full path
	Size    int64
	ModTime time.Time
	// Dev and Ino are the identity the queue saw (lstat): the loader reads the path only
	// if the descriptor it opened is this same regular file. Zero means unknown.
	Dev, Ino uint64
}

// Aside reasons: entries that look like input files but must not be read.
const (
	ReasonBadFileName    = "bad_file_name"    // not UTF-8: no database can record it
	ReasonNotRegularFile = "not_regular_file" // symlink, FIFO, socket or device
)

// Aside is a directory entry that Rescan will not queue, with why.
type Aside struct {
	Name, Reason string
}

type entry struct {
	File
	renamed  bool      // appeared by rename: complete
	inflight bool      // handed to a worker
	notUntil time.Time // do not hand out before (retry backoff)
	attempts int
	parked   bool // failed too often: kept out of Take until it changes or Unpark
	// still is when this process last saw the file's size or mtime change (or first saw
	// it). Settling is timed on our own clock, not on the mtime, which a writer on another
	// host (a network volume) stamps with its own clock.
	still time.Time
	seen  time.Time // last observation, so a rescan never drops what an event just added
}

// Queue is safe for concurrent use by the watcher, the rescanner and the workers.
type Queue struct {
	dir    string
	settle time.Duration
	now    func() time.Time

	mu    sync.Mutex
	files map[string]*entry
	wake  chan struct{}

	rescanning atomic.Bool // an overflow rescan is running
	again      atomic.Bool // another overflow came meanwhile
	overflowWG sync.WaitGroup
	// overflow rescans running now and at most at once (what coalescing bounds)
	overflowNow, overflowPeak atomic.Int32
}

// New returns an empty queue for dir, timed by the wall clock.
func New(dir string, settle time.Duration) *Queue {
	return NewWithClock(dir, settle, time.Now)
}

// NewWithClock is New with the clock the settle rule and retry delays are timed on
// (tests step it by hand).
func NewWithClock(dir string, settle time.Duration, now func() time.Time) *Queue {
	return &Queue{dir: dir, settle: settle, now: now, files: map[string]*entry{}, wake: make(chan struct{}, 1)}
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Renamed records a file that was renamed into the directory: ready at once.
func (q *Queue) Renamed(name string) { q.observe(name, true) }

// Written records a file created or written in place: ready once settled.
func (q *Queue) Written(name string) { q.observe(name, false) }

func (q *Queue) observe(name string, renamed bool) {
	if !event.IsInputFileName(name) || !utf8.ValidString(name) {
		return
	}
	path := filepath.Join(q.dir, name)
	// Lstat: a symlink is never followed; Rescan reports it for moving aside.
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	now := q.now()
	q.mu.Lock()
	e, known := q.files[name]
	if !known {
		e = &entry{File: File{Name: name, Path: path}, still: now}
		q.files[name] = e
	}
	e.seen = now
	if !e.inflight {
		dev, ino := identity(fi)
		changed := known && (e.Size != fi.Size() || !e.ModTime.Equal(fi.ModTime()) || e.Ino != ino || e.Dev != dev)
		if changed {
			e.still = now
			e.parked, e.attempts = false, 0 // new content: a fresh start
		}
		e.Size, e.ModTime, e.Dev, e.Ino = fi.Size(), fi.ModTime(), dev, ino
		// A rename makes a file complete; a later in-place write makes it incomplete again.
		e.renamed = renamed || (e.renamed && !changed)
	}
	q.mu.Unlock()
	q.signal()
}

// Removed forgets a file that left the directory (moved away or deleted).
func (q *Queue) Removed(name string) {
	q.mu.Lock()
	if e, ok := q.files[name]; ok && !e.inflight {
		delete(q.files, name)
	}
	q.mu.Unlock()
}

// Rescan lists the directory: new files are added (as written in place unless already
// known as renamed), vanished ones dropped. It is the safety net for lost inotify
// events (overflow, network file systems) and for files present at start-up. Known
// files are not stat'ed again (Take checks a file on disk before handing it out), so a
// rescan costs what is new, not what is known. It returns the entries named like input
// files that must not be read: names that are not UTF-8 (no database can record them)
// and anything that is not a regular file.
func (q *Queue) Rescan() (aside []Aside, err error) {
	listed := q.now()
	d, err := os.Open(q.dir)
	if err != nil {
		return nil, err
	}
	ents, err := d.ReadDir(-1) // unsorted: order is Take's business, not the listing's
	d.Close()
	if err != nil {
		return nil, err
	}
	seen := make(map[string]struct{}, len(ents))
	var fresh []string
	q.mu.Lock()
	for _, de := range ents {
		name := de.Name()
		if !event.IsInputFileName(name) || de.IsDir() {
			continue
		}
		switch {
		case !utf8.ValidString(name):
			aside = append(aside, Aside{Name: name, Reason: ReasonBadFileName})
			continue
		case !de.Type().IsRegular():
			aside = append(aside, Aside{Name: name, Reason: ReasonNotRegularFile})
			continue
		}
		seen[name] = struct{}{}
		if e, known := q.files[name]; known && !e.parked {
			e.seen = listed
		} else { // new, or parked: a parked file that changed gets a fresh start
			fresh = append(fresh, name)
		}
	}
	q.mu.Unlock()
	for _, name := range fresh {
		q.observe(name, false)
	}
	q.mu.Lock()
	for name, e := range q.files {
		// Only drop what was last seen before the listing began: an event may have added
		// a file after ReadDir returned.
		if _, ok := seen[name]; !ok && !e.inflight && e.seen.Before(listed) {
			delete(q.files, name)
		}
	}
	q.mu.Unlock()
	q.signal()
	return aside, nil
}

// settled reports whether e may be read now: renamed files at once, in-place files once
// their size and mtime have not changed for the settle duration and their last byte is
// a line terminator. For in-place files the disk is checked again, so a write whose
// event was lost restarts the settle clock.
func (q *Queue) settled(e *entry, now time.Time) bool {
	if e.renamed {
		return true
	}
	if now.Sub(e.still) < q.settle {
		return false
	}
	fi, err := os.Lstat(e.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	dev, ino := identity(fi)
	if fi.Size() != e.Size || !fi.ModTime().Equal(e.ModTime) || ino != e.Ino || dev != e.Dev {
		e.Size, e.ModTime, e.Dev, e.Ino, e.still = fi.Size(), fi.ModTime(), dev, ino, now
		return false
	}
	if compress.CodecOf(e.Name) != compress.None {
		// A compressed stream ends without a line end: stillness is all that shows. One
		// read while still being written is truncated and rejected as corrupt, so
		// compressed files are placed by rename (README).
		return true
	}
	return endsWithNewline(e.Path, e.Size)
}

// endsWithNewline tells whether the file's last byte is '\n': a row still being written
// has none yet, however long its writer pauses. It opens with O_NONBLOCK|O_NOFOLLOW so a
// FIFO or symlink swapped in meanwhile can neither block nor redirect it.
func endsWithNewline(path string, size int64) bool {
	if size == 0 {
		return false // created, nothing written yet
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ELOOP):
		return false // gone, or a symlink now: Rescan deals with it
	case err != nil:
		// EACCES, EMFILE, EIO...: hand it out, so the loader meets the error, counts it
		// and retries with backoff, rather than the file waiting here unseen.
		return true
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil && err != io.EOF {
		return true // as above: the loader's read reports it
	}
	return b[0] == '\n'
}

// oldestFirst is a max-heap on age order: its root is the youngest of the oldest k.
type oldestFirst []*entry

func older(a, b *entry) bool {
	if !a.ModTime.Equal(b.ModTime) {
		return a.ModTime.Before(b.ModTime)
	}
	return a.Name < b.Name
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

// Take hands out up to maxFiles ready files, oldest modification time first, stopping
// once their bytes reach maxBytes (at least one file is always taken). They stay
// in flight until Done, Fail, Defer, Park or Changed. The oldest candidates are picked with a heap bounded
// by a small multiple of maxFiles, not by sorting every waiting file under the lock.
func (q *Queue) Take(maxFiles int, maxBytes int64) []File {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	// A few spares beyond maxFiles: some candidates turn out not settled on disk.
	k := maxFiles + maxFiles/4 + 8
	h := make(oldestFirst, 0, k)
	ready := 0
	for _, e := range q.files {
		// Cheap checks only here; the disk is asked only for the files about to be taken.
		if e.inflight || e.parked || now.Before(e.notUntil) || !(e.renamed || now.Sub(e.still) >= q.settle) {
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
	var out []File
	var bytes int64
	more := ready > len(cands)
	for _, e := range cands {
		if len(out) >= maxFiles || (len(out) > 0 && bytes+e.Size > maxBytes) {
			more = true
			break
		}
		if !q.settled(e, now) {
			continue
		}
		e.inflight = true
		out = append(out, e.File)
		bytes += e.Size
	}
	if len(out) > 0 && more {
		q.signal() // more is ready: wake another worker
	}
	return out
}

// Done forgets a file whose outcome is settled (committed and moved away).
func (q *Queue) Done(name string) {
	q.mu.Lock()
	delete(q.files, name)
	q.mu.Unlock()
}

// Fail puts back a file that failed for a reason of its own: its attempts are counted
// and it is not handed out again before backoff(attempts) has passed. It returns the
// attempts so far.
func (q *Queue) Fail(name string, backoff func(attempts int) time.Duration) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.files[name]
	if !ok {
		return 0
	}
	e.inflight = false
	e.attempts++
	e.notUntil = q.now().Add(backoff(e.attempts))
	return e.attempts
}

// Defer puts back a file that could not be tried for reasons not its own (locked by
// another replica, the database away): no attempt is counted.
func (q *Queue) Defer(name string, delay time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.files[name]; ok {
		e.inflight = false
		e.notUntil = q.now().Add(delay)
	}
}

// Wake returns a channel that receives when files may have become ready.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

// Backlog returns the files waiting (including those in flight), their bytes and the
// modification time of the oldest.
func (q *Queue) Backlog() (files int, bytes int64, oldest time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.files {
		files++
		bytes += e.Size
		if oldest.IsZero() || e.ModTime.Before(oldest) {
			oldest = e.ModTime
		}
	}
	return files, bytes, oldest
}

// Overflow is called when the watcher lost events: the directory is listed again. A
// burst of overflows costs at most one running rescan and one more after it, never one
// concurrent listing each.
func (q *Queue) Overflow() {
	q.again.Store(true)
	if !q.rescanning.CompareAndSwap(false, true) {
		return // the running rescan will go again
	}
	q.overflowWG.Add(1)
	go func() {
		defer q.overflowWG.Done()
		for {
			for q.again.Swap(false) {
				if n := q.overflowNow.Add(1); n > q.overflowPeak.Load() {
					q.overflowPeak.Store(n)
				}
				q.Rescan() //nolint:errcheck // the next periodic rescan retries; aside entries wait for it too
				q.overflowNow.Add(-1)
			}
			q.rescanning.Store(false)
			// An overflow that came after the last Swap but saw rescanning still true is
			// picked up here.
			if !q.again.Load() || !q.rescanning.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// WaitOverflow waits for a running overflow rescan (tests, shutdown).
func (q *Queue) WaitOverflow() { q.overflowWG.Wait() }

// Park keeps a file that keeps failing out of Take until it changes on disk (a new
// version gets a fresh start) or Unpark; it stays in the backlog, so it is seen.
func (q *Queue) Park(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.files[name]; ok {
		e.inflight, e.parked = false, true
	}
}

// Parked returns how many files are parked.
func (q *Queue) Parked() (n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.files {
		if e.parked {
			n++
		}
	}
	return n
}

// Changed puts back a file whose path no longer holds the bytes that were loaded (it was
// replaced or rewritten meanwhile): it is read again, once settled, as a new file.
func (q *Queue) Changed(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.files[name]; ok {
		e.inflight, e.renamed, e.still = false, false, q.now()
		e.parked, e.attempts = false, 0
		if fi, err := os.Lstat(e.Path); err == nil {
			e.Size, e.ModTime = fi.Size(), fi.ModTime()
			e.Dev, e.Ino = identity(fi)
		}
	}
}

// identity returns the device and inode of fi (zero where the platform has none).
func identity(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino //nolint:unconvert // Dev is not uint64 on every platform
	}
	return 0, 0
}
