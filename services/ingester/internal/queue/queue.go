// Package queue keeps the files of the input directory that are waiting to be ingested,
// hands them to workers oldest first, and decides when a file is complete enough to read.
//
// The settle rule (DESIGN.md): a file renamed into place is complete the moment it
// appears, so it is ready at once; a file written in place (created, then written in
// chunks) is ready only once its size and modification time have been still for the
// settle duration. The watcher tells the two apart (inotify's IN_MOVED_TO versus
// IN_CREATE); a file found only by a rescan is treated as written in place, which can
// cost latency but never a partial read.
package queue

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// File is one candidate file.
type File struct {
	Name    string // base name
	Path    string // full path
	Size    int64
	ModTime time.Time
}

type entry struct {
	File
	renamed  bool      // appeared by rename: complete
	inflight bool      // handed to a worker
	notUntil time.Time // do not hand out before (retry backoff)
	attempts int
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
}

// New returns an empty queue for dir.
func New(dir string, settle time.Duration) *Queue {
	return &Queue{dir: dir, settle: settle, now: time.Now, files: map[string]*entry{}, wake: make(chan struct{}, 1)}
}

// Eligible tells whether a directory entry name is an input file: *.csv, not a dotfile
// (producers write dotfiles and rename them into place).
func Eligible(name string) bool {
	return strings.HasSuffix(name, ".csv") && !strings.HasPrefix(name, ".")
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
	if !Eligible(name) || !utf8.ValidString(name) {
		return
	}
	path := filepath.Join(q.dir, name)
	fi, err := os.Stat(path)
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
		changed := known && (e.Size != fi.Size() || !e.ModTime.Equal(fi.ModTime()))
		if changed {
			e.still = now
		}
		e.Size, e.ModTime = fi.Size(), fi.ModTime()
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
// events (overflow, network file systems) and for files present at start-up. It
// returns the *.csv names that are not valid UTF-8, which no database can record.
func (q *Queue) Rescan() (badNames []string, err error) {
	listed := q.now()
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]struct{}, len(ents))
	for _, de := range ents {
		if !de.Type().IsRegular() || !Eligible(de.Name()) {
			continue
		}
		if !utf8.ValidString(de.Name()) {
			badNames = append(badNames, de.Name())
			continue
		}
		seen[de.Name()] = struct{}{}
		q.mu.Lock()
		e, known := q.files[de.Name()]
		skip := known && (e.inflight || e.renamed)
		q.mu.Unlock()
		if !skip {
			q.observe(de.Name(), false)
		}
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
	return badNames, nil
}

// settled reports whether e may be read now: renamed files at once, in-place files once
// their size and mtime have not changed for the settle duration. For in-place files the
// disk is checked again, so a write whose event was lost restarts the settle clock.
func (q *Queue) settled(e *entry, now time.Time) bool {
	if e.renamed {
		return true
	}
	if now.Sub(e.still) < q.settle {
		return false
	}
	fi, err := os.Stat(e.Path)
	if err != nil {
		return false
	}
	if fi.Size() != e.Size || !fi.ModTime().Equal(e.ModTime) {
		e.Size, e.ModTime, e.still = fi.Size(), fi.ModTime(), now
		return false
	}
	return true
}

// Take hands out up to maxFiles ready files, oldest modification time first, stopping
// once their bytes reach maxBytes (at least one file is always taken). They stay
// in flight until Done or Retry.
func (q *Queue) Take(maxFiles int, maxBytes int64) []File {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	var cands []*entry
	for _, e := range q.files {
		// Cheap checks only here; the disk is asked only for the files about to be taken.
		if !e.inflight && !now.Before(e.notUntil) && (e.renamed || now.Sub(e.still) >= q.settle) {
			cands = append(cands, e)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].ModTime.Equal(cands[j].ModTime) {
			return cands[i].ModTime.Before(cands[j].ModTime)
		}
		return cands[i].Name < cands[j].Name
	})
	var out []File
	var bytes int64
	more := false
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

// Retry puts a file back, not to be handed out again for delay; it returns how many
// times the file has been retried.
func (q *Queue) Retry(name string, delay time.Duration) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.files[name]
	if !ok {
		return 0
	}
	e.inflight = false
	e.attempts++
	e.notUntil = q.now().Add(delay)
	return e.attempts
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

// Overflow is called when the watcher lost events: the directory is listed again.
func (q *Queue) Overflow() { go q.Rescan() } //nolint:errcheck // the next periodic rescan retries

// Changed puts back a file whose path no longer holds the bytes that were loaded (it was
// replaced or rewritten meanwhile): it is read again, once settled, as a new file.
func (q *Queue) Changed(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.files[name]; ok {
		e.inflight, e.renamed, e.still = false, false, q.now()
		if fi, err := os.Stat(e.Path); err == nil {
			e.Size, e.ModTime = fi.Size(), fi.ModTime()
		}
	}
}
