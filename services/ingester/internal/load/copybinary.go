package load

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ecomstream/ecomstream/services/common/table"
	"github.com/ecomstream/ecomstream/services/ingester/internal/pgcopy"
)

// copyReader streams a source's good rows as COPY's binary format for
// pgconn.PgConn.CopyFrom: each row is validated and encoded straight into one reused
// buffer (no []any per row, no per-value type lookup), which holds at most one read's
// worth of rows plus one, whatever the batch's size.
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
}

var errCopyStopped = errors.New("copy stopped")

// stop waits for a Read in progress and makes later ones fail without touching src.
func (r *copyReader) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

func newCopyReader(src *source) *copyReader {
	return &copyReader{src: src, buf: pgcopy.AppendHeader(make([]byte, 0, 96<<10))}
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
		if !r.src.Next() {
			if err := r.src.Err(); err != nil {
				return 0, err
			}
			r.buf = pgcopy.AppendTrailer(r.buf)
			r.ended = true
			break
		}
		r.buf = r.src.appendRow(r.buf)
	}
	n := copy(p, r.buf)
	r.off = n
	if n == 0 && r.ended {
		return 0, io.EOF
	}
	return n, nil
}

// encoders say how each value of a row is written: the binary form of its column's type
// in sql/ (uuid, timestamptz, text, bigint, numeric(10,2), integer). This is how an
// accepted event and its file become a row of events.
var encoders = [table.NumFields]func(dst []byte, s *source) []byte{
	table.EventID:   func(dst []byte, s *source) []byte { return pgcopy.AppendUUID(dst, s.ev.EventID) },
	table.EventTime: func(dst []byte, s *source) []byte { return pgcopy.AppendTimestamptz(dst, s.ev.EventTime) },
	table.EventType: func(dst []byte, s *source) []byte { return pgcopy.AppendText(dst, s.ev.EventType) },
	table.UserID:    func(dst []byte, s *source) []byte { return pgcopy.AppendInt8(dst, s.ev.UserID) },
	table.SessionID: func(dst []byte, s *source) []byte { return pgcopy.AppendUUID(dst, s.ev.SessionID) },
	table.ProductID: func(dst []byte, s *source) []byte { return pgcopy.AppendInt8(dst, s.ev.ProductID) },
	table.Category:  func(dst []byte, s *source) []byte { return pgcopy.AppendText(dst, s.ev.Category) },
	table.Price: func(dst []byte, s *source) []byte {
		dst, _ = pgcopy.AppendNumeric(dst, s.ev.PriceCents, 2) // scale 2 is always in range
		return dst
	},
	table.Quantity:   func(dst []byte, s *source) []byte { return pgcopy.AppendInt4(dst, s.ev.Quantity) },
	table.SourceFile: func(dst []byte, s *source) []byte { return pgcopy.AppendText(dst, s.file) },
}

// rowEncoders are the encoders of the events descriptor's columns, in COPY order.
var rowEncoders = encodersOf(eventsTable)

func encodersOf(t table.Table) []func([]byte, *source) []byte {
	encs := make([]func([]byte, *source) []byte, len(t.Columns))
	for i, c := range t.Columns {
		if c.Field < 0 || c.Field >= table.NumFields || encoders[c.Field] == nil {
			panic(fmt.Sprintf("load: no binary encoding for column %s of %s", c.Name, t.Name))
		}
		encs[i] = encoders[c.Field]
	}
	return encs
}

// appendRow encodes the current row in the order of the events descriptor's columns (and
// ord when staging).
func (s *source) appendRow(dst []byte) []byte {
	n := len(rowEncoders)
	if s.staging {
		n++
	}
	dst = pgcopy.AppendRow(dst, n)
	for _, enc := range rowEncoders {
		dst = enc(dst, s)
	}
	if s.staging {
		dst = pgcopy.AppendInt8(dst, s.ord)
	}
	return dst
}
