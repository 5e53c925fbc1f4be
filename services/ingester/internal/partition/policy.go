package partition

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Policy is the database's retention floor (sql/0006): for each kind, the minimum age of
// the rows the maintenance functions may remove; 0 = never. The functions refuse a
// cutoff newer than it, so an ingester's credentials alone cannot remove more than the
// administrator allowed, whatever cutoff they pass.
type Policy struct {
	Events, Ledger, Rejected time.Duration
}

// PolicyOf is the policy the retention settings ask for: each window is the floor of its
// kind (off = never).
func PolicyOf(o Options) Policy {
	return Policy{Events: o.Retention, Ledger: o.LedgerRetention, Rejected: o.RejectedRetention}
}

// Check refuses a policy whose ledger goes sooner than the events: a file dropped again
// after its ledger row is gone is ingested again (docs/scaling.md, "Retention"). The
// database keeps the ledger that long anyway; saying so here names the settings.
func (p Policy) Check() error {
	if p.Ledger > 0 && p.Events == 0 {
		// Most likely a deployment that pruned only the ledger before sql/0006: the
		// events' "off" is forever, which no ledger window reaches.
		return fmt.Errorf("INGESTER_LEDGER_RETENTION is %s but INGESTER_EVENTS_RETENTION is off (the events are kept forever), and the ledger is kept at least as long as the events, or a file dropped again after its ledger row is gone is ingested again: set INGESTER_LEDGER_RETENTION=off, or INGESTER_EVENTS_RETENTION=%s (or less)",
			Retention(p.Ledger), Retention(p.Ledger))
	}
	if p.Ledger > 0 && p.Ledger < p.Events {
		return fmt.Errorf("INGESTER_LEDGER_RETENTION (%s) is shorter than INGESTER_EVENTS_RETENTION (%s): keep the ledger at least as long as the events (off, or %s or more), or a file dropped again after its ledger row is gone is ingested again",
			Retention(p.Ledger), Retention(p.Events), Retention(p.Events))
	}
	return nil
}

// WritePolicy sets the database's retention policy to p. It is the administrator's
// work (`ingester migrate`, or a service that migrates at start-up): the policy table
// belongs to the migrator, which the caller becomes for the transaction, as a migration
// does; the ingester's role is refused.
func WritePolicy(ctx context.Context, pool *pgxpool.Pool, p Policy) error {
	if err := p.Check(); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE ecomstream_migrator"); err != nil {
			return err
		}
		for _, k := range []struct {
			kind string
			age  time.Duration
		}{{"events", p.Events}, {"ledger", p.Ledger}, {"rejected", p.Rejected}} {
			var secs *float64 // NULL: never
			if k.age > 0 {
				s := k.age.Seconds()
				secs = &s
			}
			// An upsert: a row deleted by hand (which the functions read as never) is
			// written back, not a reason to fail every migration after.
			if _, err := tx.Exec(ctx, `INSERT INTO public.ecomstream_retention_policy (kind, min_age, set_at)
				VALUES ($1, make_interval(secs => $2), now())
				ON CONFLICT (kind) DO UPDATE SET min_age = excluded.min_age, set_at = excluded.set_at`, k.kind, secs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write the retention policy: %w", err)
	}
	return nil
}

// ReadPolicy is the database's retention policy.
func ReadPolicy(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (Policy, error) {
	var p Policy
	var ev, le, re *float64
	err := q.QueryRow(ctx, `SELECT
		(SELECT extract(epoch FROM min_age)::float8 FROM public.ecomstream_retention_policy WHERE kind = 'events'),
		(SELECT extract(epoch FROM min_age)::float8 FROM public.ecomstream_retention_policy WHERE kind = 'ledger'),
		(SELECT extract(epoch FROM min_age)::float8 FROM public.ecomstream_retention_policy WHERE kind = 'rejected')`).Scan(&ev, &le, &re)
	if err != nil {
		return p, fmt.Errorf("read the retention policy: %w", err)
	}
	for _, x := range []struct {
		secs *float64
		to   *time.Duration
	}{{ev, &p.Events}, {le, &p.Ledger}, {re, &p.Rejected}} {
		if x.secs != nil {
			*x.to = time.Duration(*x.secs * float64(time.Second))
		}
	}
	return p, nil
}

// String prints each kind's floor ("off" for never).
func (p Policy) String() string {
	return fmt.Sprintf("events %s, ledger %s, rejected %s", Retention(p.Events), Retention(p.Ledger), Retention(p.Rejected))
}

// IsPolicyRefusal tells whether err is the database refusing a cutoff newer than its
// retention policy (sql/0006's ecomstream_retention_check).
func IsPolicyRefusal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.HasPrefix(pgErr.Message, "retention of ")
}
