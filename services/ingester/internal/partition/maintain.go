package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// maintenanceLock is the advisory lock key one replica holds while it maintains.
const maintenanceLock = 0x65706172 // "epar"

// maxCreatePerPass bounds the partitions one pass makes for rows found in the default
// partition (a file of very old events should not stall a pass for minutes).
const maxCreatePerPass = 64

// deleteBatch is how many ledger or rejected rows one retention statement removes.
const deleteBatch = 10000

// Maintainer keeps events' partitions and the retention windows.
type Maintainer struct {
	Pool *pgxpool.Pool
	Opt  Options
	Log  zerolog.Logger
	Now  func() time.Time // the clock; tests move it
}

// Report is what one pass did.
type Report struct {
	Created     []string
	Moved       int64 // rows moved from the default partition into created partitions
	Dropped     []string
	Deleted     map[string]int64 // rows removed by retention, by table
	DefaultRows int64            // rows left in the default partition
	Coverage    time.Duration    // newest partition's end minus now
	measured    bool             // DefaultRows and Coverage were read (a failed retention step does not stop that)
}

// ErrLocked means another replica holds the maintenance lock (Pass with wait false).
var ErrLocked = errors.New("partition maintenance: another replica holds the lock")

// Pass runs one maintenance pass under the maintenance lock: waiting for it (the migrate
// command, which must leave partitions ready) or, with wait false, skipping with
// ErrLocked when another replica holds it.
func (m *Maintainer) Pass(ctx context.Context, wait bool) (Report, error) {
	r := Report{Deleted: map[string]int64{}}
	conn, err := m.Pool.Acquire(ctx)
	if err != nil {
		return r, fmt.Errorf("partition maintenance: %w", err)
	}
	defer conn.Release()
	if wait {
		_, err = conn.Exec(ctx, "SELECT pg_advisory_lock($1)", maintenanceLock)
	} else {
		var got bool
		err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", maintenanceLock).Scan(&got)
		if err == nil && !got {
			return r, ErrLocked
		}
	}
	if err != nil {
		return r, fmt.Errorf("partition maintenance: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", maintenanceLock) //nolint:errcheck
	err = m.pass(ctx, conn, &r)
	return r, err
}

func (m *Maintainer) pass(ctx context.Context, conn *pgxpool.Conn, r *Report) error {
	now := m.Now().UTC()
	w := m.Opt.Width
	parts, err := List(ctx, conn)
	if err != nil {
		return err
	}
	// The window: the previous slot (late rows around the boundary), the current one and
	// Ahead more.
	var want [][2]time.Time
	for i := -1; i <= m.Opt.Ahead; i++ {
		from, to := Slot(now.Add(time.Duration(i)*w), w)
		want = append(want, gaps(from, to, parts)...)
	}
	if err := m.createAll(ctx, conn, want, r); err != nil {
		return err
	}
	// Retention counts on the older of this host's clock and the database's: the
	// database refuses a cutoff newer than its policy allows by its own clock
	// (sql/0006), so a host clock ahead of it would be refused, and a host clock wrongly
	// ahead should not remove anything early either.
	cutoffs := now
	if m.Opt.Retention > 0 || m.Opt.LedgerRetention > 0 || m.Opt.RejectedRetention > 0 {
		var dbNow time.Time
		if err := conn.QueryRow(ctx, "SELECT now()").Scan(&dbNow); err != nil {
			return fmt.Errorf("read the database's clock: %w", err)
		}
		if dbNow.Before(cutoffs) {
			cutoffs = dbNow.UTC()
		}
	}
	cutoff := minTime
	if m.Opt.Retention > 0 {
		cutoff = cutoffs.Add(-m.Opt.Retention)
	}
	// Rows that reached the default partition get a partition of their own, unless they
	// are already past retention (they are deleted below).
	if parts, err = List(ctx, conn); err != nil {
		return err
	}
	ranges, err := occupied(ctx, conn, Default, cutoff, w, parts, maxCreatePerPass)
	if err != nil {
		return err
	}
	if err := m.createAll(ctx, conn, ranges, r); err != nil {
		return err
	}
	// Each kind's retention is a step of its own: one that fails (above all one the
	// database's policy refuses) is reported with the pass, and the others still run.
	var failed []error
	if m.Opt.Retention > 0 {
		if err := m.expire(ctx, conn, cutoff, r); err != nil {
			failed = append(failed, err)
		}
	}
	for _, t := range []struct {
		table string
		keep  time.Duration
	}{{"ingested_files", m.Opt.LedgerRetention}, {"rejected_records", m.Opt.RejectedRetention}} {
		if t.keep <= 0 {
			continue
		}
		n, err := deleteOlder(ctx, conn, t.table, cutoffs.Add(-t.keep))
		r.Deleted[t.table] += n
		if n > 0 {
			m.Log.Info().Str("table", t.table).Int64("rows", n).Str("retention", Retention(t.keep).String()).Msg("retention: rows deleted")
		}
		if err != nil {
			failed = append(failed, err)
		}
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+Default).Scan(&r.DefaultRows); err != nil {
		return fmt.Errorf("count %s: %w", Default, err)
	}
	if parts, err = List(ctx, conn); err != nil {
		return err
	}
	if len(parts) > 0 {
		r.Coverage = parts[len(parts)-1].To.Sub(now)
	}
	r.measured = true
	return errors.Join(failed...)
}

func (m *Maintainer) createAll(ctx context.Context, conn *pgxpool.Conn, ranges [][2]time.Time, r *Report) error {
	for _, g := range ranges {
		moved, err := create(ctx, conn, g[0], g[1], m.Opt.LockTimeout)
		if err != nil {
			return err
		}
		r.Created = append(r.Created, Name(g[0]))
		r.Moved += moved
		m.Log.Info().Str("partition", Name(g[0])).Time("from", g[0]).Time("to", g[1]).Int64("rows_moved_from_default", moved).Msg("partition created")
	}
	return nil
}

// expire drops the partitions wholly older than cutoff and deletes the default
// partition's rows older than it.
func (m *Maintainer) expire(ctx context.Context, conn *pgxpool.Conn, cutoff time.Time, r *Report) error {
	parts, err := List(ctx, conn)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if p.To.After(cutoff) {
			break // sorted: the rest are newer
		}
		if p.Rows < 0 { // never analysed (autovacuum has not reached it): count it
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{p.Name}.Sanitize()).Scan(&p.Rows); err != nil {
				return fmt.Errorf("count %s: %w", p.Name, err)
			}
		}
		if err := drop(ctx, conn, p, cutoff, m.Opt.LockTimeout); err != nil {
			return err
		}
		r.Dropped = append(r.Dropped, p.Name)
		r.Deleted[Table] += p.Rows
		m.Log.Info().Str("partition", p.Name).Time("from", p.From).Time("to", p.To).Int64("rows", p.Rows).
			Int64("bytes", p.Bytes).Str("retention", Retention(m.Opt.Retention).String()).Msg("retention: partition dropped")
	}
	var n int64
	if err := conn.QueryRow(ctx, "SELECT public.ecomstream_expire_default($1)", cutoff).Scan(&n); err != nil {
		return fmt.Errorf("retention of %s: %w", Default, err)
	}
	if n > 0 {
		r.Deleted[Table] += n
		m.Log.Info().Str("partition", Default).Int64("rows", n).Time("before", cutoff).Msg("retention: rows deleted")
	}
	return nil
}

// deleteOlder removes table's rows whose column is before cutoff, in short transactions
// (sql/0005's ecomstream_prune: the ingester may not DELETE itself).
func deleteOlder(ctx context.Context, conn *pgxpool.Conn, table string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT public.ecomstream_prune($1, $2, $3)", table, cutoff, deleteBatch).Scan(&n); err != nil {
			return total, fmt.Errorf("retention of %s: %w", table, err)
		}
		total += n
		if n < deleteBatch {
			return total, nil
		}
	}
}

// occupied walks table's event_time index slot by slot from since, returning the parts
// of occupied slots that no partition covers, at most limit of them: one index probe
// per occupied slot, however many rows each holds.
func occupied(ctx context.Context, conn *pgxpool.Conn, table string, since time.Time, w time.Duration, parts []Partition, limit int) ([][2]time.Time, error) {
	var out [][2]time.Time
	cursor := since
	for len(out) < limit {
		var t *time.Time
		if err := conn.QueryRow(ctx, "SELECT min(event_time) FROM "+pgx.Identifier{table}.Sanitize()+" WHERE event_time >= $1", cursor).Scan(&t); err != nil {
			return nil, fmt.Errorf("scan %s for occupied ranges: %w", table, err)
		}
		if t == nil {
			break
		}
		from, to := Slot(*t, w)
		out = append(out, gaps(from, to, parts)...)
		cursor = to
	}
	return out, nil
}

// Loop runs a pass every Interval until ctx ends, the first at once. A pass another
// replica is running is skipped; a failed one is logged and counted and tried again at
// the next tick.
func (m *Maintainer) Loop(ctx context.Context, met *Metrics) {
	t := time.NewTicker(m.Opt.Interval)
	defer t.Stop()
	for {
		m.Once(ctx, met)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once is one pass of the loop: skipped while another replica maintains, counted by
// outcome, its failure logged.
func (m *Maintainer) Once(ctx context.Context, met *Metrics) {
	r, err := m.Pass(ctx, false)
	switch {
	case errors.Is(err, ErrLocked):
		met.record(r, "skipped")
	case err != nil && ctx.Err() == nil && IsPolicyRefusal(err):
		// Not retried sooner: the policy changes only with `ingester migrate`.
		m.Log.Error().Err(err).Msg("retention refused by the database's retention policy: this ingester's retention is shorter than " +
			"the policy `ingester migrate` wrote (give both the same INGESTER_*_RETENTION); the rest of the maintenance ran, " +
			"retrying at the next interval")
		met.record(r, "error")
	case err != nil && ctx.Err() == nil:
		m.Log.Error().Err(err).Msg("partition maintenance failed; retrying at the next interval")
		met.record(r, "error")
	case err == nil:
		met.record(r, "done")
		if r.DefaultRows > 0 {
			m.Log.Warn().Int64("rows", r.DefaultRows).Msg("rows in the default partition: no partition covers their event_time")
		}
	}
}
