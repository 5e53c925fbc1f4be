// Package ingest runs the ingester: discovery feeds the queue from the source, and
// workers take ready items, commit them in batches through the loader and finish them
// (archive, delete, or move aside) through the source. A source whose reads and
// finishes are network round trips (a bucket) has its items opened ahead of the loader
// (readahead.go) and its committed batches finished behind the workers, on a bounded
// queue drained within the shutdown grace (finisher.go). It knows no paths: where items
// come from and where they go is the source's business (package source), what a batch
// does in PostgreSQL is the loader's (package load).
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/retry"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// Loader commits batches: load.Loader in production, a fake in the fast tests. Both
// read items through the Opener the runner passes (its source).
type Loader interface {
	Load(ctx context.Context, open load.Opener, items []source.Item) load.Outcome
	Reject(ctx context.Context, open load.Opener, it source.Item, rej *event.Rejection) load.Outcome
}

// Reaper is a loader that can end the stalled sessions of frozen replicas.
type Reaper interface {
	ReapStalled(ctx context.Context, prefix string, after time.Duration) (int, error)
}

// Options are the settings the runner needs.
type Options struct {
	// OnSuccess is what becomes of a committed item: source.Archive (the default) or
	// source.Delete.
	OnSuccess       source.Action
	TriggerInterval time.Duration // 0: continuous
	MaxBatchRecords int
	MaxBatchFiles   int
	Workers         int
	// Grace is how long a batch in flight may run on after shutdown begins before it is
	// cancelled (and so rolled back).
	Grace time.Duration
	// Retry: an item that fails for a reason of its own (an OS error reading it, a
	// statement the server refuses, a finish that fails) is tried again by Retry.File;
	// once exhausted it is moved aside with its reason, or, if even that fails, parked
	// (ecomstream_ingester_files_parked). Retry.Locked: how long an item another replica
	// holds waits. Zero fields take retry.Defaults().
	Retry retry.Policies
	// StuckAfter: /healthz fails once a worker, or a finisher behind the workers, has
	// made no progress on its claim for this long.
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
	src     source.Source
	queue   *queue.Queue
	loader  Loader
	metrics *Metrics

	mu          sync.Mutex
	bytesPerRow float64 // learned, to turn MaxBatchRecords into a byte budget
	trigger     *trigger
	listed      chan struct{} // closed by the source's first complete listing
	behind      *behind       // finishes committed batches behind the workers; nil: on them

	// burst counts the items taken since the queue last had none ready (batchFiles).
	burst atomic.Int64
	// gate holds back workers while batches wait for a load slot (gate.go).
	gate *gate

	// busySince[i] is when worker i last made progress on the claim it holds (unix
	// nanoseconds on opt.Now), 0 while it holds none.
	busySince []atomic.Int64
	// finisherSince[i] is the same for finisher i behind the workers (finisher.go) and the
	// batch it finishes: a finish that hangs holds that batch's claim, so no replica
	// finishes its objects either.
	finisherSince [finishers]atomic.Int64
}

// New returns a runner; q must settle its items with src.
func New(opt Options, log zerolog.Logger, src source.Source, q *queue.Queue, loader Loader, m *Metrics) *Runner {
	if opt.Workers < 1 {
		opt.Workers = 1
	}
	if opt.MaxBatchFiles < 1 {
		opt.MaxBatchFiles = 1000
	}
	d := retry.Defaults()
	if opt.Retry.File.Base <= 0 {
		opt.Retry.File = d.File
	}
	if opt.Retry.Database.Base <= 0 {
		opt.Retry.Database = d.Database
	}
	if opt.Retry.Locked <= 0 {
		opt.Retry.Locked = d.Locked
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Runner{opt: opt, log: log, src: src, queue: q, loader: loader, metrics: m, bytesPerRow: 150,
		listed: make(chan struct{}), busySince: make([]atomic.Int64, opt.Workers)}
	var setLimit func(int)
	if m != nil {
		setLimit = func(n int) { m.WorkerLimit.Set(float64(n)) }
	}
	r.gate = newGate(opt.Workers, setLimit)
	if opt.TriggerInterval > 0 {
		r.trigger = newTrigger()
	}
	return r
}

// sink is the queue as the source sees it, with the runner's counting.
type sink struct {
	*queue.Queue
	r    *Runner
	once sync.Once
}

// Listed ends a listing; the first one lets the workers start, so the first batches
// are taken oldest first from everything that was waiting.
func (s *sink) Listed(began time.Time) {
	s.Queue.Listed(began)
	s.once.Do(func() { close(s.r.listed) })
}

// Aside counts an entry the source moved aside unread (once per entry moved, not per
// sighting).
func (s *sink) Aside(name, reason string) {
	s.Queue.Aside(name, reason)
	s.r.metrics.Aside.WithLabelValues(reason).Inc()
}

// Run works until ctx ends, then lets batches in flight finish and the finishes queued
// behind them run (both up to Grace; what is left is finished by the next start). It
// returns the source's error if discovery cannot start.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var discoverErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.src.Discover(ctx, &sink{Queue: r.queue, r: r}); err != nil && ctx.Err() == nil {
			discoverErr = fmt.Errorf("source %s: %w", r.src, err)
			cancel()
		}
	}()
	if r.trigger != nil {
		wg.Add(1)
		go func() { defer wg.Done(); r.trigger.run(ctx, r.opt.TriggerInterval) }()
	}
	if reaper, ok := r.loader.(Reaper); ok && r.opt.ReapAfter > 0 && r.opt.ReapPrefix != "" {
		wg.Add(1)
		go func() { defer wg.Done(); r.reapLoop(ctx, reaper) }()
	}
	if ledger, ok := r.loader.(Ledger); ok {
		wg.Add(1)
		go func() { defer wg.Done(); r.ledgerLoop(ctx, ledger) }()
	}
	stopBehind := func() {}
	if bf, ok := r.src.(BackgroundFinisher); ok && bf.FinishBehind() > 0 {
		stopBehind = r.startBehind(ctx, bf.FinishBehind())
	}
	for i := 0; i < r.opt.Workers; i++ {
		wg.Add(1)
		go func(id int) { defer wg.Done(); r.worker(ctx, id) }(i)
	}
	wg.Wait()
	stopBehind() // after the workers: none queues any more
	return discoverErr
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

// reapLoop ends the stalled sessions of frozen replicas (this one's included).
func (r *Runner) reapLoop(ctx context.Context, reaper Reaper) {
	every(ctx, max(r.opt.ReapAfter/4, time.Second), func() {
		n, err := reaper.ReapStalled(ctx, r.opt.ReapPrefix, r.opt.ReapAfter)
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

// worker takes batches until ctx ends. In trigger mode it waits for each trigger and
// then drains what is ready, as a Spark micro-batch would.
func (r *Runner) worker(ctx context.Context, id int) {
	select {
	case <-ctx.Done():
		return
	case <-r.listed:
	}
	log := r.log.With().Int("worker", id).Logger()
	poll := time.NewTicker(100 * time.Millisecond) // settling items have no event to wake us
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
			if !r.gate.acquire(ctx) {
				return
			}
			items := r.queue.Take(r.batchFiles(), r.byteBudget())
			if len(items) == 0 {
				r.gate.release()
				break
			}
			r.burst.Add(int64(len(items)))
			wait, err := r.batch(ctx, id, log, items)
			r.busySince[id].Store(0)
			r.gate.release()
			if err != nil {
				log.Error().Err(err).Int("files", len(items)).Dur("retry_in", wait).Msg("database unavailable; files stay in the input")
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
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

// burstStart is the most items the first batch of a burst holds (batchFiles).
const burstStart = 4

// batchFiles is how many items one worker takes: what is ready shared among the workers
// the gate lets through now (up to MaxBatchFiles), so a listing that finds a burst of
// small items has every worker load a part of it at once rather than one worker all of
// it while the others idle.
// Items in flight, parked or waiting out a delay are not shared: counted, they would
// give one worker the whole burst.
//
// Within a burst (what became ready since the queue last had nothing ready), a batch
// holds at most burstStart more items than were taken before it, so batches double from
// burstStart. Items are taken oldest first and a batch's items all wait for its commit:
// sharing a listing's hundred objects in two batches of fifty held the oldest, which had
// waited a whole listing interval already, behind forty-nine younger ones (PUT ->
// commit P99 1.4 s at a 1 s interval, 10,000 rows/s). Now the oldest go in a batch of
// four, and a backlog still reaches full-size batches after a few. (Oldest as far as the
// source can tell: a bucket listing's times are whole seconds, and objects of one second
// come in key order, so the oldest of a second may still come late in its burst.)
func (r *Runner) batchFiles() int {
	n := r.queue.Ready()
	if n == 0 {
		r.burst.Store(0) // ran dry: what comes next is a new burst
	}
	workers := r.gate.current()
	share := (n + workers - 1) / workers
	grown := burstStart + int(min(r.burst.Load(), int64(r.opt.MaxBatchFiles)))
	return max(1, min(r.opt.MaxBatchFiles, share, grown))
}

func (r *Runner) byteBudget() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(float64(r.opt.MaxBatchRecords) * r.bytesPerRow)
}

// batch commits items and finishes them. The database work runs on a context that
// outlives shutdown by Grace, so SIGTERM lets the batch in flight finish.
//
// A failure is pinned on the item it belongs to: a batch of several items that fails
// for any reason but a lost database goes again one item at a time, so one item's
// trouble never holds back another. It returns an error (and how long to wait) only
// when the database itself is unavailable; everything else is settled per item.
func (r *Runner) batch(ctx context.Context, worker int, log zerolog.Logger, items []source.Item) (time.Duration, error) {
	r.busySince[worker].Store(r.opt.Now().UnixNano()) // a new claim is progress
	dctx, cancel := graceContext(ctx, r.opt.Grace)
	defer cancel()
	o := r.load(dctx, items)
	r.gate.observe(o.Waited)
	r.metrics.Batches.WithLabelValues("rolled_back").Add(float64(o.RolledBack))
	if o.Verdict != load.Done {
		r.metrics.Batches.WithLabelValues("rolled_back").Inc()
		return r.failed(ctx, dctx, worker, log, items, o)
	}
	r.committed(dctx, log, o)
	return 0, nil
}

// load commits items through the loader, reading them ahead where the source asks for it.
func (r *Runner) load(ctx context.Context, items []source.Item) load.Outcome {
	ra, ok := r.src.(ReadAheader)
	if !ok || ra.ReadAhead() <= 0 {
		return r.loader.Load(ctx, r.src, items)
	}
	ahead := newReadAhead(ctx, r.src, items, ra.ReadAhead())
	defer ahead.close()
	return r.loader.Load(ctx, ahead, items)
}

// committed records a committed batch and finishes its items, then releases its claim
// (once they are finished, behind the workers or here).
func (r *Runner) committed(ctx context.Context, log zerolog.Logger, o load.Outcome) {
	r.metrics.Batches.WithLabelValues("committed").Inc()
	r.metrics.BatchSeconds.Observe(o.Batch.Duration.Seconds())
	r.metrics.BatchRecords.Observe(float64(o.Batch.Rows()))
	r.finish(ctx, log, o.Batch, o.Claim)
}

// failed settles a batch that did not commit.
func (r *Runner) failed(ctx, dctx context.Context, worker int, log zerolog.Logger, items []source.Item, o load.Outcome) (time.Duration, error) {
	if (o.Verdict == load.Retry && !o.Own) || ctx.Err() != nil {
		// The database is away (or we are stopping): no item is to blame.
		r.metrics.Errors.WithLabelValues("database").Inc()
		for _, it := range items {
			r.queue.Defer(it.Name, o.After)
		}
		return o.After, o.Err
	}
	if len(items) > 1 {
		log.Warn().Err(o.Err).Int("files", len(items)).Msg("batch refused; committing its files one by one to find the one at fault")
		for i := range items {
			if ctx.Err() != nil { // shutting down: the rest wait for the next start
				for _, rest := range items[i:] {
					r.queue.Defer(rest.Name, 0)
				}
				return 0, nil
			}
			if wait, err := r.batch(ctx, worker, log, items[i:i+1]); err != nil {
				for _, rest := range items[i+1:] {
					r.queue.Defer(rest.Name, wait)
				}
				return wait, err
			}
		}
		return 0, nil
	}
	it := items[0]
	if o.Verdict == load.Reject {
		// PostgreSQL refuses the content itself: a committed whole-file rejection.
		ro := r.loader.Reject(dctx, r.src, it, &event.Rejection{Reason: o.Reason, Message: o.Err.Error()})
		if ro.Verdict == load.Done {
			r.committed(dctx, log, ro)
			return 0, nil
		}
		o = ro
	}
	r.retryItem(dctx, log, it, o.Stage, o.Err)
	return 0, nil
}

// retryItem counts a failed attempt of one item and schedules the next by the file
// policy; once it is exhausted the item is moved aside with its reason, or parked if it
// cannot be.
func (r *Runner) retryItem(ctx context.Context, log zerolog.Logger, it source.Item, stage string, err error) {
	if errors.Is(err, source.ErrUnavailable) {
		r.sourceAway(log, stage, err, it)
		return
	}
	r.metrics.Errors.WithLabelValues(stage).Inc()
	r.metrics.Retries.WithLabelValues(stage).Inc()
	n := r.queue.Fail(it.Name, r.opt.Retry.File.Delay)
	flog := log.With().Str("file", it.Name).Str("stage", stage).Int("attempts", n).Logger()
	if !r.opt.Retry.File.Exhausted(n) {
		flog.Warn().Err(err).Msg("file not done; it will be tried again")
		return
	}
	if stage != "archive" {
		// Never committed: moving it aside loses nothing, and a person sees why.
		// Only the version the queue saw: a newer one put over the name stays.
		ferr := r.src.Finish(ctx, []source.Finish{{Item: it, Version: it.Version, Action: source.Fail,
			Reason: "retries_exhausted: " + stage + ": " + err.Error()}})[0]
		switch {
		case ferr == nil || errors.Is(ferr, source.ErrGone):
			r.metrics.Aside.WithLabelValues("retries_exhausted").Inc()
			r.queue.Done(it.Name)
			flog.Error().Err(err).Msg("file kept failing; moved to the failed directory with its reason")
			return
		case errors.Is(ferr, source.ErrChanged):
			r.queue.Changed(it.Name)
			flog.Warn().Err(err).Msg("file kept failing, but a new version took its name; the new version gets a fresh start")
			return
		}
		err = fmt.Errorf("%w; moving it aside failed too: %w", err, ferr)
	}
	r.queue.Park(it.Name)
	flog.Error().Err(err).Msg("file kept failing and cannot be moved aside; parked until it changes (see ecomstream_ingester_files_parked)")
}

// sourceAway puts back an item the source could not serve for a reason of its own
// (source.ErrUnavailable: no answer, 5xx, throttling). No attempt is counted, so an
// outage of any length moves nothing aside: before, a bucket down for longer than the
// file policy's 10 attempts (about 8 minutes) sent every object in the queue to the
// failed prefix as retries_exhausted, or, the failed prefix being down too, parked it
// until a restart. The item's wait is the database policy's, 100 ms doubling to 5 s
// with each such failure of it (queue.Unavailable): an outage is met with few
// requests, its end is noticed within seconds, and an object the store keeps failing
// on alone (a 500 for that key only) is asked about every 5 s, in errors_total and the
// log each time, without holding back the others (it fails alone: a read that fails
// before its first byte is settled per item in a batch).
func (r *Runner) sourceAway(log zerolog.Logger, stage string, err error, it source.Item) {
	r.metrics.Errors.WithLabelValues(stage).Inc()
	r.metrics.Retries.WithLabelValues(stage).Inc()
	wait := r.queue.Unavailable(it.Name, r.opt.Retry.Database.Delay)
	log.Warn().Err(err).Str("file", it.Name).Str("stage", stage).Dur("retry_in", wait).
		Msg("source unavailable; the file is tried again, no attempt counted")
}

// Healthy tells whether every worker is making progress: a worker that has held a
// claim for longer than StuckAfter without finishing it is stuck (a hung disk, a
// hung connection), and the process should be restarted to release its files. So is a
// finisher behind the workers that has finished no batch for as long (a hung archive
// request): the batch's claim, held until its finish ends, keeps its objects from every
// replica.
func (r *Runner) Healthy() error {
	if r.opt.StuckAfter <= 0 {
		return nil
	}
	now := r.opt.Now()
	stuck := func(since int64) (time.Duration, bool) {
		d := now.Sub(time.Unix(0, since))
		return d, since != 0 && d > r.opt.StuckAfter
	}
	for i := range r.busySince {
		if d, ok := stuck(r.busySince[i].Load()); ok {
			return fmt.Errorf("worker %d has made no progress on its claim for %s", i, d.Round(time.Second))
		}
	}
	for i := range r.finisherSince {
		if d, ok := stuck(r.finisherSince[i].Load()); ok {
			return fmt.Errorf("finisher %d has made no progress on the committed batch it finishes (its claim held) for %s", i, d.Round(time.Second))
		}
	}
	return nil
}

// finish records every item of a committed batch and finishes those whose outcome is
// committed, in one call to the source (one fsync per directory for the batch), then
// releases the batch's claim. Behind the workers, the claim goes with the finishes: held
// until they are done, it keeps the other replicas (which all hear of an object from one
// notification) from reading and finishing again an object committed here.
func (r *Runner) finish(ctx context.Context, log zerolog.Logger, b *load.Batch, claim *load.Claim) {
	var rows, bytes int64
	var fs []source.Finish
	var done []*load.FileResult
	for _, f := range b.Files {
		if !r.record(ctx, log, b, f) {
			continue
		}
		if f.Outcome == load.OutcomeIngested {
			rows, bytes = rows+f.Total, bytes+f.File.Size
		}
		fin, err := r.finishing(f)
		if err != nil {
			r.retryItem(ctx, log, f.File, "archive", err)
			continue
		}
		fs, done = append(fs, fin), append(done, f)
	}
	if rows > 0 {
		r.mu.Lock()
		r.bytesPerRow = 0.8*r.bytesPerRow + 0.2*float64(bytes)/float64(rows)
		r.mu.Unlock()
	}
	switch {
	case len(fs) == 0 || r.behind == nil:
		r.finished(ctx, log, done, r.src.Finish(ctx, fs))
		claim.Release()
	case !r.behind.finishLater(finishJob{log: log, fs: fs, done: done, claim: claim}):
		r.abandoned(log, len(fs))
		claim.Release()
	}
}

// record counts and logs what the batch decided for one item, and tells whether the
// item is to be finished (its outcome is committed); the others go back to the queue.
func (r *Runner) record(ctx context.Context, log zerolog.Logger, b *load.Batch, f *load.FileResult) bool {
	flog := log.With().Str("file", f.File.Name).Logger()
	switch f.Outcome {
	case load.OutcomeLocked:
		r.metrics.Skipped.WithLabelValues(f.Outcome).Inc()
		r.queue.Defer(f.File.Name, r.opt.Retry.Locked)
		return false
	case load.OutcomeGone:
		r.metrics.Skipped.WithLabelValues(f.Outcome).Inc()
		r.queue.Done(f.File.Name)
		return false
	case load.OutcomeRetry:
		r.retryItem(ctx, log, f.File, "read", f.Err)
		return false
	case load.OutcomeChanged:
		r.metrics.Errors.WithLabelValues("read").Inc()
		flog.Warn().Err(f.Err).Msg("the name no longer holds the regular file that was taken; not read")
		r.queue.Changed(f.File.Name)
		return false
	case load.OutcomeIngested:
		r.metrics.Records.WithLabelValues("inserted").Add(float64(f.Inserted))
		r.metrics.Records.WithLabelValues("rejected").Add(float64(f.Rejected))
		r.metrics.Records.WithLabelValues("duplicate").Add(float64(f.Duplicate))
		r.metrics.Bytes.Add(float64(f.File.Size))
		lat := b.Committed.Sub(f.File.ModTime).Seconds()
		for i := int64(0); i < f.Inserted; i++ {
			r.metrics.Latency.Observe(lat)
		}
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
	return true
}

// finished settles each finished item in the queue by what its finish returned.
func (r *Runner) finished(ctx context.Context, log zerolog.Logger, done []*load.FileResult, errs []error) {
	for i, f := range done {
		flog := log.With().Str("file", f.File.Name).Logger()
		switch err := errs[i]; {
		case errors.Is(err, source.ErrChanged):
			r.metrics.Files.WithLabelValues(f.Outcome).Inc()
			flog.Warn().Msg("the file was replaced or rewritten while it was loaded; what was read is committed, and the new content will be loaded as a new file")
			r.queue.Changed(f.File.Name)
		case err != nil && !errors.Is(err, source.ErrGone):
			flog.Error().Err(err).Msg("committed, but could not move the file out; will retry (the ledger prevents a second load)")
			r.retryItem(ctx, log, f.File, "archive", err)
		default:
			r.metrics.Files.WithLabelValues(f.Outcome).Inc()
			r.queue.Done(f.File.Name)
		}
	}
}

// finishing says how a committed item leaves the input. The ledger decides: a committed
// failure is moved aside with its reason on every path, and only committed rows allow
// an archive or a delete. Only the version that was read is finished.
func (r *Runner) finishing(f *load.FileResult) (source.Finish, error) {
	fin := source.Finish{Item: f.File, Version: f.File.Version, Action: r.opt.OnSuccess}
	failed := f.Outcome == load.OutcomeFailed || (f.Outcome == load.OutcomeAlreadyCommitted && f.Committed == load.OutcomeFailed)
	loaded := f.Outcome == load.OutcomeIngested || (f.Outcome == load.OutcomeAlreadyCommitted && f.Committed == load.OutcomeIngested)
	switch {
	case failed:
		fin.Action, fin.Reason = source.Fail, "failed: the ledger records this file as failed"
		if f.Failure != nil {
			fin.Reason = f.Failure.Reason + ": " + f.Failure.Message
		}
	case !loaded:
		return fin, fmt.Errorf("%s: outcome %q is not a committed one; not moved", f.File.Name, f.Outcome)
	}
	return fin, nil
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
