// Package listturn lets the replicas of one source take turns at its periodic listing
// (sql/0007_listing_turns.sql). A bucket's listing is only the backstop of its
// notifications: whichever replica finds an object nobody was told of claims and loads
// it, so one listing per interval across the replicas finds what one replica's would,
// for the LIST requests (billed by a cloud store, served by the S3 server) and the
// parsing of one. Three replicas on one bucket listed it three times as often as one
// (BenchmarkBucketPipeline's placed drains: 47-60 listings against 14-17 of 300 objects
// on average, about 20 ms of CPU each between the gateway and the ingester).
package listturn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Turns takes the listing turns of one source (its URL, s3://BUCKET/PREFIX/) in the
// database of Pool.
type Turns struct {
	Pool   *pgxpool.Pool
	Source string

	mu    sync.Mutex
	taken time.Time // the time of the turn this one took last (Give); zero: none
}

// takeSQL records a listing of $1 beginning now unless one began within the last $2
// seconds; it returns a row only when it did. The time is the database's own (every
// host's replicas agree on it); a time ahead of it (written by a database clock since
// set back) does not stop the listings: it is replaced.
const takeSQL = `
	INSERT INTO ecomstream_listing_turns AS t (source, began_at) VALUES ($1, clock_timestamp())
	ON CONFLICT (source) DO UPDATE SET began_at = excluded.began_at
	WHERE t.began_at <= excluded.began_at - make_interval(secs => $2) OR t.began_at > excluded.began_at
	RETURNING began_at`

// Take tells whether the caller should list the source now: true when no listing of it
// began within the last within, and the caller's listing is then recorded as begun. Two
// replicas asking at once: one gets the turn (the row is locked, the other sees its
// time). An error leaves the decision to the caller (list: the listing is the safe side).
func (t *Turns) Take(ctx context.Context, within time.Duration) (bool, error) {
	var began time.Time
	err := t.Pool.QueryRow(ctx, takeSQL, t.Source, within.Seconds()).Scan(&began)
	switch {
	case err == nil:
		t.mu.Lock()
		t.taken = began
		t.mu.Unlock()
		return true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	default:
		return false, fmt.Errorf("listing turn of %s: %w", t.Source, err)
	}
}

// giveSQL dates the turn of $1 taken at $2 to the earliest time, so that the next to ask
// takes it; a turn since taken by another is left as it is.
const giveSQL = `UPDATE ecomstream_listing_turns SET began_at = '-infinity' WHERE source = $1 AND began_at = $2`

// Give hands back the last turn this one took: its listing failed, and the
// other replicas would have left theirs to it. An error is returned to be logged; the
// turn then lapses at the end of the others' intervals.
func (t *Turns) Give(ctx context.Context) error {
	t.mu.Lock()
	began := t.taken
	t.taken = time.Time{}
	t.mu.Unlock()
	if began.IsZero() {
		return nil
	}
	if _, err := t.Pool.Exec(ctx, giveSQL, t.Source, began); err != nil {
		return fmt.Errorf("handing back the listing turn of %s: %w", t.Source, err)
	}
	return nil
}
