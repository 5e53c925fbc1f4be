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
	// 1,500 + 1,500 + 2 rows: one chunk (maxChunkRows), so each partition's rows are one run.
	a := randomRows(rng, 1500, days...)
	b := randomRows(rng, 1500, days...)
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
		if f.Inserted != 1501 || f.Duplicate != 0 || f.Rejected != 0 {
			t.Fatalf("%s: %+v", f.File.Name, f)
		}
	}
	want := map[string]int{"events_p20261125": 1001, "events_p20261126": 1001, "events_default": 1000}
	for part, n := range want {
		ids := heapOrder(t, pool, part)
		if len(ids) != n {
			t.Errorf("%s holds %d rows, want %d", part, len(ids), n)
		}
		if d := descents(ids); len(d) > 0 {
			t.Errorf("%s: rows not written in key order (%d descents, first at row %d)", part, len(d), d[0])
		}
	}
	if n := count(t, pool, "SELECT count(DISTINCT (event_id, event_time)) FROM events"); n != 3002 {
		t.Errorf("distinct keys %d, want 3002", n)
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

// withBad puts a malformed line after every every-th line of lines.
func withBad(lines []string, every int) (out []string, bad int64) {
	for i, l := range lines {
		out = append(out, l)
		if (i+1)%every == 0 {
			out, bad = append(out, "not,a,valid,row"), bad+1
		}
	}
	return out, bad
}

// A batch whose files straddle a chunk boundary, with the rejected buffer filling (and
// the COPY pausing) many times inside a chunk, keeps each file's ledger right: its rows,
// rejected and inserted counts are its own, whichever chunk its rows were sorted into.
// With duplicates it goes through staging, where the later copy in file order is the
// duplicate (the same event_id at another time is another row).
func TestFilesAcrossAChunkBoundaryKeepTheirOwnCounts(t *testing.T) {
	pool := newPool(t)
	rng := rand.New(rand.NewPCG(5, 6))
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 4}
	dir := t.TempDir()
	aRows := randomRows(rng, maxChunkRows-3000, "2026-11-25T10:00:00Z")
	bRows := randomRows(rng, 7000, "2026-11-25T11:00:00Z")
	a, aBad := withBad(aRows, 997)
	bLines, bBad := withBad(bRows, 1499)
	batch := load(t, l, writeFile(t, dir, "a.csv", a...), writeFile(t, dir, "b.csv", bLines...))
	if batch.Staging {
		t.Fatal("a batch without duplicates went through staging")
	}
	check := func(f *FileResult, total, rejected, inserted, dup int64) {
		t.Helper()
		if f.Total != total || f.Rejected != rejected || f.Inserted != inserted || f.Duplicate != dup {
			t.Errorf("%s: total %d rejected %d inserted %d duplicate %d; want %d %d %d %d",
				f.File.Name, f.Total, f.Rejected, f.Inserted, f.Duplicate, total, rejected, inserted, dup)
		}
		var lt, lr, li, ld int64
		if err := pool.QueryRow(context.Background(), `SELECT records_total, records_rejected, records_inserted, records_duplicate
			FROM ingested_files WHERE file_name = $1`, f.File.Name).Scan(&lt, &lr, &li, &ld); err != nil {
			t.Fatal(err)
		}
		if lt != total || lr != rejected || li != inserted || ld != dup {
			t.Errorf("%s in the ledger: %d %d %d %d; want %d %d %d %d", f.File.Name, lt, lr, li, ld, total, rejected, inserted, dup)
		}
		if n := count(t, pool, "SELECT count(*) FROM events WHERE source_file = $1", f.File.Name); n != inserted {
			t.Errorf("%s: %d rows in events, want %d", f.File.Name, n, inserted)
		}
		if n := count(t, pool, "SELECT count(*) FROM rejected_records WHERE source_file = $1", f.File.Name); n != rejected {
			t.Errorf("%s: %d rejected rows stored, want %d", f.File.Name, n, rejected)
		}
	}
	check(batch.Files[0], int64(len(a)), aBad, int64(len(aRows)), 0)
	check(batch.Files[1], int64(len(bLines)), bBad, int64(len(bRows)), 0)

	// c repeats a row of a and one of its own, and has a's first event_id at another
	// time; d repeats a row of c: through staging, each later copy is the duplicate.
	cRows := randomRows(rng, maxChunkRows, "2026-11-25T12:00:00Z")
	other := aRows[0][:36] + ",2026-11-25T13:00:00Z" + aRows[0][57:]
	c, cBad := withBad(append(append(slices.Clone(cRows[:10]), aRows[5], cRows[3], other), cRows[10:]...), 2003)
	d := []string{cRows[maxChunkRows-1], randomRows(rng, 1, "2026-11-25T12:00:00Z")[0]}
	batch = load(t, l, writeFile(t, dir, "c.csv", c...), writeFile(t, dir, "d.csv", d...))
	if !batch.Staging {
		t.Fatal("a batch with duplicates must have gone through staging")
	}
	check(batch.Files[0], int64(len(c)), cBad, int64(len(cRows))+1, 2)
	check(batch.Files[1], 2, 0, 1, 1)
}
