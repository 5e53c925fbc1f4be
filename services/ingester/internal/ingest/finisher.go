package ingest

import (
	"context"
	"sync"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// BackgroundFinisher is a source whose Finish is slow enough (a bucket's archive is a
// server-side copy of every byte) that the runner finishes committed batches behind the
// workers instead of on their path: FinishBehind() is how many committed batches may
// wait to be finished (the bound of the queue; a worker that finds it full waits). A
// directory's finish (renames and one fsync a batch) stays on the worker.
type BackgroundFinisher interface {
	FinishBehind() int
}

// finishers is how many batches are finished at once behind the workers (each Finish
// sends several requests at once itself).
const finishers = 2

// maxQueued caps a source's FinishBehind, so that ClaimsBehind holds whatever it asks.
const maxQueued = 4

// ClaimsBehind is the most committed batches that hold their claim's database session
// behind the workers (queued, or being finished). The ingester's pool has that many
// sessions beyond the workers' own and the two the health check, the partition
// maintainer, the reaper and the ledger's follower (elsewhere.go) share: without them,
// finishes waiting behind a slow bucket took every session and /readyz's ping waited
// for one, reporting the database down. A pool opens sessions only when they are
// needed, so a directory source costs nothing.
const ClaimsBehind = maxQueued + finishers

// finishJob is one committed batch's finishes, and its claim, released once they are done.
type finishJob struct {
	log   zerolog.Logger
	fs    []source.Finish
	done  []*load.FileResult
	claim *load.Claim
}

// behind finishes committed batches in the background. Why this is safe: an item is
// finished only after its outcome is committed in the ledger, and it stays in the
// runner's hands (in flight in the queue, and claimed) until its finish settles, so no
// replica takes it meanwhile; one that takes it later (a claim lost with its session)
// or this one after a restart that lists it again finds it committed (a no-op) and
// finishes it itself (the source's finishes are conditional and idempotent).
//
// Each queued batch holds its claim's connection; the queue (at most maxQueued) and the
// finishers bound them, and the pool has room for them all (ClaimsBehind).
type behind struct {
	jobs chan finishJob
	ctx  context.Context // ends Grace after shutdown begins: the rest is abandoned
	wg   sync.WaitGroup
}

// startBehind starts the finishers; stop drains them. ctx is the run's context: once it
// ends, what is queued is still finished for up to grace, then abandoned (the items stay
// in the input; the next start's listing finds them committed and finishes them).
func (r *Runner) startBehind(ctx context.Context, bound int) (stop func()) {
	fctx, cancel := graceContext(ctx, r.opt.Grace)
	b := &behind{jobs: make(chan finishJob, min(max(bound, 1), maxQueued)), ctx: fctx}
	r.behind = b
	for i := range finishers {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for j := range b.jobs {
				r.finisherSince[i].Store(r.opt.Now().UnixNano())
				r.finishJob(fctx, j)
				r.finisherSince[i].Store(0)
			}
		}()
	}
	return func() {
		close(b.jobs)
		b.wg.Wait()
		cancel()
	}
}

// finishJob finishes one batch; once the grace after shutdown is over, what is left is
// abandoned, not retried (the process is stopping; the next start finishes it).
func (r *Runner) finishJob(ctx context.Context, j finishJob) {
	defer j.claim.Release()
	if ctx.Err() != nil {
		r.abandoned(j.log, len(j.fs))
		return
	}
	errs := r.src.Finish(ctx, j.fs)
	if ctx.Err() != nil {
		n := 0
		for i, err := range errs {
			if err != nil {
				n++
				j.done[i] = nil
			}
		}
		r.abandoned(j.log, n)
	}
	var done []*load.FileResult
	var derrs []error
	for i, f := range j.done {
		if f != nil {
			done, derrs = append(done, f), append(derrs, errs[i])
		}
	}
	r.finished(ctx, j.log, done, derrs)
}

func (r *Runner) abandoned(log zerolog.Logger, n int) {
	if n > 0 {
		log.Warn().Int("files", n).Msg("shutdown grace over: committed files left in the input; the next start finds them in the ledger and finishes them")
	}
}

// finishLater queues a committed batch's finishes, waiting while the queue is full
// (back-pressure: committed but unfinished items are bounded). It returns false if the
// finishers stopped taking work (the grace after shutdown is over): the caller abandons
// them.
func (b *behind) finishLater(j finishJob) bool {
	select {
	case b.jobs <- j:
		return true
	case <-b.ctx.Done():
		return false
	}
}
