// Package dir is the input directory as a source: discovery by inotify (package watch)
// plus a periodic listing, reading with the checks a hostile volume needs, and finishing
// by archive's moves.
//
// Discovery. An inotify rename (IN_MOVED_TO) says a file is complete; a create or write
// says it is written in place and must settle (DESIGN.md's settle rule). A listing every
// interval is the backstop for lost events and for files present at start-up; a file
// found only by a listing is taken as written in place, which can cost latency but never
// a partial read. A listing stats only the names it did not know (and every name once in
// fullEvery listings, after an inotify overflow, and after Open or Finish met another
// version, so a new version whose events were lost is still seen): it costs
// what is new, not what is known. Inotify overflows are coalesced into one listing at a
// time. Entries named like input files that must not be read are moved to the failed
// directory unread, with their reason, and reported to the sink (Aside): names that are
// not UTF-8 (no database can record them) and anything that is not a regular file (a
// symlink, FIFO, socket or device is never opened; link(2) moves the entry itself).
//
// Reading. Open uses O_NOFOLLOW|O_NONBLOCK, so a symlink is never followed and a FIFO
// swapped in cannot block, then fstats the descriptor itself (not the path, which may
// change again): only the regular file with the version that was taken is read, and only
// the size fstat gave, so a file growing while it is read never yields a cut last row.
//
// Settling. A file written in place is complete only once it is still and ends with a
// line terminator. One that stays still without a final line terminator (or empty) for
// unterminatedFactor times the settle duration is moved aside with the reason
// "unterminated" rather than waiting unseen for ever or having a cut-off row committed:
// a person sees it in the failed directory and `ingester retry` puts it back (renamed
// into place, so read at once, last line as it is).
//
// Finishing. Archive, Delete and Fail are archive.MoveAll, one fsync per directory per
// batch; a directory cannot leave a finished file in place (Keep is refused), since a
// file left in the input directory would be listed and hashed again for ever.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/ingester/internal/archive"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/watch"
)

// Aside reasons: entries discovery moves to the failed directory unread.
const (
	ReasonBadFileName    = "bad_file_name"    // not UTF-8: no database can record it
	ReasonNotRegularFile = "not_regular_file" // symlink, FIFO, socket or device
	ReasonUnterminated   = "unterminated"     // written in place, still, no final line terminator
)

// unterminatedFactor: a file written in place that has been still for this many settle
// durations without a final line terminator is moved aside (see the package comment).
const unterminatedFactor = 10

// fullEvery: every fullEvery-th listing stats every name, not only new ones.
const fullEvery = 16

// Options are the directories and timings of a directory source.
type Options struct {
	Input, Archive, Failed string
	Settle                 time.Duration // see unterminatedFactor; the queue times the settle rule itself
	Rescan                 time.Duration // how often the directory is listed
	Log                    zerolog.Logger
	// OnError is told of every error discovery survives, by stage ("read" for a listing,
	// "archive" for a move aside), for the runner's errors_total.
	OnError func(stage string)
	Now     func() time.Time // time.Now when nil
}

type seen struct {
	v     source.Version
	since time.Time // when this version was first seen
}

// Dir is a directory source.
type Dir struct {
	opt Options

	mu    sync.Mutex
	known map[string]seen
	// overdue: files written in place found still without a final line terminator for
	// too long, to move aside at the next listing (not under the queue's lock).
	overdue  map[string]source.Version
	listings int

	rescanning, again atomic.Bool
	overflowWG        sync.WaitGroup
	// overflow listings running now and at most at once (what coalescing bounds)
	overflowNow, overflowPeak atomic.Int32
	listMu                    sync.Mutex // one listing at a time
}

var _ source.Source = (*Dir)(nil)

// New returns the source for opt.Input.
func New(opt Options) *Dir {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.OnError == nil {
		opt.OnError = func(string) {}
	}
	if opt.Rescan <= 0 {
		opt.Rescan = 2 * time.Second
	}
	return &Dir{opt: opt, known: map[string]seen{}, overdue: map[string]source.Version{}}
}

func (d *Dir) String() string { return d.opt.Input }

func (d *Dir) path(name string) string { return filepath.Join(d.opt.Input, name) }

// Prepare makes the directories and cleans up after moves a crash interrupted. Discover
// calls it; it is exported for the operator commands and tests.
func (d *Dir) Prepare() error {
	for _, p := range []string{d.opt.Input, d.opt.Archive, d.opt.Failed} {
		if p == "" {
			continue
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
	}
	if n, err := archive.Recover(d.opt.Input, d.opt.Archive, d.opt.Failed); err != nil {
		d.opt.Log.Error().Err(err).Msg("cannot clean up after interrupted moves; going on (the next start tries again)")
	} else if n > 0 {
		d.opt.Log.Warn().Int("entries", n).Msg("cleaned up after interrupted moves")
	}
	return nil
}

// Discover follows the directory until ctx ends (source.Source). It returns an error only
// when the directory cannot be prepared or listed at start.
func (d *Dir) Discover(ctx context.Context, sink source.Sink) error {
	if err := d.Prepare(); err != nil {
		return err
	}
	// What was seen before this discovery, with no watch, is not to be trusted.
	d.mu.Lock()
	clear(d.known)
	d.mu.Unlock()
	w := &watcher{d: d, sink: sink}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := watch.Watch(ctx, d.opt.Input, w); err != nil {
			d.opt.Log.Warn().Err(err).Msg("no inotify watch; relying on rescans")
		}
	}()
	defer func() { wg.Wait(); d.overflowWG.Wait() }()
	if err := d.List(sink); err != nil {
		return fmt.Errorf("list %s: %w", d.opt.Input, err)
	}
	t := time.NewTicker(d.opt.Rescan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := d.List(sink); err != nil {
				d.opt.OnError("read")
				d.opt.Log.Error().Err(err).Str("dir", d.opt.Input).Msg("rescan failed")
			}
		}
	}
}

// watcher turns inotify's events into the sink's calls.
type watcher struct {
	d    *Dir
	sink source.Sink
}

func (w *watcher) Renamed(name string) { w.d.observe(w.sink, name, true) }
func (w *watcher) Written(name string) { w.d.observe(w.sink, name, false) }
func (w *watcher) Removed(name string) {
	w.d.forget(name)
	w.sink.Removed(name)
}
func (w *watcher) Overflow() { w.d.overflow(w.sink) }

func (d *Dir) forget(name string) {
	d.mu.Lock()
	delete(d.known, name)
	d.mu.Unlock()
}

// remember records v as name's version and returns it with when it was first seen.
func (d *Dir) remember(name string, v source.Version) seen {
	now := d.opt.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.known[name]
	if !ok || !s.v.Same(v) {
		s = seen{v: v, since: now}
		d.known[name] = s
	}
	return s
}

// observe stats name and reports it if it is a regular input file (lstat: a symlink is
// never followed; a listing moves anything else aside).
func (d *Dir) observe(sink source.Sink, name string, complete bool) {
	if !event.IsInputFileName(name) || !utf8.ValidString(name) {
		return
	}
	fi, err := os.Lstat(d.path(name))
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	v := versionOf(fi)
	d.remember(name, v)
	sink.Found(source.Item{Name: name, Version: v, Path: d.path(name)}, complete)
}

// aside is an entry a listing will not report, with why.
type aside struct {
	name, reason string
	v            source.Version
}

// List lists the directory once: new names are stat'ed and reported (as written in
// place), known ones reported again with the version last seen, and the sink told the
// listing is complete (Listed). Entries that must not be read, and files overdue for
// lack of a final line terminator, are then moved aside.
func (d *Dir) List(sink source.Sink) error { return d.list(sink, false) }

// list is List; full stats every name, as after lost events.
func (d *Dir) list(sink source.Sink, full bool) error {
	d.listMu.Lock()
	defer d.listMu.Unlock()
	began := d.opt.Now()
	f, err := os.Open(d.opt.Input)
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1) // unsorted: order is the queue's business
	f.Close()
	if err != nil {
		return err
	}
	d.listings++
	asides := d.report(sink, ents, full || d.listings%fullEvery == 0)
	d.mu.Lock()
	for name, v := range d.overdue {
		asides = append(asides, aside{name, ReasonUnterminated, v})
	}
	clear(d.overdue)
	d.mu.Unlock()
	sink.Listed(began)
	d.moveAside(sink, asides)
	return nil
}

func (d *Dir) moveAside(sink source.Sink, asides []aside) {
	for _, a := range asides {
		why := a.reason + ": the file name is not valid UTF-8"
		switch a.reason {
		case ReasonNotRegularFile:
			why = a.reason + ": not a regular file (symlink, FIFO, socket or device); it was not read"
		case ReasonUnterminated:
			why = fmt.Sprintf("%s: written in place and still for %s without a final line terminator (or empty); its last row may be cut off, so it was not read", a.reason, unterminatedFactor*d.opt.Settle)
		}
		_, err := archive.Fail(d.path(a.name), d.opt.Failed, identity(a.v), why)
		switch {
		case errors.Is(err, archive.ErrGone), errors.Is(err, archive.ErrChanged):
			continue // another replica moved it, or a new version is there to be read
		case err != nil:
			d.opt.OnError("archive")
			d.opt.Log.Error().Err(err).Str("file", strconv.QuoteToASCII(a.name)).Str("reason", a.reason).Msg("cannot move aside a file that must not be read")
			continue
		}
		d.forget(a.name)
		sink.Aside(a.name, a.reason)
		d.opt.Log.Warn().Str("file", strconv.QuoteToASCII(a.name)).Str("reason", a.reason).Msg("moved to the failed directory without reading it")
	}
}

// report tells sink of the listed entries: new names stat'ed (all of them when full),
// known ones with the version last seen. It forgets the names no longer listed and
// returns the entries that must not be read.
func (d *Dir) report(sink source.Sink, ents []os.DirEntry, full bool) (asides []aside) {
	listed := make(map[string]struct{}, len(ents))
	for _, de := range ents {
		name := de.Name()
		if !event.IsInputFileName(name) || de.IsDir() {
			continue
		}
		switch {
		case !utf8.ValidString(name):
			asides = append(asides, aside{name, ReasonBadFileName, lstatVersion(d.path(name))})
			continue
		case !de.Type().IsRegular():
			asides = append(asides, aside{name, ReasonNotRegularFile, lstatVersion(d.path(name))})
			continue
		}
		listed[name] = struct{}{}
		d.mu.Lock()
		s, known := d.known[name]
		d.mu.Unlock()
		if known && !full {
			sink.Found(source.Item{Name: name, Version: s.v, Path: d.path(name)}, false)
		} else {
			d.observe(sink, name, false)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name := range d.known {
		if _, ok := listed[name]; !ok {
			delete(d.known, name)
		}
	}
	return asides
}

// overflow lists the directory again after inotify lost events. A burst of overflows
// costs at most one running listing and one more after it, never one each.
func (d *Dir) overflow(sink source.Sink) {
	d.again.Store(true)
	if !d.rescanning.CompareAndSwap(false, true) {
		return // the running listing will go again
	}
	d.overflowWG.Add(1)
	go func() {
		defer d.overflowWG.Done()
		for {
			for d.again.Swap(false) {
				if n := d.overflowNow.Add(1); n > d.overflowPeak.Load() {
					d.overflowPeak.Store(n)
				}
				// Events were lost: no version seen before can be trusted.
				if err := d.list(sink, true); err != nil {
					d.opt.OnError("read") // the next periodic listing retries
				}
				d.overflowNow.Add(-1)
			}
			d.rescanning.Store(false)
			// An overflow that came after the last Swap but saw rescanning still true is
			// picked up here.
			if !d.again.Load() || !d.rescanning.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// Settled tells whether a file written in place may be read now (source.Source): it is
// still the regular file with it.Version and its last byte is a line terminator. It
// returns the file as it is now (it unchanged when it cannot be stat'ed), so the queue
// restarts its settle clock on a new version.
func (d *Dir) Settled(_ context.Context, it source.Item) (source.Item, bool) {
	fi, err := os.Lstat(d.path(it.Name))
	if err != nil || !fi.Mode().IsRegular() {
		return it, false // gone, or something a listing moves aside
	}
	cur := it
	cur.Version = versionOf(fi)
	s := d.remember(it.Name, cur.Version)
	if !cur.Version.Same(it.Version) {
		return cur, false
	}
	if compress.CodecOf(it.Name) != compress.None {
		// A compressed stream ends without a line end: stillness is all that shows. One
		// read while still being written breaks and is retried (load.ErrChangedWhileRead)
		// or, if the writer has stopped for good, rejected as corrupt; compressed files
		// are placed by rename (README).
		return cur, true
	}
	if endsWithNewline(cur.Path, cur.Size) {
		return cur, true
	}
	if d.opt.Settle > 0 && d.opt.Now().Sub(s.since) >= unterminatedFactor*d.opt.Settle {
		d.mu.Lock()
		d.overdue[it.Name] = cur.Version
		d.mu.Unlock()
	}
	return cur, false
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
		return false // gone, or a symlink now: a listing deals with it
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

// Open opens the file it names for reading, only if it is the regular file with the
// version that was taken (source.Source). ErrGone: no such file; ErrChanged: a symlink,
// a FIFO, a device, or another version. Any other error is the operating system's
// (EMFILE, EIO, EACCES, ESTALE...), which says nothing of the content. The reader yields
// exactly the size fstat gave: bytes appended meanwhile belong to the next version.
func (d *Dir) Open(_ context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	p := d.path(it.Name)
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil, source.Version{}, source.ErrGone
	case errors.Is(err, syscall.ELOOP):
		d.forget(it.Name) // not the version seen: the next listing looks again
		return nil, source.Version{}, fmt.Errorf("open %s: a symlink: %w", p, source.ErrChanged)
	case err != nil:
		return nil, source.Version{}, fmt.Errorf("open %s: %w", p, err)
	}
	file := os.NewFile(uintptr(fd), p)
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, source.Version{}, fmt.Errorf("fstat %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		d.forget(it.Name)
		return nil, source.Version{}, fmt.Errorf("open %s: mode %s: %w", p, fi.Mode().Type(), source.ErrChanged)
	}
	got := versionOf(fi)
	if it.Ino != 0 && (got.Ino != it.Ino || got.Dev != it.Dev) {
		file.Close()
		d.forget(it.Name)
		return nil, source.Version{}, fmt.Errorf("open %s: another file (inode %d, taken %d): %w", p, got.Ino, it.Ino, source.ErrChanged)
	}
	// Regular files never block; clear O_NONBLOCK anyway so reads behave as usual.
	_ = syscall.SetNonblock(fd, false)
	return limited{io.LimitReader(file, got.Size), file}, got, nil
}

// limited reads at most the size that was fstat'ed and closes the file.
type limited struct {
	io.Reader
	io.Closer
}

// Finish takes committed files out of the input directory (source.Source), all of a
// batch in one archive.MoveAll: each directory is fsynced once per batch, not once or
// twice per file. Keep is refused: a directory cannot keep a finished file (it would be
// listed and hashed again for ever).
func (d *Dir) Finish(_ context.Context, fs []source.Finish) []error {
	errs := make([]error, len(fs))
	outs := make([]archive.Out, 0, len(fs))
	idx := make([]int, 0, len(fs))
	for i, f := range fs {
		o := archive.Out{Src: d.path(f.Item.Name), Want: identity(f.Version)}
		switch f.Action {
		case source.Archive:
			o.Dir = d.opt.Archive
		case source.Delete:
		case source.Fail:
			o.Dir, o.Fail, o.Reason = d.opt.Failed, true, f.Reason
		default:
			errs[i] = fmt.Errorf("%s: a directory source cannot %s a finished file: it would be listed and read again; use archive or delete", o.Src, f.Action)
			continue
		}
		if f.Action == source.Archive && o.Dir == "" {
			errs[i] = fmt.Errorf("%s: no archive directory to archive it into", o.Src)
			continue
		}
		outs = append(outs, o)
		idx = append(idx, i)
	}
	for k, r := range archive.MoveAll(outs) {
		i := idx[k]
		switch {
		case r.Err == nil:
			d.forget(fs[i].Item.Name)
		case errors.Is(r.Err, archive.ErrGone):
			d.forget(fs[i].Item.Name)
			errs[i] = source.ErrGone
		case errors.Is(r.Err, archive.ErrChanged):
			d.forget(fs[i].Item.Name) // the next listing stats the new version
			errs[i] = fmt.Errorf("%w: %w", source.ErrChanged, r.Err)
		default:
			errs[i] = r.Err
		}
	}
	return errs
}

func versionOf(fi fs.FileInfo) source.Version {
	id := archive.IdentityOf(fi)
	return source.Version{Size: id.Size, ModTime: id.ModTime, Dev: id.Dev, Ino: id.Ino}
}

func lstatVersion(p string) source.Version {
	fi, err := os.Lstat(p)
	if err != nil {
		return source.Version{}
	}
	return versionOf(fi)
}

func identity(v source.Version) archive.Identity {
	return archive.Identity{Dev: v.Dev, Ino: v.Ino, Size: v.Size, ModTime: v.ModTime}
}
