package load

import (
	"errors"
	"io"
	"sync"

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
