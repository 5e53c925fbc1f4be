// Package partition keeps the range-partitioned events table ready for the rows that
// come and rid of the rows that have gone past retention: it creates partitions ahead of
// time, moves rows out of the default partition when their partition is made, drops
// whole partitions past EVENTS_RETENTION, prunes the ledger and the rejected rows, and
// converts an unpartitioned events table of an earlier version (Convert).
//
// Why a default partition: a row whose event_time has no partition yet (a late file, an
// ingester that ran before the maintenance loop) is stored there and counted rather than
// refused; the loop then makes the partition for its range and moves it. PostgreSQL
// refuses to create a partition while the default holds rows of its range, so a
// partition is made as a plain table, filled with those rows, and attached, all in one
// transaction that holds the default partition against new writes.
//
// Only one replica maintains at a time (a session advisory lock; the others skip the
// pass), and every change is a short transaction under a lock timeout, so the ingesters'
// batches are never stalled for long behind partition DDL.
package partition

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Table is the partitioned table; Default its default partition (sql/0004).
const (
	Table   = "events"
	Default = "events_default"
)

// Partition is one attached range partition of events: [From, To).
type Partition struct {
	Name     string
	From, To time.Time
	Rows     int64 // PostgreSQL's estimate (pg_class.reltuples); -1 before the first ANALYZE
	Bytes    int64 // with its indexes
}

var (
	boundRE = regexp.MustCompile(`^FOR VALUES FROM \((.+)\) TO \((.+)\)$`)
	// The far ends of MINVALUE and MAXVALUE, for arithmetic.
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// List returns events' range partitions in time order (the default one excluded).
func List(ctx context.Context, q *pgxpool.Conn) ([]Partition, error) {
	var out []Partition
	// pg_get_expr prints the bounds in the session's time zone: UTC, for the parser.
	err := pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL TimeZone = 'UTC'"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint, pg_total_relation_size(c.oid)
			FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = $1::regclass`, Table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p Partition
			var bound string
			if err := rows.Scan(&p.Name, &bound, &p.Rows, &p.Bytes); err != nil {
				return err
			}
			if bound == "DEFAULT" {
				continue
			}
			m := boundRE.FindStringSubmatch(bound)
			if m == nil {
				return fmt.Errorf("partition %s: unexpected bound %q", p.Name, bound)
			}
			if p.From, err = parseBound(m[1]); err != nil {
				return fmt.Errorf("partition %s: %w", p.Name, err)
			}
			if p.To, err = parseBound(m[2]); err != nil {
				return fmt.Errorf("partition %s: %w", p.Name, err)
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", Table, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out, nil
}

func parseBound(s string) (time.Time, error) {
	switch s {
	case "MINVALUE":
		return minTime, nil
	case "MAXVALUE":
		return maxTime, nil
	}
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return time.Time{}, fmt.Errorf("unexpected bound value %s", s)
	}
	t, err := time.Parse("2006-01-02 15:04:05.999999999-07", s[1:len(s)-1])
	if err != nil {
		return time.Time{}, fmt.Errorf("bound %s: %w", s, err)
	}
	return t.UTC(), nil
}

// Slot is the aligned range of width w containing t (aligned to UTC midnight for w
// dividing a day, and to whole multiples of w since year 1 otherwise).
func Slot(t time.Time, w time.Duration) (from, to time.Time) {
	from = t.UTC().Truncate(w)
	return from, from.Add(w)
}

// gaps returns the parts of [from, to) no partition covers, in order.
func gaps(from, to time.Time, parts []Partition) [][2]time.Time {
	var out [][2]time.Time
	cur := from
	for _, p := range parts { // sorted by From
		if !p.To.After(cur) || !p.From.Before(to) {
			continue
		}
		if p.From.After(cur) {
			out = append(out, [2]time.Time{cur, p.From})
		}
		cur = p.To
		if !cur.Before(to) {
			return out
		}
	}
	if cur.Before(to) {
		out = append(out, [2]time.Time{cur, to})
	}
	return out
}

// Name is a partition's name: events_pYYYYMMDD for one starting at midnight UTC,
// with _HHMM (and SS) appended otherwise. Partitions never overlap, so starts are unique.
func Name(from time.Time) string {
	from = from.UTC()
	switch {
	case from.Equal(from.Truncate(24 * time.Hour)):
		return Table + "_p" + from.Format("20060102")
	case from.Second() == 0:
		return Table + "_p" + from.Format("20060102_1504")
	}
	return Table + "_p" + from.Format("20060102_150405")
}

// create makes the partition [from, to), moving into it any rows the default partition
// holds for that range, in one transaction, and returns how many rows it moved. The DDL
// is the migrator's, done by sql/0005's ecomstream_create_partition on the ingester's
// behalf (the ingester does not own events: see docs/security.md).
func create(ctx context.Context, q *pgxpool.Conn, from, to time.Time, lockTimeout time.Duration) (moved int64, err error) {
	name := Name(from)
	err = pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", lockTimeout.Milliseconds())); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT public.ecomstream_create_partition($1, $2, $3)", name, from, to).Scan(&moved)
	})
	if err != nil {
		return 0, fmt.Errorf("create partition %s [%s, %s): %w", name, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return moved, nil
}

// drop removes one partition and its rows; the function refuses a partition that ends
// after cutoff.
func drop(ctx context.Context, q *pgxpool.Conn, p Partition, cutoff time.Time, lockTimeout time.Duration) error {
	err := pgx.BeginFunc(ctx, q, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", lockTimeout.Milliseconds())); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT public.ecomstream_drop_partition($1, $2)", p.Name, cutoff)
		return err
	})
	if err != nil {
		return fmt.Errorf("drop partition %s: %w", p.Name, err)
	}
	return nil
}
