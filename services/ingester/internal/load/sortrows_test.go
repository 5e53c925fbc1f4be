package load

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// sortRows orders a chunk as a plain sort by the key does, whatever the keys' spread:
// random UUIDs (a row or two per bucket), UUIDs that share their first bits (version 7:
// one bucket), repeated keys and event times, and chunks too short to bucket.
func TestSortRowsOrdersAsAPlainSortByTheKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := map[string]func(i int) chunkRow{
		"random":                         func(int) chunkRow { return chunkRow{hi: rng.Uint64(), lo: rng.Uint64(), t: rng.Int64N(5)} },
		"shared prefix":                  func(int) chunkRow { return chunkRow{hi: 0x0190_0000_0000_7000 | rng.Uint64N(1<<12), lo: rng.Uint64()} },
		"repeated keys":                  func(int) chunkRow { return chunkRow{hi: rng.Uint64N(3) << 62, lo: rng.Uint64N(3), t: rng.Int64N(3)} },
		"one prefix, all equal but time": func(int) chunkRow { return chunkRow{hi: 7, lo: 7, t: rng.Int64N(1000)} },
	}
	for name, gen := range cases {
		for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, maxChunkRows} {
			rows := make([]chunkRow, n)
			for i := range rows {
				rows[i] = gen(i)
				rows[i].off, rows[i].end = int32(i), int32(i+1) // which row it is
			}
			want := slices.Clone(rows)
			slices.SortStableFunc(want, compareRows)
			got := sortRows(slices.Clone(rows), make([]chunkRow, 0, maxChunkRows))
			if len(got) != n {
				t.Fatalf("%s, %d rows: %d sorted", name, n, len(got))
			}
			for i := range got {
				if compareRows(got[i], want[i]) != 0 {
					t.Fatalf("%s, %d rows: row %d has key %v, want %v", name, n, i, got[i], want[i])
				}
			}
			// Every row once: the set of rows is unchanged.
			seen := make([]bool, n)
			for _, r := range got {
				if seen[r.off] {
					t.Fatalf("%s, %d rows: row %d twice", name, n, r.off)
				}
				seen[r.off] = true
			}
		}
	}
}

// BenchmarkSortRows: one full chunk of random keys, the common case.
func BenchmarkSortRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	rows := make([]chunkRow, maxChunkRows)
	for i := range rows {
		rows[i] = chunkRow{hi: rng.Uint64(), lo: rng.Uint64()}
	}
	work, tmp := make([]chunkRow, maxChunkRows), make([]chunkRow, maxChunkRows)
	b.Run("buckets", func(b *testing.B) {
		for b.Loop() {
			copy(work, rows)
			sortRows(work, tmp)
		}
	})
	b.Run("SortFunc", func(b *testing.B) {
		for b.Loop() {
			copy(work, rows)
			slices.SortFunc(work, compareRows)
		}
	})
}
