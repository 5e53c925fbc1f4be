package collector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
)

// The collector never makes ingestion wait: while writers COPY batches with their ledger
// rows (as the ingester does) and the collector measures everything in a loop, a sampler
// watches pg_stat_activity and pg_locks. No session may ever wait on a lock, the
// collector may hold nothing stronger than ACCESS SHARE on a table, and it may never sit
// idle inside a transaction. This asserts on what PostgreSQL reports, not on timings.
func TestCollectorNeverBlocksIngestion(t *testing.T) {
	collectorPool := newDB(t)
	url := collectorPool.Config().ConnConfig.ConnString()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	open := func(app string) *pgxpool.Pool {
		u := strings.Replace(url, "application_name="+ApplicationName, "application_name="+app, 1)
		p, err := db.Connect(context.Background(), zerolog.Nop(), u, 6, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	writers, sampler := open("test-writer"), open("test-sampler")
	loadEvents(t, collectorPool, 2000)

	var wg sync.WaitGroup
	var batches atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				seq := 1_000_000*(w+1) + i*200
				err := pgx.BeginFunc(ctx, writers, func(tx pgx.Tx) error {
					if err := copyEvents(ctx, tx, fmt.Sprintf("w%d-%d.csv", w, i), seq, 200); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `INSERT INTO ingested_files (file_name, sha256, file_created_at, records_total,
						records_inserted, records_rejected, records_duplicate, bytes, ingester_instance)
						VALUES ($1, 'x', now() - interval '1 second', 200, 200, 0, 0, 1000, 'writer')`, fmt.Sprintf("w%d-%d.csv", w, i))
					return err
				})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
				batches.Add(1)
			}
		}()
	}
	var runs atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := New(zerolog.Nop(), 2*time.Second, All(collectorPool, Settings{Window: time.Minute, WatchDir: t.TempDir()})...)
		for ctx.Err() == nil {
			c.MeasureAll(ctx)
			runs.Add(1)
		}
	}()

	var samples, lockWaits, idleInTx int
	strongLocks, waitKinds := map[string]bool{}, map[string]bool{}
	for ctx.Err() == nil {
		// A wait on a lock that a collector session holds, or any lock wait of the
		// collector itself. (Writers may briefly wait on each other, e.g. for relation
		// extension; that is ingestion's own business.)
		var waits, idle int
		var what []string
		err := sampler.QueryRow(ctx, `
			WITH c AS (SELECT pid FROM pg_stat_activity WHERE application_name = $1)
			SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'
			                          AND (pid IN (SELECT pid FROM c) OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM c))),
			       count(*) FILTER (WHERE application_name = $1 AND state LIKE 'idle in transaction%'),
			       coalesce(array_agg(DISTINCT application_name || ' waits for ' || wait_event) FILTER (WHERE wait_event_type = 'Lock'), '{}')
			FROM pg_stat_activity WHERE datname = current_database()`, ApplicationName).Scan(&waits, &idle, &what)
		if err != nil {
			break
		}
		lockWaits += waits
		idleInTx += idle
		for _, w := range what {
			waitKinds[w] = true
		}
		rows, err := sampler.Query(ctx, `
			SELECT l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype)
			FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE a.application_name = $1 AND l.granted AND l.locktype = 'relation' AND l.mode <> 'AccessShareLock'`, ApplicationName)
		if err != nil {
			break
		}
		for rows.Next() {
			var s string
			if rows.Scan(&s) == nil {
				strongLocks[s] = true
			}
		}
		rows.Close()
		samples++
	}
	wg.Wait()
	t.Logf("%d samples, %d writer batches, %d collector rounds", samples, batches.Load(), runs.Load())
	if samples < 20 || batches.Load() < 4 || runs.Load() < 1 {
		t.Fatalf("too little happened to judge: %d samples, %d batches, %d collector rounds", samples, batches.Load(), runs.Load())
	}
	t.Logf("lock waits seen (any session): %v", waitKinds)
	if lockWaits > 0 {
		t.Errorf("the collector waited on, or blocked, a lock in %d samples", lockWaits)
	}
	if idleInTx > 0 {
		t.Errorf("the collector sat idle in a transaction in %d samples", idleInTx)
	}
	for l := range strongLocks {
		t.Errorf("the collector held %s", l)
	}
}
