package load

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/ingester/internal/retry"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// Opener opens an item for reading: the source it came from (source.Source has this
// method). The runner passes it, so the loader reads every source the same way.
type Opener interface {
	Open(ctx context.Context, it input.Item) (io.ReadCloser, input.Version, error)
}

// ClaimedOpener is an Opener that is told, once a batch is claimed and holds its load
// slot (not while it waits for one), which of its items will be read (in batch order):
// those this replica locked, not already committed. One that reads ahead (a bucket's)
// reads only those, not objects another replica loads.
type ClaimedOpener interface {
	Opener
	Claimed(items []input.Item)
}

// Verdict is what became of one Load or Reject.
type Verdict int

const (
	// Done: committed. Outcome.Batch says what became of each item; Outcome.Claim holds
	// their locks until the caller has finished them.
	Done Verdict = iota
	// Reject: PostgreSQL refused the content itself (a value the contract's validation
	// let through). Nothing was committed. A single item is to be rejected whole with
	// Outcome.Reason (Loader.Reject); a batch of several goes again one by one to find
	// the item at fault.
	Reject
	// Retry: nothing was committed; try again (see Outcome.Own and Outcome.After).
	Retry
)

func (v Verdict) String() string {
	switch v {
	case Done:
		return "done"
	case Reject:
		return "reject"
	case Retry:
		return "retry"
	}
	return "unknown"
}

// Outcome is the loader's answer: done, reject (reason) or retry (after a delay).
type Outcome struct {
	Verdict Verdict
	Batch   *Batch // Done
	Claim   *Claim // Done: release once the committed items are finished
	Reason  string // Reject: the machine code the rejection is stored with
	// Own (Retry): the trouble is the items' own: a read error, a statement timeout, a
	// conflict in the ledger. A batch goes again one item at a time; a single item counts
	// an attempt (the runner's file policy). Otherwise the database is away, no item is
	// to blame and none counts an attempt.
	Own bool
	// After (Retry, not Own): when to try again, from the database policy and the
	// failures in a row.
	After time.Duration
	// Stage (Retry): errors_total's stage: "read" (an item could not be read) or
	// "database".
	Stage string
	// RolledBack counts transactions rolled back on the way, even when the outcome is
	// Done (a direct COPY that met a duplicate key and went again through staging).
	RolledBack int
	// Waited: a transaction of this batch found every load slot taken (Loader.LoadSlots)
	// and waited for one, whatever the verdict: more batches are ready to load than the
	// database is given to load at once (the runner holds back its workers).
	Waited bool
	Err    error // Reject, Retry: why
}

// tally is the loader's memory between batches: the staging mode after a duplicate and
// the database failures in a row.
type tally struct {
	mu       sync.Mutex
	dupUntil int // batches left to run in staging mode after a duplicate
	down     int // database-away outcomes in a row
}

// stagingNext says whether the next batch should go straight to the staging path: after
// a duplicate key, a few batches do, since duplicates tend to come in runs.
func (l *Loader) stagingNext() bool {
	l.tally.mu.Lock()
	defer l.tally.mu.Unlock()
	if l.tally.dupUntil > 0 {
		l.tally.dupUntil--
		return true
	}
	return false
}

func (l *Loader) sawDuplicate() {
	l.tally.mu.Lock()
	l.tally.dupUntil = l.rules().Staging
	l.tally.mu.Unlock()
}

// rules returns l.Retry with retry.Defaults() in place of its zero fields.
func (l *Loader) rules() retry.Policies {
	p, d := l.Retry, retry.Defaults()
	if p.Database.Base <= 0 {
		p.Database = d.Database
	}
	if p.Staging <= 0 {
		p.Staging = d.Staging
	}
	return p
}

// verdict classifies what a commit returned. A read error is the item's (or its disk's);
// PostgreSQL refusing data (classes 22, 23 but unique violations, 54) is the content's;
// a unique violation (the ledger) or a statement past its timeout is the items' own
// trouble but no verdict on content; anything else (a lost connection, the server
// shutting down, resources) blames no item.
func (l *Loader) verdict(b *Batch, claim *Claim, err error) Outcome {
	var fileErr *FileError
	var corrupt *compress.CorruptError
	o := Outcome{Verdict: Retry, Err: err, Stage: "database"}
	switch {
	case err == nil:
		o = Outcome{Verdict: Done, Batch: b, Claim: claim}
	case errors.As(err, &corrupt):
		// A compressed stream that cannot be decoded is the content's: no retry changes
		// it (an OS error under the decompressor is a plain FileError, retried).
		o.Verdict, o.Reason, o.Stage = Reject, corrupt.Reason, "read"
	case errors.As(err, &fileErr):
		o.Own, o.Stage = true, "read"
	case IsDataError(err):
		o.Verdict, o.Reason = Reject, ReasonDatabaseRejected
	case db.IsUniqueViolation(err) || db.IsQueryCanceled(err):
		o.Own = true
	}
	l.tally.mu.Lock()
	defer l.tally.mu.Unlock()
	if o.Verdict == Retry && !o.Own {
		l.tally.down++
		o.After = l.rules().Database.Delay(l.tally.down)
	} else {
		l.tally.down = 0
	}
	return o
}
