// Package rows turns the shop's events into CSV rows and mixes in the deliberately
// invalid and duplicated rows that --bad-rate and --duplicate-rate ask for, in exactly
// that share: after N rows, floor(rate·N) of them are of that kind, give or take one.
package rows

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/generator/internal/traffic"
)

// Kind is what the generator meant a row to be.
type Kind int

// Kinds of rows; their String is the kind label of the records metric.
const (
	Valid Kind = iota
	Invalid
	Duplicate
)

func (k Kind) String() string {
	switch k {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	case Duplicate:
		return "duplicate"
	}
	return "kind" + strconv.Itoa(int(k))
}

// Counts of rows by kind.
type Counts struct{ Valid, Invalid, Duplicate int64 }

// Total is the number of rows.
func (c Counts) Total() int64 { return c.Valid + c.Invalid + c.Duplicate }

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Valid + o.Valid, c.Invalid + o.Invalid, c.Duplicate + o.Duplicate}
}

// DefaultRing is how many recent valid rows a duplicate may be drawn from.
const DefaultRing = 4096

// maxRowBytes bounds one row (a category holds at most 64 characters), so the ring's
// slots never grow after they are made.
const maxRowBytes = 512

// Mixer writes rows: events of the model, and invalid and duplicate rows at their
// rates. It is not safe for concurrent use.
type Mixer struct {
	model            *traffic.Model
	rng              *rand.Rand
	badRate, dupRate float64

	n     int64 // rows written so far
	total Counts

	ring  [][]byte // recent valid rows, line end included
	rpos  int      // next slot to overwrite
	rfull int      // slots filled

	ev event.Event
}

// New returns a mixer over model. Rates are shares in [0, 1) with bad+dup < 1 (a
// duplicate repeats a valid row, so some rows must be valid). ring is the number of
// recent valid rows kept for duplicates (DefaultRing if <= 0).
func New(model *traffic.Model, rng *rand.Rand, badRate, dupRate float64, ring int) *Mixer {
	if ring <= 0 {
		ring = DefaultRing
	}
	m := &Mixer{model: model, rng: rng, badRate: badRate, dupRate: dupRate, ring: make([][]byte, ring)}
	return m
}

// Totals returns the rows written so far by kind.
func (m *Mixer) Totals() Counts { return m.total }

// AppendRows appends n rows to dst and says how many of each kind they hold.
func (m *Mixer) AppendRows(dst []byte, n int, now time.Time) ([]byte, Counts) {
	var c Counts
	for i := 0; i < n; i++ {
		var k Kind
		dst, k, _ = m.AppendRow(dst, now)
		switch k {
		case Valid:
			c.Valid++
		case Invalid:
			c.Invalid++
		case Duplicate:
			c.Duplicate++
		}
	}
	return dst, c
}

// AppendRow appends one row and returns its kind and, for an invalid row, the reason
// code of services/common/event that a reader must reject it with.
func (m *Mixer) AppendRow(dst []byte, now time.Time) ([]byte, Kind, string) {
	m.n++
	badDebt := due(m.badRate, m.n) - m.total.Invalid
	dupDebt := int64(0)
	if m.rfull > 0 {
		dupDebt = due(m.dupRate, m.n) - m.total.Duplicate
	}
	kind := Valid
	switch {
	case badDebt > 0 && dupDebt > 0:
		// Both are owed: serve the one whose next row falls due first, so neither falls
		// more than one row behind its share.
		kind = Invalid
		if deadline(m.dupRate, m.total.Duplicate+dupDebt) < deadline(m.badRate, m.total.Invalid+badDebt) {
			kind = Duplicate
		}
	case badDebt > 0:
		kind = Invalid
	case dupDebt > 0:
		kind = Duplicate
	}

	var reason string
	switch kind {
	case Invalid:
		m.model.Next(&m.ev, now)
		// Rotate over the corruptions, and over each one's variants on later rounds.
		i := m.total.Invalid
		c := &corruptions[i%int64(len(corruptions))]
		dst = c.append(dst, &m.ev, int(i/int64(len(corruptions))))
		reason = c.reason
		m.total.Invalid++
	case Duplicate:
		slot := m.rng.IntN(m.rfull)
		dst = append(dst, m.ring[slot]...)
		m.total.Duplicate++
	default:
		m.model.Next(&m.ev, now)
		start := len(dst)
		dst = event.AppendCSV(dst, &m.ev)
		m.remember(dst[start:])
		m.total.Valid++
	}
	return dst, kind, reason
}

// remember keeps a valid row for later duplicates.
func (m *Mixer) remember(row []byte) {
	if m.dupRate == 0 || len(row) > maxRowBytes {
		return
	}
	s := m.ring[m.rpos]
	if s == nil {
		s = make([]byte, 0, maxRowBytes)
	}
	m.ring[m.rpos] = append(s[:0], row...)
	m.rpos = (m.rpos + 1) % len(m.ring)
	if m.rfull < len(m.ring) {
		m.rfull++
	}
}

// due is how many rows of a kind with share rate the first n rows should hold.
func due(rate float64, n int64) int64 {
	return int64(math.Floor(rate * float64(n)))
}

// deadline is the row at which a kind with share rate and k rows owed would owe one
// more: the least n with floor(rate·n) >= k+1.
func deadline(rate float64, k int64) int64 {
	k++
	if rate <= 0 {
		return math.MaxInt64
	}
	return int64(math.Ceil(float64(k) / rate))
}
