// Package load commits a batch of files to PostgreSQL in one transaction: the good rows
// by COPY, the rejected rows with their reasons, and one ledger row per file, so "is this
// file done?" has one answer and a crash at any instant loses and duplicates nothing.
//
// Exactly once across replicas: each file is claimed with a session advisory lock keyed
// on its name, held from before the transaction until the file has been moved out of the
// directory; a replica that cannot take the lock leaves the file to its holder. A file
// whose (name, sha256) is already in the ledger is not loaded again.
//
// Duplicates: the common case has none, so rows are copied straight into events (the
// primary key checks them for free). If COPY hits a duplicate key the transaction is
// rolled back and the batch goes again through a staging table with
// INSERT ... ON CONFLICT DO NOTHING, which stores each (event_id, event_time) once and
// counts the rest.
package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/table"
	"github.com/ecomstream/ecomstream/services/ingester/internal/retry"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// File outcomes.
const (
	OutcomeIngested         = "ingested"          // rows loaded (some may be rejected or duplicates)
	OutcomeFailed           = "failed"            // whole file rejected; moved to the failed directory
	OutcomeAlreadyCommitted = "already_committed" // in the ledger with the same bytes: nothing to load
	OutcomeLocked           = "locked"            // another replica holds it
	OutcomeGone             = "gone"              // vanished before it was read (moved by another replica)
	// OutcomeRetry: the operating system would not let the file be read (EMFILE, EIO,
	// EACCES, ESTALE...). That says nothing about its content: nothing is committed for
	// it, and it is tried again later (FileResult.Err says why).
	OutcomeRetry = "retry"
	// OutcomeChanged: the path no longer names the regular file that was claimed (it was
	// replaced, or a symlink, FIFO, socket or device was put there). It is not read.
	OutcomeChanged = "changed"
)

// ReasonDatabaseRejected is a whole-file rejection by PostgreSQL itself: a value the
// contract's validation let through but the database refused.
const ReasonDatabaseRejected = "database_rejected"

// IsDataError tells whether PostgreSQL refused the data itself (SQLSTATE classes 22 data
// exception, 23 integrity other than duplicate keys, 54 program limit), which no retry
// will fix, as opposed to a connection or server problem, which a retry will.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code == "23505" {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23" || class == "54"
}

// ErrDuplicateKey means the direct COPY met an event_id already stored; Load then goes
// again through staging, so no caller sees it.
var ErrDuplicateKey = errors.New("duplicate event_id in direct COPY")

// eventsTable describes events once (services/common/table): the COPY column list, the
// staging table, the merge and the binary encoding (copyrow_gen.go) are derived from it.
var eventsTable = table.Events

var columns = eventsTable.Names()

// FileResult is what the batch decided for one file.
type FileResult struct {
	// File is the item as it was taken; once it has been read, its Version is what was
	// read (the caller finishes only that version: a newer one stays to be loaded).
	File      input.Item
	Outcome   string
	SHA256    string
	Total     int64 // data records, malformed ones included
	Inserted  int64
	Rejected  int64
	Duplicate int64
	Failure   *event.Rejection // why the whole file was rejected
	Extra     []string         // unknown header columns (ignored)
	// Committed is the outcome the ledger already holds for these bytes (with
	// OutcomeAlreadyCommitted): "ingested" or "failed". The ledger decides where the file
	// goes: a committed failure goes to the failed directory, whatever path found it.
	Committed string
	Err       error // why, with OutcomeRetry
	good      int64 // rows that passed validation
	stored    int64 // rejected rows stored with their raw line
}

// Batch is a committed batch.
type Batch struct {
	Files     []*FileResult
	Staging   bool
	Committed time.Time
	Duration  time.Duration
	open      Opener
	waited    bool // found every load slot taken and waited for one
}

// toLoad tells whether any file of the batch is still to be read and committed (none
// is another replica's, gone, already committed or unreadable).
func (b *Batch) toLoad() bool {
	for _, f := range b.Files {
		if f.Outcome == OutcomeIngested {
			return true
		}
	}
	return false
}

// Rows returns the rows of the batch's committed files.
func (b *Batch) Rows() (n int64) {
	for _, f := range b.Files {
		n += f.Total
	}
	return n
}

// Loader runs batches against one pool.
type Loader struct {
	Pool        *pgxpool.Pool
	Instance    string
	MaxRejected int // rejected rows buffered before a flush
	// MaxRejectedPerFile caps the rejected rows stored per file (0: no cap); the rest are
	// counted in the ledger's records_rejected, not stored.
	MaxRejectedPerFile int
	// Retry: the database policy times Retry outcomes; Staging is how many batches go
	// straight through staging after a duplicate key. retry.Defaults() when zero.
	Retry retry.Policies
	// LoadSlots bounds the batches loading at once in the database across every replica
	// (0: no bound); see takeSlot.
	LoadSlots int
	tally     tally
}

// Claim is a batch in progress: the connection holding the files' advisory locks. Call
// Release once the committed files have been moved out of the input directory.
type Claim struct {
	conn *pgxpool.Conn
}

// Release drops the advisory locks and returns the connection to the pool.
func (c *Claim) Release() {
	if c == nil || c.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.conn.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		// The session may be broken; closing it releases its locks in the server.
		_ = c.conn.Conn().Close(ctx)
	}
	c.conn.Release()
	c.conn = nil
}

// Load commits items in one transaction, reading them through open. A direct COPY that
// meets a duplicate event_id is rolled back and the batch goes again through the staging
// table (and so do the next few batches): the caller never sees that retry. With Done,
// Outcome.Claim holds the items' locks until the caller has finished them; otherwise
// nothing was committed and no lock is held.
func (l *Loader) Load(ctx context.Context, open Opener, items []input.Item) Outcome {
	staging, rolled := l.stagingNext(), 0
	b, claim, waited, err := l.load(ctx, open, items, staging)
	if errors.Is(err, ErrDuplicateKey) {
		rolled++
		l.sawDuplicate()
		var again bool
		b, claim, again, err = l.load(ctx, open, items, true)
		waited = waited || again
	}
	o := l.verdict(b, claim, err)
	o.RolledBack += rolled
	o.Waited = waited
	return o
}

// load is one attempt of Load; waited tells whether it waited for a load slot.
func (l *Loader) load(ctx context.Context, open Opener, items []input.Item, staging bool) (b *Batch, c *Claim, waited bool, err error) {
	batch := &Batch{Staging: staging, open: open}
	for _, it := range items {
		batch.Files = append(batch.Files, &FileResult{File: it, Outcome: OutcomeIngested})
	}
	b, c, err = l.commit(ctx, batch, func(tx pgx.Tx) error { return l.fill(ctx, tx, batch) })
	return b, c, batch.waited, err
}

// Reject commits a whole-file rejection of one item without loading its rows: an item
// PostgreSQL refused must be moved aside rather than block every item behind it. Like
// Load, a Done outcome's Claim is to be released once the item has been finished.
func (l *Loader) Reject(ctx context.Context, open Opener, it input.Item, rej *event.Rejection) Outcome {
	fr := &FileResult{File: it, Outcome: OutcomeIngested}
	batch := &Batch{Files: []*FileResult{fr}, open: open}
	b, claim, err := l.commit(ctx, batch, func(tx pgx.Tx) error {
		if fr.Outcome != OutcomeIngested { // locked elsewhere, gone or already committed
			return nil
		}
		sum, v, err := fileSHA256(ctx, open, it)
		if settleReadError(fr, err) {
			return nil
		}
		fr.File.Version = v
		fr.Outcome, fr.SHA256, fr.Failure = OutcomeFailed, sum, rej
		if _, err := tx.Exec(ctx, `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message)
			VALUES ($1, 0, '', $2, $3)`, it.Name, rej.Reason, rej.Message); err != nil {
			return fmt.Errorf("reject file: %w", err)
		}
		return l.insertLedger(ctx, tx, batch)
	})
	o := l.verdict(b, claim, err)
	o.Waited = batch.waited
	return o
}

// commit claims b's files on one connection, runs body in a transaction on it and
// commits. On success the returned Claim still holds the files' locks; on error nothing
// was committed and no lock is held.
func (l *Loader) commit(ctx context.Context, b *Batch, body func(pgx.Tx) error) (*Batch, *Claim, error) {
	start := time.Now()
	conn, err := l.Pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("acquire connection: %w", err)
	}
	claim := &Claim{conn: conn}
	fail := func(err error) (*Batch, *Claim, error) {
		claim.Release()
		return nil, nil, err
	}
	if err := l.claim(ctx, conn, b); err != nil {
		return fail(err)
	}
	if !b.toLoad() {
		// Every file is another replica's, gone, or already in the ledger: there is
		// nothing to write, so no transaction and no load slot. Replicas that list the
		// same objects often claim a batch of which none is theirs (three replicas on
		// one bucket, BenchmarkBucketPipeline: 38 of 60 batches); waiting for a slot
		// behind the batches that load, and an empty COPY once it had one, kept a
		// worker from the objects it could take meanwhile.
		b.Committed = time.Now()
		b.Duration = b.Committed.Sub(start)
		return b, claim, nil
	}
	tx, err := l.begin(ctx, conn, b)
	if err != nil {
		return fail(err)
	}
	claimed(b)
	if err := body(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	b.Committed = time.Now()
	b.Duration = b.Committed.Sub(start)
	return b, claim, nil
}

// SlotKey is the first key of the load slots' advisory locks ('ecom'); the second is the
// slot's number. Locks of two int4 keys never meet the files' bigint keys. Exported for
// the tests that hold a slot from outside to keep a batch waiting.
const SlotKey = 0x65636f6d

// begin starts the batch's transaction holding one of LoadSlots slots, waiting for one
// if need be (and noting it in b). A statement timeout while waiting (a long queue)
// waits again.
func (l *Loader) begin(ctx context.Context, conn *pgxpool.Conn, b *Batch) (pgx.Tx, error) {
	for {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("begin: %w", err)
		}
		waited, err := l.takeSlot(ctx, tx)
		b.waited = b.waited || waited
		if err == nil {
			return tx, nil
		}
		_ = tx.Rollback(context.WithoutCancel(ctx))
		if !db.IsQueryCanceled(err) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// takeSlot waits inside tx for one of LoadSlots slots, held until tx ends (a
// transaction-level advisory lock), so that at most LoadSlots batches load at once in
// the database whatever the number of replicas and workers. PostgreSQL's cores are
// the bound: on 2 cores, 6 COPY streams (three replicas of 2 workers) loaded half as
// many rows a second as 2, their backends queueing on the same index pages (LWLock
// BufferContent) and on extending the same relations (BenchmarkBucketPipeline's
// pg_stat_activity samples). The claim comes first, so a batch waiting for a slot holds
// its items and no other replica reads them. A free slot is taken at once; else the
// batch queues on the slot with the fewest batches already queued on it, of those the
// one whose holder began first (batches are alike: it is the first to end). A lock waits
// on one key, not on any of N, so a slot may free up while a batch queues on another:
// it waits at most for the batch ahead of it. waited tells whether no slot was free.
func (l *Loader) takeSlot(ctx context.Context, tx pgx.Tx) (waited bool, err error) {
	if l.LoadSlots <= 0 {
		return false, nil
	}
	var free bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM generate_series(0, $1 - 1) s
		WHERE pg_try_advisory_xact_lock($2, s))`, l.LoadSlots, SlotKey).Scan(&free); err != nil {
		return false, fmt.Errorf("load slot: %w", err)
	}
	if free {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `WITH k AS (
			SELECT k.objid::int AS s, k.granted, a.xact_start FROM pg_locks k LEFT JOIN pg_stat_activity a ON a.pid = k.pid
			WHERE k.locktype = 'advisory' AND k.objsubid = 2 AND k.classid = $2::int::oid
			  AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
		SELECT pg_advisory_xact_lock($2::int, (
			SELECT s FROM generate_series(0, $1 - 1) s
			ORDER BY (SELECT count(*) FROM k WHERE k.s = s.s AND NOT k.granted),
			         (SELECT min(k.xact_start) FROM k WHERE k.s = s.s AND k.granted) NULLS FIRST, random()
			LIMIT 1))`, l.LoadSlots, SlotKey); err != nil {
		return true, fmt.Errorf("load slot: %w", err)
	}
	return true, nil
}

// claimSQL locks the files named in $1 and reads what the ledger holds of them.
const claimSQL = `
		SELECT f.name,
		       pg_try_advisory_lock(hashtextextended('ecomstream.file:' || f.name, 0)),
		       coalesce((SELECT array_agg(i.sha256) FROM ingested_files i WHERE i.file_name = f.name), '{}'),
		       coalesce((SELECT array_agg(i.outcome) FROM ingested_files i WHERE i.file_name = f.name), '{}')
		FROM unnest($1::text[]) WITH ORDINALITY AS f(name, n) ORDER BY f.n`

// claim takes the advisory lock of every file it can and reads what the ledger already
// knows of them; a file with the same name and bytes in the ledger is already committed.
func (l *Loader) claim(ctx context.Context, conn *pgxpool.Conn, b *Batch) error {
	names := make([]string, len(b.Files))
	for i, f := range b.Files {
		names[i] = f.File.Name
	}
	rows, err := conn.Query(ctx, claimSQL, names)
	if err != nil {
		return fmt.Errorf("claim files: %w", err)
	}
	i := 0
	for rows.Next() {
		var name string
		var locked bool
		var shas, outcomes []string
		if err := rows.Scan(&name, &locked, &shas, &outcomes); err != nil {
			rows.Close()
			return fmt.Errorf("claim files: %w", err)
		}
		fr := b.Files[i]
		i++
		switch {
		case !locked:
			fr.Outcome = OutcomeLocked
		case len(shas) > 0:
			sum, v, err := fileSHA256(ctx, b.open, fr.File)
			if settleReadError(fr, err) {
				continue // this file only; the others of the batch go on
			}
			fr.File.Version = v
			for k, s := range shas {
				if s == sum {
					fr.Outcome, fr.SHA256, fr.Committed = OutcomeAlreadyCommitted, sum, outcomes[k]
				}
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("claim files: %w", err)
	}
	return l.committedFailures(ctx, conn, b)
}

// claimed tells b's opener, if it reads ahead, the items the claim took. It is told once
// the batch holds its slot, not before: a batch may wait for a slot without bound (a
// statement timeout only restarts the wait), and a response body opened ahead and left
// unread that long may be dropped by the server or a proxy, failing the batch on a read
// error counted against its objects.
func claimed(b *Batch) {
	c, ok := b.open.(ClaimedOpener)
	if !ok {
		return
	}
	var toRead []input.Item
	for _, fr := range b.Files {
		if fr.Outcome == OutcomeIngested {
			toRead = append(toRead, fr.File)
		}
	}
	c.Claimed(toRead)
}

// committedFailures reads the reason of each file the ledger holds as failed, so it can
// go to the failed directory with its reason file even when the move after the commit
// never happened (a crash, a failed move).
func (l *Loader) committedFailures(ctx context.Context, conn *pgxpool.Conn, b *Batch) error {
	for _, fr := range b.Files {
		if fr.Outcome != OutcomeAlreadyCommitted || fr.Committed != OutcomeFailed {
			continue
		}
		rej := &event.Rejection{Reason: "failed", Message: "the ledger records this file as failed"}
		err := conn.QueryRow(ctx, `SELECT reason, coalesce(message, '') FROM rejected_records
			WHERE source_file = $1 AND line_number = 0 ORDER BY rejected_at DESC LIMIT 1`, fr.File.Name).Scan(&rej.Reason, &rej.Message)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("failure reason of %s: %w", fr.File.Name, err)
		}
		fr.Failure = rej
	}
	return nil
}

// settleReadError sets fr's outcome for an error of opening or hashing it and tells
// whether there was one. No OS error is a verdict on the content: none makes it failed.
func settleReadError(fr *FileResult, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, input.ErrGone):
		fr.Outcome = OutcomeGone
	case errors.Is(err, input.ErrChanged):
		fr.Outcome, fr.Err = OutcomeChanged, err
	default:
		fr.Outcome, fr.Err = OutcomeRetry, err
	}
	return true
}

// fill runs the statements of one batch inside tx.
func (l *Loader) fill(ctx context.Context, tx pgx.Tx, b *Batch) error {
	src := newSource(b.Files, b.Staging, time.Now(), max(l.MaxRejected, 1), l.MaxRejectedPerFile)
	src.ctx, src.open = ctx, b.open
	defer src.close()
	table := pgx.Identifier{"events"}
	cols := columns
	if b.Staging {
		if _, err := tx.Exec(ctx, eventsTable.StagingDDL("ecomstream_staging", "ord bigint")); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		table = pgx.Identifier{"ecomstream_staging"}
		cols = append(append([]string(nil), columns...), "ord")
	}
	copySQL := "COPY " + table.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
	for {
		src.paused = false
		cr := newCopyReader(src)
		_, err := tx.Conn().PgConn().CopyFrom(ctx, cr, copySQL)
		cr.stop()
		if err != nil {
			if err := src.Err(); err != nil {
				return err // a read error aborted the COPY: the file's error, not PostgreSQL's
			}
			if db.IsUniqueViolation(err) {
				return ErrDuplicateKey
			}
			return fmt.Errorf("copy events: %w", err)
		}
		if err := l.flushRejected(ctx, tx, src); err != nil {
			return err
		}
		if !src.paused {
			break
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	if b.Staging {
		if err := l.mergeStaging(ctx, tx, b); err != nil {
			return err
		}
	} else {
		for _, f := range b.Files {
			f.Inserted = f.good
		}
	}
	return l.insertLedger(ctx, tx, b)
}

// mergeStaging inserts each staged (event_id, event_time) once, the primary key of the
// partitioned events (the first occurrence in file order),
// and counts, per file, what was inserted; the rest were duplicates.
func (l *Loader) mergeStaging(ctx context.Context, tx pgx.Tx, b *Batch) error {
	file := eventsTable.Column(table.SourceFile)
	rows, err := tx.Query(ctx, "WITH ins AS ("+eventsTable.Merge("ecomstream_staging", "ord", file)+")\n"+
		"SELECT "+file+", count(*) FROM ins GROUP BY "+file)
	if err != nil {
		return fmt.Errorf("merge staged rows: %w", err)
	}
	inserted := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			rows.Close()
			return err
		}
		inserted[name] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("merge staged rows: %w", err)
	}
	for _, f := range b.Files {
		if f.Outcome == OutcomeIngested {
			f.Inserted = inserted[f.File.Name]
			f.Duplicate = f.good - f.Inserted
		}
	}
	return nil
}

func (l *Loader) flushRejected(ctx context.Context, tx pgx.Tx, src *source) error {
	if len(src.rejected) == 0 {
		return nil
	}
	rows := src.rejected
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"rejected_records"},
		[]string{"source_file", "line_number", "raw_line", "reason", "message"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := &rows[i]
			return []any{r.file, r.line, r.raw, r.reason, r.message}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy rejected rows: %w", err)
	}
	clear(src.rejected) // let the flushed lines go before the buffer refills
	src.rejected, src.rejBytes = src.rejected[:0], 0
	return nil
}

// ledgerSQL writes the ledger rows of a batch, one per element of its arrays.
const ledgerSQL = `
		INSERT INTO ingested_files (file_name, sha256, outcome, file_created_at, records_total,
			records_inserted, records_rejected, records_duplicate, bytes, ingester_instance)
		SELECT *, $10 FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
			$5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])`

// Prime readies a session for its first batch (db.Warm runs it on the sessions opened at
// start): it prepares the claim and the ledger statements, with nothing to claim or
// write, and plans a read of the latest events partitions, so that the session has
// loaded the ledger's and those partitions' descriptions and their indexes'. A new
// session did all that on its first batch's path: with the sessions of a start (the
// workers' and those behind them), their first batches took 20-45 ms more to claim and
// as much more to copy, and the objects that came meanwhile queued behind them
// (BenchmarkBucketPipeline's notify run: most of its objects over 100 ms came in the
// first second).
func (l *Loader) Prime(ctx context.Context, conn *pgxpool.Conn) error {
	rows, err := conn.Query(ctx, claimSQL, []string{})
	if err != nil {
		return fmt.Errorf("prime the claim: %w", err)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("prime the claim: %w", err)
	}
	if _, err := conn.Exec(ctx, ledgerSQL, []string{}, []string{}, []string{}, []time.Time{},
		[]int64{}, []int64{}, []int64{}, []int64{}, []int64{}, l.Instance); err != nil {
		return fmt.Errorf("prime the ledger: %w", err)
	}
	// Planned over the partitions of the last day (daily ones: today's and yesterday's),
	// which opens each with its indexes; nothing is read. The bounds are constants when
	// it is planned (the simple protocol writes them into the statement): with now() in
	// it, the planner could prune nothing and opened and locked every partition and its
	// indexes, the table's whole history (daily partitions accumulate with no retention
	// set), in every session primed at once.
	now := time.Now()
	if _, err := conn.Exec(ctx, `SELECT 1 FROM events WHERE event_time >= $1 AND event_time < $2 LIMIT 0`,
		pgx.QueryExecModeSimpleProtocol, now.Add(-24*time.Hour), now.Add(time.Hour)); err != nil {
		return fmt.Errorf("prime events: %w", err)
	}
	return nil
}

// insertLedger writes one row per file whose outcome this batch commits.
func (l *Loader) insertLedger(ctx context.Context, tx pgx.Tx, b *Batch) error {
	var (
		names, shas, outcomes       []string
		mtimes                      []time.Time
		total, ins, rej, dup, bytes []int64
	)
	for _, f := range b.Files {
		if f.Outcome != OutcomeIngested && f.Outcome != OutcomeFailed {
			continue
		}
		names = append(names, f.File.Name)
		shas = append(shas, f.SHA256)
		outcomes = append(outcomes, f.Outcome)
		mtimes = append(mtimes, f.File.ModTime)
		total = append(total, f.Total)
		ins = append(ins, f.Inserted)
		rej = append(rej, f.Rejected)
		dup = append(dup, f.Duplicate)
		bytes = append(bytes, f.File.Size)
	}
	if len(names) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, ledgerSQL, names, shas, outcomes, mtimes, total, ins, rej, dup, bytes, l.Instance)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// ReapStalled ends the sessions of any ingester replica (application_name starting with
// prefix) that have been waiting for their client's next message for longer than after
// while inside a transaction: a replica frozen mid-batch (SIGSTOP, a hung disk under
// its read). PostgreSQL's own timeouts do not end all of those: a backend reading COPY
// data from a client that is alive but silent does not act on statement_timeout, and
// once COPY data that was in flight when the statement failed has been read and
// ignored, idle_in_transaction_session_timeout is not armed again (seen on PostgreSQL
// 15: "idle in transaction (aborted)" for minutes with a 2 s timeout); the client's
// kernel still answers keepalives. A healthy replica never waits on itself that long
// inside a transaction. Ending the session releases its claims, so the other replicas
// take the files, and rolls back the frozen replica's transaction. Replicas connect as
// one role, which may end its own sessions. It returns how many it ended.
func (l *Loader) ReapStalled(ctx context.Context, prefix string, after time.Duration) (int, error) {
	var n int
	err := l.Pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND starts_with(application_name, $1)
		  AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
		  AND wait_event = 'ClientRead' AND state_change < now() - make_interval(secs => $2)`, prefix, after.Seconds()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("end stalled sessions: %w", err)
	}
	return n, nil
}
