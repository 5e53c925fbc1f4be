package ingest

import (
	"context"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
)

// Ledger tells what other replicas committed lately: load.Loader in production.
type Ledger interface {
	CommittedElsewhere(ctx context.Context, since time.Time, limit int) (rows []load.Committed, asOf time.Time, err error)
}

// Following the ledger. Replicas of one source each queue every item their listings
// (or notifications) find, and learn that another replica finished one only from a
// removal event (which a bucket's gateway may not publish, and a shared directory on NFS
// never does) or from their next own listing (which listing turns make rarer). Until
// then the item is taken, claimed and found gone: a claim, a GET answered 404, and a
// batch smaller by one. The ledger already knows: every commit is a row with its
// instance and time. So each replica reads the rows other replicas committed since its
// last look and forgets those items (queue.CommittedElsewhere), a few times a second
// while its queue holds anything: one indexed range read, a few rows.
const (
	elsewhereEvery = 200 * time.Millisecond // below Retry.Locked's 500 ms: a file found locked is forgotten before it is tried again
	elsewhereLimit = 5000                   // rows per read; more are read at once after
	// elsewhereOverlap: each read starts this far before the last row read, because a
	// row's committed_at is stamped just before its transaction commits and a commit
	// stamped earlier may become visible after a later one. Rows read twice are nothing.
	elsewhereOverlap = time.Second
)

// elsewhere reads the ledger from where it left off.
type elsewhere struct {
	ledger Ledger
	since  time.Time // the database's clock; zero: the last minute
	limit  int       // rows per read (elsewhereLimit)
}

// followLedger forgets the items other replicas committed since the last call; it
// returns how many it forgot.
//
// It reads a page at a time from where the last page ended and, once a page is not
// full, starts the next call elsewhereOverlap before that read's time on the database's
// clock (or the newest row read, if later), however many pages it took. A full page's
// next one starts again from its last instant when the page spans more than one: rows
// committed at that same microsecond (a batch's rows share one at times) may go on
// past the page, and a page that began after that instant skipped them.
func (r *Runner) followLedger(ctx context.Context, e *elsewhere) (forgotten int, err error) {
	cursor := e.since
	var newest time.Time // the newest row's commit time read
	for {
		rows, asOf, err := e.ledger.CommittedElsewhere(ctx, cursor, e.limit)
		if err != nil {
			return forgotten, err
		}
		for _, c := range rows {
			if r.queue.CommittedElsewhere(c.Name, c.Size, c.Modified) {
				forgotten++
			}
		}
		if len(rows) > 0 {
			newest = rows[len(rows)-1].At
		}
		if len(rows) < e.limit {
			// Read up to asOf: from then on, even with no row read (a replica alone, or
			// whose peers stopped), the read covers the last overlap, not every row
			// this replica committed since another's.
			e.since = later(e.since, later(newest, asOf).Add(-elsewhereOverlap))
			return forgotten, nil
		}
		first, last := rows[0].At, rows[len(rows)-1].At
		if first.Before(last) {
			cursor = last.Add(-time.Microsecond) // later than cursor: first is
		} else {
			cursor = last // a page of one instant: on past it
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ledgerLoop follows the ledger until ctx ends, while the queue holds items.
func (r *Runner) ledgerLoop(ctx context.Context, ledger Ledger) {
	e := &elsewhere{ledger: ledger, limit: elsewhereLimit}
	every(ctx, elsewhereEvery, func() {
		n, err := r.lookElsewhere(ctx, e)
		r.metrics.Elsewhere.Add(float64(n))
		if err != nil && ctx.Err() == nil {
			// Only a hint is lost: those items are claimed and found gone, as without it.
			// Counted, so that a read that keeps failing (a role without SELECT on the
			// ledger) is seen; logged at debug, five times a second being too loud.
			r.metrics.Errors.WithLabelValues("database").Inc()
			r.log.Debug().Err(err).Msg("cannot read what other replicas committed")
		}
	})
}

// lookElsewhere is one turn of ledgerLoop. With the queue empty it reads nothing and
// lets go of where the read stopped: what other replicas commit meanwhile is no item
// of this queue's (they finish what they commit), and a read that went on from there
// after an idle hour would page through that hour's rows at once; the next read is of
// the last minute.
func (r *Runner) lookElsewhere(ctx context.Context, e *elsewhere) (forgotten int, err error) {
	if r.queue.Len() == 0 {
		e.since = time.Time{}
		return 0, nil
	}
	return r.followLedger(ctx, e)
}
