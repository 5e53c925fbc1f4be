package load

import (
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/ecomstream/ecomstream/services/ingester/internal/pgcopy"
)

// copyReader streams a source's good rows as COPY's binary format for
// pgconn.PgConn.CopyFrom: each row is validated and encoded straight into a reused
// buffer (no []any per row, no per-value type lookup).
//
// Rows going to events are sent in primary-key order (event_id, event_time) within
// chunks of at most maxChunkRows rows or maxChunkBytes bytes: PostgreSQL then inserts
// each chunk's keys into the primary key's btree in one sweep instead of at random
// leaf pages, which costs it less CPU per row: 9 % less in make bench's A/B of the
// ingester, 15 % with two \copy streams in its breakdown (reports/bench-20261202T0353Z.md),
// for 0.2-0.3 µs of the ingester's CPU a row with a comparison sort, about a tenth of
// that with sortRows' buckets. The chunk bounds the memory whatever the batch's or the
// file's size. Rows going to the staging table keep their file order (their ord decides which
// of two duplicates is the first), unsorted.
//
// pgconn reads it on a goroutine of its own, which it does not always wait for (it
// returns at once when the connection breaks): stop must be called once CopyFrom has
// returned, before the source is touched again.
type copyReader struct {
	mu      sync.Mutex
	stopped bool
	src     *source
	buf     []byte
	off     int
	ended   bool
	sorted  bool

	chunk   *chunk // rows encoded, waiting to be sent in key order
	next    int    // the next of chunk.rows to send
	srcDone bool   // the source has no more rows for this COPY
}

// Chunk bounds: 5,000 rows (of ~130-150 encoded bytes); the byte bound holds for wide
// rows. The rows are read back in key order, i.e. at random places in the chunk, so a
// chunk that stays in the CPU's caches is cheaper than one batch-sized: make bench, two
// runs of 3 rounds each, 5,000 rows against 20,000: ingester 1.41 and 1.31 against 1.54
// and 1.44 CPU-s per million rows, PostgreSQL 19.4 and 18.6 against 19.3 and 19.3 µs a
// row (the sort's benefit kept). A chunk is allocated at its bound (~0.8 MiB: no growth,
// whose garbage would raise the heap's peak) when a COPY first has a row for it, and
// reused from one COPY to the next.
const (
	maxChunkRows  = 5000
	maxChunkBytes = 768 << 10
	// maxRowSlack is more than any valid row's encoding (fixed-size values, a category
	// of at most 64 characters, a file name or object key of at most 1,024 bytes): the
	// last row of a full chunk fits without growing it (a longer one would only grow it).
	maxRowSlack = 4 << 10
)

// chunk is a set of encoded rows and their keys, sorted before they are sent.
type chunk struct {
	data []byte
	rows []chunkRow
	tmp  []chunkRow // sortRows' scratch, as long as rows
}

// chunkRow is one encoded row: its primary key and where its bytes are in data.
type chunkRow struct {
	hi, lo   uint64 // event_id, big-endian halves: their order is the uuid's (bytewise)
	t        int64  // event_time, microseconds
	off, end int32  // data is below 2 GiB: maxChunkBytes plus one row
}

func compareRows(a, b chunkRow) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.t, b.t)
}

// freeChunks keeps chunks for the next COPY (freeList).
var freeChunks = newFreeList(8, func() *chunk {
	return &chunk{data: make([]byte, 0, maxChunkBytes+maxRowSlack), rows: make([]chunkRow, 0, maxChunkRows),
		tmp: make([]chunkRow, maxChunkRows)}
})

func getChunk() *chunk { return freeChunks.get() }

func putChunk(c *chunk) {
	c.data, c.rows = c.data[:0], c.rows[:0]
	freeChunks.put(c)
}

var errCopyStopped = errors.New("copy stopped")

// stop waits for a Read in progress and makes later ones fail without touching src.
func (r *copyReader) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.chunk != nil {
		putChunk(r.chunk)
		r.chunk = nil
	}
	if r.buf != nil {
		freeCopyBufs.put(r.buf[:0])
		r.buf = nil
	}
	r.mu.Unlock()
}

// freeCopyBufs keeps the COPY buffers of ended COPYs for the next ones (one made and
// cleared for each batch of one small object cost as much as the object's encoding).
var freeCopyBufs = newFreeList(8, func() []byte { return make([]byte, 0, 96<<10) })

func newCopyReader(src *source) *copyReader {
	return &copyReader{src: src, buf: pgcopy.AppendHeader(freeCopyBufs.get()), sorted: !src.staging}
}

// Read fills p with encoded rows; a read error of the source aborts the COPY (pgconn
// sends CopyFail) and stays in src.Err for the caller.
func (r *copyReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, errCopyStopped
	}
	if r.off > 0 { // keep the unread tail at the front so the buffer does not grow
		r.buf = r.buf[:copy(r.buf, r.buf[r.off:])]
		r.off = 0
	}
	for len(r.buf) < len(p) && !r.ended {
		if r.sorted {
			if r.chunk != nil && r.next < len(r.chunk.rows) {
				if n := r.sendSorted(p); n > 0 {
					return n, nil
				}
				row := r.chunk.rows[r.next]
				r.next++
				r.buf = append(r.buf, r.chunk.data[row.off:row.end]...)
				continue
			}
			if !r.srcDone {
				if err := r.fill(); err != nil {
					return 0, err
				}
				continue
			}
		} else if r.src.Next() {
			r.buf = r.src.appendRow(r.buf)
			continue
		} else if err := r.src.Err(); err != nil {
			return 0, err
		}
		r.buf = pgcopy.AppendTrailer(r.buf)
		r.ended = true
	}
	n := copy(p, r.buf)
	r.off = n
	if n == 0 && r.ended {
		return 0, io.EOF
	}
	return n, nil
}

// sendSorted copies whole sorted rows of the chunk straight into p while nothing is
// buffered before them, saving the pass through buf (a copy of every row; the chunk is
// larger than the caches, so that copy was most of what sorting cost the ingester).
func (r *copyReader) sendSorted(p []byte) int {
	if len(r.buf) > 0 {
		return 0
	}
	n := 0
	for r.next < len(r.chunk.rows) {
		row := r.chunk.rows[r.next]
		if int(row.end-row.off) > len(p)-n {
			break
		}
		n += copy(p[n:], r.chunk.data[row.off:row.end])
		r.next++
	}
	return n
}

// fill encodes the source's next rows into the chunk, up to its bounds, and sorts them.
func (r *copyReader) fill() error {
	more := func() bool {
		if r.src.Next() {
			return true
		}
		r.srcDone = true
		return false
	}
	if !more() {
		return r.src.Err()
	}
	if r.chunk == nil { // a COPY with no good row (a file of garbage) takes none
		r.chunk = getChunk()
	}
	c := r.chunk
	c.data, c.rows, r.next = c.data[:0], c.rows[:0], 0
	for ok := true; ok; ok = len(c.rows) < maxChunkRows && len(c.data) < maxChunkBytes && more() {
		off := len(c.data)
		c.data = r.src.appendRow(c.data)
		id := &r.src.ev.EventID
		c.rows = append(c.rows, chunkRow{hi: binary.BigEndian.Uint64(id[:8]), lo: binary.BigEndian.Uint64(id[8:]),
			t: r.src.ev.EventTime.UnixMicro(), off: int32(off), end: int32(len(c.data))})
	}
	c.rows, c.tmp = sortRows(c.rows, c.tmp), c.rows[:cap(c.rows)]
	return r.src.Err()
}

// bucketBits is how many of an event_id's first bits sortRows buckets rows by: 4,096
// buckets, about one row each in a full chunk of random (version 4) UUIDs.
const bucketBits = 12

// sortRows returns rows sorted by compareRows, in tmp (at least as long as rows; rows
// is then the caller's scratch). It deals the rows into buckets by their event_id's
// first bucketBits bits (one counting pass, one pass to place them) and sorts each
// bucket, a row or two for random UUIDs: 9 % of the ingester's CPU went to
// slices.SortFunc over the whole chunk (make bench's profile, 0.29 of 2.23 s), its
// comparisons a function call each. Keys that share their first bits (time-ordered
// UUIDs of version 7) fall into few buckets and are sorted there as before.
func sortRows(rows, tmp []chunkRow) []chunkRow {
	if len(rows) < 64 {
		slices.SortFunc(rows, compareRows)
		return append(tmp[:0], rows...)
	}
	if cap(tmp) < len(rows) {
		tmp = make([]chunkRow, len(rows))
	}
	var start [1<<bucketBits + 1]int32
	for i := range rows {
		start[rows[i].hi>>(64-bucketBits)+1]++
	}
	for b := 1; b < len(start); b++ {
		start[b] += start[b-1]
	}
	next := start
	tmp = tmp[:len(rows)]
	for i := range rows {
		b := rows[i].hi >> (64 - bucketBits)
		tmp[next[b]] = rows[i]
		next[b]++
	}
	for b := range 1 << bucketBits {
		if lo, hi := start[b], start[b+1]; hi-lo > 1 {
			slices.SortFunc(tmp[lo:hi], compareRows)
		}
	}
	return tmp
}
