package rows

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/csvcodec"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/generator/internal/traffic"
)

func newMixer(seed uint64, bad, dup float64) *Mixer {
	rng := rand.New(rand.NewPCG(seed, 99))
	return New(traffic.New(rng, traffic.DefaultParams()), rng, bad, dup, 0)
}

// TestExactShares checks after every row that each kind is within one row of its share.
func TestExactShares(t *testing.T) {
	cases := []struct{ bad, dup float64 }{
		{0, 0}, {0.05, 0}, {0, 0.05}, {0.05, 0.1}, {0.01, 0.01}, {0.3333, 0.3333},
		{0.6, 0.3}, {0.1, 0.85}, {0.999, 0}, {0, 0.999}, {0.123456, 0.0001},
	}
	const n = 100_000
	now := time.Now()
	for _, tc := range cases {
		m := newMixer(1, tc.bad, tc.dup)
		var buf []byte
		var c Counts
		for i := int64(1); i <= n; i++ {
			var k Kind
			buf, k, _ = m.AppendRow(buf[:0], now)
			switch k {
			case Valid:
				c.Valid++
			case Invalid:
				c.Invalid++
			case Duplicate:
				c.Duplicate++
			}
			if d := due(tc.bad, i) - c.Invalid; d < -1 || d > 1 {
				t.Fatalf("bad %v dup %v: after %d rows %d invalid, want %d±1", tc.bad, tc.dup, i, c.Invalid, due(tc.bad, i))
			}
			if d := due(tc.dup, i) - c.Duplicate; d < -1 || d > 1 {
				t.Fatalf("bad %v dup %v: after %d rows %d duplicates, want %d±1", tc.bad, tc.dup, i, c.Duplicate, due(tc.dup, i))
			}
		}
		if c != m.Totals() {
			t.Fatalf("counted %+v, mixer says %+v", c, m.Totals())
		}
		t.Logf("bad %v dup %v over %d rows: %+v", tc.bad, tc.dup, n, c)
	}
}

// TestEveryRowMeansWhatItSays parses every row the mixer makes with the contract's reader
// and validation: valid and duplicate rows are accepted, every invalid row is rejected
// with the reason it was made for, and every duplicate repeats an earlier valid row.
func TestEveryRowMeansWhatItSays(t *testing.T) {
	now := time.Now()
	m := newMixer(2, 0.2, 0.1)
	const n = 50_000
	buf := event.HeaderLine()
	kinds := make([]Kind, 0, n)
	reasons := make([]string, 0, n)
	for i := 0; i < n; i++ {
		var k Kind
		var reason string
		buf, k, reason = m.AppendRow(buf, now)
		kinds = append(kinds, k)
		reasons = append(reasons, reason)
	}

	r := csvcodec.NewReader(bytes.NewReader(buf))
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	h, rej := event.ParseHeader(rec.Fields)
	if rej != nil {
		t.Fatal(rej)
	}
	valid := map[[16]byte]string{}
	seenReason := map[string]int{}
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			if i != n {
				t.Fatalf("read %d rows, wrote %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Err != nil {
			t.Fatalf("row %d is not well-formed CSV (%v): %s", i, rec.Err, rec.Raw)
		}
		e, rej := h.Parse(rec.Fields, now, nil)
		switch kinds[i] {
		case Valid:
			if rej != nil {
				t.Fatalf("valid row %d rejected: %v: %s", i, rej, rec.Raw)
			}
			if _, ok := valid[e.EventID]; ok {
				t.Fatalf("valid row %d repeats an event_id", i)
			}
			valid[e.EventID] = string(rec.Raw)
		case Duplicate:
			if rej != nil {
				t.Fatalf("duplicate row %d rejected: %v: %s", i, rej, rec.Raw)
			}
			if orig, ok := valid[e.EventID]; !ok || orig != string(rec.Raw) {
				t.Fatalf("duplicate row %d does not repeat an earlier valid row exactly: %s", i, rec.Raw)
			}
		case Invalid:
			if rej == nil {
				t.Fatalf("invalid row %d (%s) accepted: %s", i, reasons[i], rec.Raw)
			}
			if rej.Reason != reasons[i] {
				t.Fatalf("invalid row %d meant as %s rejected as %v: %s", i, reasons[i], rej, rec.Raw)
			}
			seenReason[rej.Reason]++
		}
	}
	for _, reason := range Reasons() {
		if seenReason[reason] == 0 {
			t.Errorf("no invalid row with reason %s", reason)
		}
	}
	if len(Reasons()) < 11 {
		t.Errorf("only %d kinds of invalid rows", len(Reasons()))
	}
	t.Logf("invalid rows by reason: %v", seenReason)
}

// TestDuplicatesCrossCalls checks that the ring outlives one file: a mixer asked for
// duplicates on its second call can draw them from its first.
func TestDuplicatesCrossCalls(t *testing.T) {
	now := time.Now()
	m := newMixer(3, 0, 0.5)
	first, c1 := m.AppendRows(nil, 1, now)
	if c1 != (Counts{Valid: 1}) {
		t.Fatalf("first row: %+v", c1)
	}
	second, c2 := m.AppendRows(nil, 1, now)
	if c2 != (Counts{Duplicate: 1}) || !bytes.Equal(first, second) {
		t.Fatalf("second row should repeat the first: %+v\n%s%s", c2, first, second)
	}
}

func TestNoDuplicateWithoutEarlierRow(t *testing.T) {
	now := time.Now()
	m := newMixer(4, 0.5, 0.49)
	_, c := m.AppendRows(nil, 1, now)
	if c.Valid != 1 {
		t.Fatalf("the first row must be valid, got %+v", c)
	}
}

func BenchmarkAppendRows(b *testing.B) {
	now := time.Now()
	m := newMixer(5, 0.01, 0.01)
	buf := make([]byte, 0, 256<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = m.AppendRows(buf[:0], 1000, now)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "rows/s")
}
