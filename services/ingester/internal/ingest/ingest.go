// Package ingest runs the ingester: it feeds the queue from inotify and periodic rescans,
// and runs workers that take ready files, commit them in batches and move them out of
// the input directory.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/ingester/internal/archive"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/watch"
)

// Options are the settings the runner needs.
type Options struct {
	InputDir, ArchiveDir, FailedDir string
	DeleteOnSuccess                 bool
	TriggerInterval                 time.Duration // 0: continuous
	MaxBatchRecords                 int
	MaxBatchFiles                   int
	Workers                         int
	RescanInterval                  time.Duration
	// Grace is how long a batch in flight may run on after shutdown begins before it is
	// cancelled (and so rolled back).
	Grace time.Duration
	// A file that fails for a reason of its own (an OS error reading it, a statement the
	// server refuses, a move that fails) is tried again after RetryBase, doubling up to
	// RetryMax, with jitter; after MaxAttempts it is moved to the failed directory with
	// its reason, or, if even that fails, parked (ecomstream_ingester_files_parked).
	MaxAttempts         int
	RetryBase, RetryMax time.Duration
	// StuckAfter: /healthz fails once a worker has made no progress on its claim for
	// this long.
	StuckAfter time.Duration
	Now        func() time.Time // the clock of StuckAfter; time.Now when nil
	// ReapAfter: sessions of any replica (application_name starting with ReapPrefix)
	// stalled mid-statement waiting for their client this long are ended, releasing a
	// frozen replica's claims (load.Loader.ReapStalled). 0: never.
	ReapAfter  time.Duration
	ReapPrefix string
}

// Runner ties the parts together.
type Runner struct {
	opt     Options
	log     zerolog.Logger
	queue   *queue.Queue
	loader  *load.Loader
	metrics *Metrics

	mu          sync.Mutex
	bytesPerRow float64 // learned, to turn MaxBatchRecords into a byte budget
	dupUntil    int     // batches left to run in staging mode after a duplicate
	trigger     *trigger

	// busySince[i] is when worker i last made progress on the claim it holds (unix
	// nanoseconds on opt.Now), 0 while it holds none.
	busySince []atomic.Int64
}

// New returns a runner; q must watch opt.InputDir.
func New(opt Options, log zerolog.Logger, q *queue.Queue, loader *load.Loader, m *Metrics) *Runner {
	if opt.Workers < 1 {
		opt.Workers = 1
	}
	if opt.MaxBatchFiles < 1 {
		opt.MaxBatchFiles = 1000
	}
	if opt.MaxAttempts < 1 {
		opt.MaxAttempts = 10
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = time.Second
	}
	if opt.RetryMax < opt.RetryBase {
		opt.RetryMax = max(opt.RetryBase, 5*time.Minute)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Runner{opt: opt, log: log, queue: q, loader: loader, metrics: m, bytesPerRow: 150,
		busySince: make([]atomic.Int64, opt.Workers)}
	if opt.TriggerInterval > 0 {
		r.trigger = newTrigger()
	}
	return r
}

// Run works until ctx ends, then lets batches in flight finish (up to Grace).
func (r *Runner) Run(ctx context.Context) error {
	for _, d := range []string{r.opt.InputDir, r.opt.ArchiveDir, r.opt.FailedDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("directory %s: %w", d, err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := watch.Watch(ctx, r.opt.InputDir, r.queue); err != nil {
			r.log.Warn().Err(err).Msg("no inotify watch; relying on rescans")
		}
	}()
	if err := r.rescan(); err != nil {
		return fmt.Errorf("list %s: %w", r.opt.InputDir, err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.rescanLoop(ctx) }()
	if r.trigger != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.trigger.run(ctx, r.opt.TriggerInterval) }()
	}
	if r.opt.ReapAfter > 0 && r.opt.ReapPrefix != "" {
		wg.Add(1)
		go func() { defer wg.Done(); r.reapLoop(ctx) }()
	}
	for i := 0; i < r.opt.Workers; i++ {
		wg.Add(1)
		go func(id int) { defer wg.Done(); r.worker(ctx, id) }(i)
	}
	wg.Wait()
	return nil
}

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func (r *Runner) rescanLoop(ctx context.Context) {
	every(ctx, r.opt.RescanInterval, func() {
		if err := r.rescan(); err != nil {
			r.metrics.Errors.WithLabelValues("read").Inc()
			r.log.Error().Err(err).Str("dir", r.opt.InputDir).Msg("rescan failed")
		}
	})
}

// reapLoop ends the stalled sessions of frozen replicas (this one's included).
func (r *Runner) reapLoop(ctx context.Context) {
	every(ctx, max(r.opt.ReapAfter/4, time.Second), func() {
		n, err := r.loader.ReapStalled(ctx, r.opt.ReapPrefix, r.opt.ReapAfter)
		switch {
		case err != nil && ctx.Err() == nil:
			r.metrics.Errors.WithLabelValues("database").Inc()
			r.log.Warn().Err(err).Msg("cannot look for stalled sessions")
		case n > 0:
			r.metrics.Reaped.Add(float64(n))
			r.log.Warn().Int("sessions", n).Dur("stalled_for", r.opt.ReapAfter).Msg("ended ingester sessions stalled inside a transaction waiting for their client (a frozen replica); their claims are released")
		}
	})
}

// rescan lists the input directory and moves aside what must not be read: names that
// are not UTF-8 (the ledger cannot record them, so the failed directory and its reason
// file are their record) and entries that are not regular files (a symlink, FIFO,
// socket or device is never opened; link(2) moves the entry itself, not its target).
func (r *Runner) rescan() error {
	aside, err := r.queue.Rescan()
	for _, a := range aside {
		why := a.Reason + ": the file name is not valid UTF-8"
		if a.Reason == queue.ReasonNotRegularFile {
			why = a.Reason + ": not a regular file (symlink, FIFO, socket or device); it was not read"
		}
		_, merr := archive.Fail(filepath.Join(r.opt.InputDir, a.Name), r.opt.FailedDir, archive.Identity{}, why)
		switch {
		case errors.Is(merr, archive.ErrGone): // another replica moved it
			continue
		case merr != nil:
			r.metrics.Errors.WithLabelValues("archive").Inc()
			r.log.Error().Err(merr).Str("file", strconv.QuoteToASCII(a.Name)).Str("reason", a.Reason).Msg("cannot move aside a file that must not be read")
			continue
		}
		r.metrics.Aside.WithLabelValues(a.Reason).Inc() // once per entry moved, not per sighting
		r.log.Warn().Str("file", strconv.QuoteToASCII(a.Name)).Str("reason", a.Reason).Msg("moved to the failed directory without reading it")
	}
	return err
}

// worker takes batches until ctx ends. In trigger mode it waits for each trigger and
// then drains what is ready, as a Spark micro-batch would.
func (r *Runner) worker(ctx context.Context, id int) {
	log := r.log.With().Int("worker", id).Logger()
	backoff := 100 * time.Millisecond
	poll := time.NewTicker(100 * time.Millisecond) // settling files have no event to wake us
	defer poll.Stop()
	var gen uint64
	for ctx.Err() == nil {
		if r.trigger != nil {
			gen = r.trigger.wait(ctx, gen)
			if ctx.Err() != nil {
				return
			}
		}
		for ctx.Err() == nil {
			files := r.queue.Take(r.opt.MaxBatchFiles, r.byteBudget())
			if len(files) == 0 {
				break
			}
			err := r.batch(ctx, id, log, files)
			r.busySince[id].Store(0)
			if err != nil {
				log.Error().Err(err).Int("files", len(files)).Dur("retry_in", backoff).Msg("database unavailable; files stay in the input directory")
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
		}
		if r.trigger != nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-r.queue.Wake():
		case <-poll.C:
		}
	}
}

func (r *Runner) byteBudget() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(float64(r.opt.MaxBatchRecords) * r.bytesPerRow)
}

// stagingNext says whether the next batch should go straight to the staging path: after
// a duplicate key, a few batches do, since duplicates tend to come in runs.
func (r *Runner) stagingNext() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dupUntil > 0 {
		r.dupUntil--
		return true
	}
	return false
}

// batch commits files and moves them out. The database work runs on a context that
// outlives shutdown by Grace, so SIGTERM lets the batch in flight finish.
//
// A failure is pinned on the file it belongs to: a batch of several files that fails
// for any reason but a lost database goes again one file at a time, so one file's
// trouble never holds back another. It returns an error only when the database itself
// is unavailable (the worker then backs off); everything else is settled per file.
func (r *Runner) batch(ctx context.Context, worker int, log zerolog.Logger, files []queue.File) error {
	r.busySince[worker].Store(r.opt.Now().UnixNano()) // a new claim is progress
	dctx, cancel := graceContext(ctx, r.opt.Grace)
	defer cancel()
	staging := r.stagingNext()
	b, claim, err := r.loader.Load(dctx, files, staging)
	if errors.Is(err, load.ErrDuplicateKey) {
		r.metrics.Batches.WithLabelValues("rolled_back").Inc()
		r.mu.Lock()
		r.dupUntil = 8
		r.mu.Unlock()
		log.Debug().Int("files", len(files)).Msg("duplicate event_id: batch goes again through staging")
		b, claim, err = r.loader.Load(dctx, files, true)
	}
	if err != nil {
		r.metrics.Batches.WithLabelValues("rolled_back").Inc()
		return r.failed(ctx, dctx, worker, log, files, err)
	}
	defer claim.Release()
	r.metrics.Batches.WithLabelValues("committed").Inc()
	r.metrics.BatchSeconds.Observe(b.Duration.Seconds())
	r.metrics.BatchRecords.Observe(float64(b.Rows()))
	r.settle(log, b)
	return nil
}

// failed settles a batch that did not commit.
func (r *Runner) failed(ctx, dctx context.Context, worker int, log zerolog.Logger, files []queue.File, err error) error {
	// A file's fault: reading it failed, PostgreSQL refused its data (classes 22, 23,
	// 54, a unique violation included), or its batch ran past the statement timeout (a
	// batch that always does would otherwise come back whole, forever, holding its
	// other files; split, the slow file alone counts attempts and, if it keeps timing
	// out, is moved aside with that reason). Anything else (a connection lost, the
	// server shutting down, resources) blames no file and counts no attempt.
	var fileErr *load.FileError
	ownFault := errors.As(err, &fileErr) || load.IsDataError(err) || db.IsUniqueViolation(err) || db.IsQueryCanceled(err)
	if !ownFault || ctx.Err() != nil {
		// The database is away (or we are stopping): no file is to blame.
		r.metrics.Errors.WithLabelValues("database").Inc()
		for _, f := range files {
			r.queue.Defer(f.Name, time.Second)
		}
		return err
	}
	if len(files) > 1 {
		log.Warn().Err(err).Int("files", len(files)).Msg("batch refused; committing its files one by one to find the one at fault")
		for i, f := range files {
			if ctx.Err() != nil { // shutting down: the rest wait for the next start
				for _, rest := range files[i:] {
					r.queue.Defer(rest.Name, 0)
				}
				return nil
			}
			if err := r.batch(ctx, worker, log, []queue.File{f}); err != nil {
				for _, rest := range files[i+1:] {
					r.queue.Defer(rest.Name, time.Second)
				}
				return err
			}
		}
		return nil
	}
	f := files[0]
	if rej := load.WholeFileRejection(err); rej != nil {
		// PostgreSQL refuses the content itself, or its compressed stream is corrupt: a
		// committed whole-file rejection.
		b, claim, rerr := r.loader.Reject(dctx, f, rej)
		if rerr == nil {
			defer claim.Release()
			r.metrics.Batches.WithLabelValues("committed").Inc()
			r.settle(log, b)
			return nil
		}
		err = rerr
	}
	stage := "database"
	if fileErr != nil {
		stage = "read"
	}
	r.retryFile(log, f, stage, err)
	return nil
}

// backoff is the delay before a file's next attempt: RetryBase doubled per attempt up
// to RetryMax, times a random factor in [0.5, 1.5) so replicas and files spread out.
func (r *Runner) backoff(attempts int) time.Duration {
	d := r.opt.RetryBase
	for i := 1; i < attempts && d < r.opt.RetryMax; i++ {
		d *= 2
	}
	d = min(d, r.opt.RetryMax)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// retryFile counts a failed attempt of one file and schedules the next; after
// MaxAttempts the file is moved aside with its reason, or parked if it cannot be moved.
func (r *Runner) retryFile(log zerolog.Logger, f queue.File, stage string, err error) {
	r.metrics.Errors.WithLabelValues(stage).Inc()
	r.metrics.Retries.WithLabelValues(stage).Inc()
	n := r.queue.Fail(f.Name, r.backoff)
	flog := log.With().Str("file", f.Name).Str("stage", stage).Int("attempts", n).Logger()
	if n < r.opt.MaxAttempts {
		flog.Warn().Err(err).Msg("file not done; it will be tried again")
		return
	}
	if stage != "archive" {
		// Never committed: moving it aside loses nothing, and a person sees why.
		// Only the version the queue saw: a newer one renamed over the name stays.
		seen := archive.Identity{Dev: f.Dev, Ino: f.Ino, Size: f.Size, ModTime: f.ModTime}
		_, merr := archive.Fail(f.Path, r.opt.FailedDir, seen, "retries_exhausted: "+stage+": "+err.Error())
		if merr == nil || errors.Is(merr, archive.ErrGone) {
			r.metrics.Aside.WithLabelValues("retries_exhausted").Inc()
			r.queue.Done(f.Name)
			flog.Error().Err(err).Msg("file kept failing; moved to the failed directory with its reason")
			return
		}
		err = fmt.Errorf("%w; moving it aside failed too: %w", err, merr)
	}
	r.queue.Park(f.Name)
	flog.Error().Err(err).Msg("file kept failing and cannot be moved aside; parked until it changes (see ecomstream_ingester_files_parked)")
}

// Healthy tells whether every worker is making progress: a worker that has held a
// claim for longer than StuckAfter without finishing it is stuck (a hung disk, a
// hung connection), and the process should be restarted to release its files.
func (r *Runner) Healthy() error {
	if r.opt.StuckAfter <= 0 {
		return nil
	}
	now := r.opt.Now()
	for i := range r.busySince {
		since := r.busySince[i].Load()
		if since == 0 {
			continue
		}
		if d := now.Sub(time.Unix(0, since)); d > r.opt.StuckAfter {
			return fmt.Errorf("worker %d has made no progress on its claim for %s", i, d.Round(time.Second))
		}
	}
	return nil
}

// settle records and moves every file of a committed batch.
func (r *Runner) settle(log zerolog.Logger, b *load.Batch) {
	var rows, bytes int64
	for _, f := range b.Files {
		flog := log.With().Str("file", f.File.Name).Logger()
		switch f.Outcome {
		case load.OutcomeLocked:
			r.queue.Defer(f.File.Name, 500*time.Millisecond)
			continue
		case load.OutcomeGone:
			r.queue.Done(f.File.Name)
			continue
		case load.OutcomeRetry:
			r.retryFile(log, f.File, "read", f.Err)
			continue
		case load.OutcomeChanged:
			r.metrics.Errors.WithLabelValues("read").Inc()
			flog.Warn().Err(f.Err).Msg("the path no longer names the regular file that was taken; not read")
			r.queue.Changed(f.File.Name)
			continue
		case load.OutcomeIngested:
			r.metrics.Records.WithLabelValues("inserted").Add(float64(f.Inserted))
			r.metrics.Records.WithLabelValues("rejected").Add(float64(f.Rejected))
			r.metrics.Records.WithLabelValues("duplicate").Add(float64(f.Duplicate))
			r.metrics.Bytes.Add(float64(f.File.Size))
			lat := b.Committed.Sub(f.File.ModTime).Seconds()
			for i := int64(0); i < f.Inserted; i++ {
				r.metrics.Latency.Observe(lat)
			}
			rows += f.Total
			bytes += f.File.Size
			if len(f.Extra) > 0 {
				flog.Info().Strs("columns", f.Extra).Msg("unknown columns ignored")
			}
			flog.Debug().Int64("records", f.Total).Int64("inserted", f.Inserted).Int64("rejected", f.Rejected).
				Int64("duplicate", f.Duplicate).Float64("latency_seconds", lat).Bool("staging", b.Staging).Msg("file committed")
		case load.OutcomeFailed:
			flog.Warn().Str("reason", f.Failure.Reason).Str("message", f.Failure.Message).Msg("file rejected; moved to the failed directory")
		case load.OutcomeAlreadyCommitted:
			flog.Info().Str("committed", f.Committed).Msg("file already in the ledger with the same bytes; moving it out without loading")
		}
		err := r.moveOut(f)
		switch {
		case errors.Is(err, errChanged):
			r.metrics.Files.WithLabelValues(f.Outcome).Inc()
			flog.Warn().Msg("the file was replaced or rewritten while it was loaded; what was read is committed, and the new content will be loaded as a new file")
			r.queue.Changed(f.File.Name)
		case err != nil:
			flog.Error().Err(err).Msg("committed, but could not move the file out; will retry (the ledger prevents a second load)")
			r.retryFile(log, f.File, "archive", err)
		default:
			r.metrics.Files.WithLabelValues(f.Outcome).Inc()
			r.queue.Done(f.File.Name)
		}
	}
	if rows > 0 {
		r.mu.Lock()
		r.bytesPerRow = 0.8*r.bytesPerRow + 0.2*float64(bytes)/float64(rows)
		r.mu.Unlock()
	}
}

// errChanged means the path no longer holds the bytes that were loaded.
var errChanged = archive.ErrChanged

func (r *Runner) moveOut(f *load.FileResult) error {
	if f.Ident != nil {
		cur, err := os.Lstat(f.File.Path)
		if err == nil && (!os.SameFile(f.Ident, cur) || cur.Size() != f.Ident.Size() || !cur.ModTime().Equal(f.Ident.ModTime())) {
			return errChanged
		}
	}
	// The ledger decides where the file goes: a committed failure goes to the failed
	// directory on every path, and only committed rows allow a delete.
	failed := f.Outcome == load.OutcomeFailed || (f.Outcome == load.OutcomeAlreadyCommitted && f.Committed == load.OutcomeFailed)
	loaded := f.Outcome == load.OutcomeIngested || (f.Outcome == load.OutcomeAlreadyCommitted && f.Committed == load.OutcomeIngested)
	var err error
	switch {
	case failed:
		reason := "failed: the ledger records this file as failed"
		if f.Failure != nil {
			reason = f.Failure.Reason + ": " + f.Failure.Message
		}
		_, err = archive.Fail(f.File.Path, r.opt.FailedDir, archive.IdentityOf(f.Ident), reason)
	case !loaded:
		return fmt.Errorf("%s: outcome %q is not a committed one; not moved", f.File.Name, f.Outcome)
	case r.opt.DeleteOnSuccess:
		err = archive.Delete(f.File.Path, archive.IdentityOf(f.Ident))
	default:
		_, err = archive.Move(f.File.Path, r.opt.ArchiveDir, archive.IdentityOf(f.Ident))
	}
	if errors.Is(err, archive.ErrGone) {
		return nil
	}
	return err
}

// graceContext returns a context that ends Grace after parent ends.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// Backlog reports the queue for metrics: files, bytes, oldest age in seconds.
func Backlog(q *queue.Queue) func() (int, int64, float64) {
	return func() (int, int64, float64) {
		n, b, oldest := q.Backlog()
		if n == 0 {
			return 0, 0, 0
		}
		return n, b, time.Since(oldest).Seconds()
	}
}

// trigger broadcasts ticks to every worker (Spark-style trigger intervals).
type trigger struct {
	mu   sync.Mutex
	cond *sync.Cond
	gen  uint64
}

func newTrigger() *trigger {
	t := &trigger{}
	t.cond = sync.NewCond(&t.mu)
	return t
}

func (t *trigger) run(ctx context.Context, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			t.mu.Lock()
			t.gen++
			t.cond.Broadcast()
			t.mu.Unlock()
			return
		case <-tk.C:
			t.mu.Lock()
			t.gen++
			t.cond.Broadcast()
			t.mu.Unlock()
		}
	}
}

// wait blocks until a tick newer than seen, and returns it.
func (t *trigger) wait(ctx context.Context, seen uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.gen <= seen && ctx.Err() == nil {
		t.cond.Wait()
	}
	return t.gen
}
