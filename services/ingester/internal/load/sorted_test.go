package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// randomRows returns n valid CSV lines with random event_ids (so file order is not key
// order), their times cycling through times.
func randomRows(rng *rand.Rand, n int, times ...string) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x,%s,view,7,00000000-0000-4000-8000-000000000001,42,Books,12.50,1",
			rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff, times[i%len(times)])
	}
	return lines
}

// heapOrder returns table's event_ids in the order their rows were written (ctid: a
// fresh table filled by one COPY has its rows in the order they were sent).
func heapOrder(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT event_id::text FROM "+table+" ORDER BY ctid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// descents counts the places where ids goes down, at their positions.
func descents(ids []string) []int {
	var at []int
	for i := 1; i < len(ids); i++ {
		if ids[i] < ids[i-1] {
			at = append(at, i)
		}
	}
	return at
}

// A batch whose rows fall in two partitions and the default one: every row is stored
// once, each in its partition, and each partition received its rows in primary-key
// order (the same event_id at two times is two rows, in time order).
func TestRowsOfABatchReachEachPartitionInKeyOrder(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	for _, p := range [][3]string{{"events_p20261125", "2026-11-25", "2026-11-26"}, {"events_p20261126", "2026-11-26", "2026-11-27"}} {
		if _, err := pool.Exec(ctx, "SELECT ecomstream_create_partition($1, $2::timestamptz, $3::timestamptz)", p[0], p[1], p[2]); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	days := []string{"2026-11-25T10:00:00Z", "2026-11-26T10:00:00Z", "2026-11-27T10:00:00Z"}
	a := randomRows(rng, 3000, days...)
	b := randomRows(rng, 3000, days...)
	// The same event at two times (two rows of the key), the later one first.
	id := "ffffffff-0000-4000-8000-000000000001"
	a = append(a, id+",2026-11-26T10:00:00Z,view,7,00000000-0000-4000-8000-000000000001,42,Books,12.50,1")
	b = append(b, id+",2026-11-25T10:00:00Z,view,7,00000000-0000-4000-8000-000000000001,42,Books,12.50,1")
	dir := t.TempDir()
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	batch := load(t, l, writeFile(t, dir, "a.csv", a...), writeFile(t, dir, "b.csv", b...))
	if batch.Staging {
		t.Fatal("the batch went through staging: it has no duplicate")
	}
	for _, f := range batch.Files {
		if f.Inserted != 3001 || f.Duplicate != 0 || f.Rejected != 0 {
			t.Fatalf("%s: %+v", f.File.Name, f)
		}
	}
	want := map[string]int{"events_p20261125": 2001, "events_p20261126": 2001, "events_default": 2000}
	for part, n := range want {
		ids := heapOrder(t, pool, part)
		if len(ids) != n {
			t.Errorf("%s holds %d rows, want %d", part, len(ids), n)
		}
		if d := descents(ids); len(d) > 0 {
			t.Errorf("%s: rows not written in key order (%d descents, first at row %d)", part, len(d), d[0])
		}
	}
	if n := count(t, pool, "SELECT count(DISTINCT (event_id, event_time)) FROM events"); n != 6002 {
		t.Errorf("distinct keys %d, want 6002", n)
	}
}

// A file of more rows than a chunk holds is sorted chunk by chunk: the heap shows one
// ascending run per chunk (the memory bound), and every row is stored once. The rows are
// narrow (~130 encoded bytes), so the row bound is the one that ends the first chunk.
func TestAFileLargerThanAChunkIsSentInSortedChunks(t *testing.T) {
	pool := newPool(t)
	n := maxChunkRows + 5000
	lines := randomRows(rand.New(rand.NewPCG(3, 4)), n, "2026-11-25T10:00:00Z")
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	batch := load(t, l, writeFile(t, t.TempDir(), "big.csv", lines...))
	if got := batch.Files[0]; got.Inserted != int64(n) {
		t.Fatalf("big.csv: %+v", got)
	}
	ids := heapOrder(t, pool, "events")
	if len(ids) != n {
		t.Fatalf("events holds %d rows, want %d", len(ids), n)
	}
	if d := descents(ids); !slices.Equal(d, []int{maxChunkRows}) {
		t.Errorf("%d descents in the heap (first at %v), want one, where the first chunk of %d rows ends", len(d), d[:min(len(d), 5)], maxChunkRows)
	}
}
