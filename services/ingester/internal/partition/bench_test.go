package partition

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
)

// The benchmarks want a server at default durability (fsync, synchronous_commit on),
// which the test clusters are not: ECOMSTREAM_BENCH_DATABASE_URL names an empty database.
// Run: go test -run '^$' -bench . -benchtime 1x ./internal/partition/
func benchPool(b *testing.B) *pgxpool.Pool {
	url := os.Getenv("ECOMSTREAM_BENCH_DATABASE_URL")
	if url == "" {
		b.Skip("ECOMSTREAM_BENCH_DATABASE_URL not set")
	}
	ctx := context.Background()
	p, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	if _, err := db.Migrate(ctx, p); err != nil {
		b.Fatal(err)
	}
	// The previous version's table beside the partitioned one, for the baseline.
	if _, err := p.Exec(ctx, `CREATE TABLE IF NOT EXISTS events_plain (LIKE events INCLUDING DEFAULTS);
		ALTER TABLE events_plain DROP CONSTRAINT IF EXISTS events_plain_pkey; ALTER TABLE events_plain ADD PRIMARY KEY (event_id);
		CREATE INDEX IF NOT EXISTS plain_type ON events_plain (event_type); CREATE INDEX IF NOT EXISTS plain_user ON events_plain (user_id);
		CREATE INDEX IF NOT EXISTS plain_product ON events_plain (product_id); CREATE INDEX IF NOT EXISTS plain_time ON events_plain (event_time);
		TRUNCATE events_plain; TRUNCATE events`); err != nil {
		b.Fatal(err)
	}
	return p
}

var benchDay = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// copyRows copies n generated rows (the same for a given seed) into table in
// transactions of batch rows, as the ingester's batches do, and returns the time taken.
func copyRows(b *testing.B, p *pgxpool.Pool, table string, n, batch int, seed uint64) time.Duration {
	ctx := context.Background()
	types := []string{"view", "add_to_cart", "remove_from_cart", "purchase"}
	cols := []string{"event_id", "event_time", "event_type", "user_id", "session_id", "product_id", "category", "price", "quantity", "source_file"}
	start := time.Now()
	for done := 0; done < n; done += batch {
		i := done
		err := pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
				if i >= min(done+batch, n) {
					return nil, nil
				}
				k := uint64(i) + seed<<32
				var id [16]byte
				for j := 0; j < 8; j++ {
					id[j], id[8+j] = byte(k>>(8*j)), byte((k*0x9E3779B97F4A7C15)>>(8*j))
				}
				i++
				return []any{id, benchDay.Add(time.Duration(k%86400) * time.Second), types[k%4], int64(k%100000 + 1), id,
					int64(k%20000 + 1), "Books", "12.50", int32(k%5 + 1), "bench.csv"}, nil
			}))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// COPY into the partitioned events vs the previous unpartitioned table, the same 1M rows
// in 20,000-row transactions, alternating to spread the shared machine's noise.
func BenchmarkCopyPartitionedVsUnpartitioned(b *testing.B) {
	p := benchPool(b)
	m := &Maintainer{Pool: p, Opt: Defaults, Log: zerolog.Nop(), Now: func() time.Time { return benchDay }}
	if _, err := m.Pass(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	const rows, batch = 1_000_000, 20_000
	var plain, part, plainCPU, partCPU time.Duration
	for round := uint64(0); round < 2; round++ {
		c := serverCPU()
		plain += copyRows(b, p, "events_plain", rows/2, batch, round)
		plainCPU += serverCPU() - c
		c = serverCPU()
		part += copyRows(b, p, "events", rows/2, batch, round)
		partCPU += serverCPU() - c
	}
	if partCPU > 0 {
		b.ReportMetric(rows/plainCPU.Seconds(), "unpartitioned_rows/server_cpu_s")
		b.ReportMetric(rows/partCPU.Seconds(), "partitioned_rows/server_cpu_s")
	}
	b.ReportMetric(rows/plain.Seconds(), "unpartitioned_rows/s")
	b.ReportMetric(rows/part.Seconds(), "partitioned_rows/s")
	b.ReportMetric(plain.Seconds()/part.Seconds(), "ratio")
	var partBytes, plainBytes int64
	_ = p.QueryRow(context.Background(), `SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('events')), pg_total_relation_size('events_plain')`).Scan(&partBytes, &plainBytes)
	b.ReportMetric(float64(partBytes)/rows, "partitioned_bytes/row")
	b.ReportMetric(float64(plainBytes)/rows, "unpartitioned_bytes/row")

	// Forgetting the day: DELETE of its rows from the plain table vs dropping its partition.
	ctx := context.Background()
	start := time.Now()
	if _, err := p.Exec(ctx, "DELETE FROM events_plain WHERE event_time >= $1 AND event_time < $2", benchDay, benchDay.Add(24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	del := time.Since(start)
	conn, err := p.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	start = time.Now()
	if err := drop(ctx, conn, Partition{Name: Name(benchDay)}, benchDay.Add(24*time.Hour), time.Minute); err != nil {
		b.Fatal(err)
	}
	dropped := time.Since(start)
	b.ReportMetric(del.Seconds(), "delete_day_s")
	b.ReportMetric(dropped.Seconds(), "drop_day_s")
	fmt.Fprintf(os.Stderr, "copy 1M rows: unpartitioned %s (server CPU %s), partitioned %s (server CPU %s) (ratio %.3f); a day's 1M rows: DELETE %s, DROP partition %s; bytes/row %d vs %d\n",
		plain.Round(time.Millisecond), plainCPU.Round(time.Millisecond), part.Round(time.Millisecond), partCPU.Round(time.Millisecond), plain.Seconds()/part.Seconds(), del.Round(time.Millisecond), dropped.Round(time.Millisecond), partBytes/rows, plainBytes/rows)
}

// The same comparison with 20M rows (20 days) already stored: the unpartitioned table's
// indexes have long outgrown shared_buffers, while the partitioned table writes into
// today's small partition. Preloaded by INSERT ... SELECT with the indexes built after
// (the state matters, not how it was reached). ECOMSTREAM_BENCH_STORED sets the count.
func BenchmarkCopyWithRowsStored(b *testing.B) {
	p := benchPool(b)
	ctx := context.Background()
	stored := 20_000_000
	if n, err := strconv.Atoi(os.Getenv("ECOMSTREAM_BENCH_STORED")); err == nil && n > 0 {
		stored = n
	}
	days := 20
	conn, err := p.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for d := days; d >= 0; d-- {
		from := benchDay.Add(-time.Duration(d) * 24 * time.Hour)
		parts, _ := List(ctx, conn)
		if len(gaps(from, from.Add(24*time.Hour), parts)) == 1 {
			if _, err := create(ctx, conn, from, from.Add(24*time.Hour), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}
	conn.Release()
	indexes := []string{"(event_type)", "(user_id)", "(product_id)", "(event_time)"}
	for _, s := range []string{
		"ALTER TABLE events DROP CONSTRAINT events_pkey", "ALTER TABLE events_plain DROP CONSTRAINT events_plain_pkey",
		"DROP INDEX idx_events_event_type, idx_events_user_id, idx_events_product_id, idx_events_event_time, plain_type, plain_user, plain_product, plain_time",
	} {
		if _, err := p.Exec(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	for _, table := range []string{"events", "events_plain"} {
		_, err := p.Exec(ctx, `INSERT INTO `+table+` (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
			SELECT md5(i::text)::uuid, $1::timestamptz - (1 + i % $3::int) * interval '1 day' + (i % 86400) * interval '1 second',
			       (ARRAY['view', 'add_to_cart', 'remove_from_cart', 'purchase'])[i % 4 + 1], i % 100000 + 1,
			       md5('s' || i)::uuid, i % 20000 + 1, 'Books', 12.50, i % 5 + 1, 'stored.csv'
			FROM generate_series(1, $2::int) i`, benchDay, stored, days)
		if err != nil {
			b.Fatal(err)
		}
		pk := "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (event_id, event_time)"
		if table == "events_plain" {
			pk = "ALTER TABLE events_plain ADD PRIMARY KEY (event_id)"
		}
		if _, err := p.Exec(ctx, pk); err != nil {
			b.Fatal(err)
		}
		for _, ix := range indexes {
			if _, err := p.Exec(ctx, "CREATE INDEX ON "+table+" "+ix); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := p.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "preloaded %d rows into each table in %s\n", stored, time.Since(start).Round(time.Second))
	const rows, batch = 1_000_000, 20_000
	var plain, part, plainCPU, partCPU time.Duration
	for round := uint64(0); round < 2; round++ {
		c := serverCPU()
		plain += copyRows(b, p, "events_plain", rows/2, batch, 100+round)
		plainCPU += serverCPU() - c
		c = serverCPU()
		part += copyRows(b, p, "events", rows/2, batch, 100+round)
		partCPU += serverCPU() - c
	}
	b.ReportMetric(rows/plain.Seconds(), "unpartitioned_rows/s")
	b.ReportMetric(rows/part.Seconds(), "partitioned_rows/s")
	b.ReportMetric(plain.Seconds()/part.Seconds(), "ratio")
	fmt.Fprintf(os.Stderr, "with %d rows stored, copy 1M rows: unpartitioned %s (server CPU %s), partitioned %s (server CPU %s); ratio %.3f\n",
		stored, plain.Round(time.Millisecond), plainCPU.Round(time.Millisecond), part.Round(time.Millisecond), partCPU.Round(time.Millisecond), plain.Seconds()/part.Seconds())
}

// serverCPU is the CPU time (user + system) of the benchmark's PostgreSQL: the postmaster
// named by ECOMSTREAM_BENCH_PG_PID and its children; 0 when unset.
func serverCPU() time.Duration {
	pm, _ := strconv.Atoi(os.Getenv("ECOMSTREAM_BENCH_PG_PID"))
	if pm == 0 {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
		ppid, _ := strconv.Atoi(f[1])
		if pid != pm && ppid != pm {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ = 100
}
