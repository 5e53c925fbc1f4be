package load

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/csvcodec"
	"github.com/ecomstream/ecomstream/services/common/event"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// rejectedRow is one line for rejected_records.
type rejectedRow struct {
	file    string
	line    int64
	raw     string
	reason  string
	message string
}

// maxRawLine caps what a rejected row keeps of its line, counted after escaping, so
// the rejected buffer's memory bound (rows × maxRawLine) holds for any bytes.
const maxRawLine = 4096

// maxRejectedBytes bounds the rejected buffer in bytes as well as in rows (the
// MAX_REJECTED_BUFFER setting): 10,000 rows of 4 KiB each would hold 40 MiB per worker
// (a peak RSS of 76 MiB measured with BENCH_REJECTED=1); flushed at 8 MiB, a file of
// garbage costs a few more COPY round trips instead.
const maxRejectedBytes = 8 << 20

// maxRawHeader caps what a whole-file rejection keeps of a first line: of a file that
// is not the event CSV, no more than a short escaped prefix reaches the database.
const maxRawHeader = 256

// source streams the good rows of a batch's files into COPY (through copyReader) while
// it validates them; rejected rows are buffered for their own COPY. It pauses (Next
// returns false before the end) when the rejected buffer is full, so a file of garbage
// cannot grow memory: the caller flushes the buffer and resumes with another CopyFrom.
type source struct {
	files   []*FileResult
	staging bool // add the ord column for the staging table
	now     time.Time
	maxRej  int
	perFile int // rejected rows stored per file at most (0: all)
	ctx     context.Context
	open    Opener // where the items are read from

	idx      int
	f        io.ReadCloser
	z        io.Closer     // the decompressor of a .csv.gz or .csv.zst item
	claimed  input.Version // the current item's version as discovered (before Open)
	sum      hash.Hash
	br       *bufio.Reader // the files' read buffer, taken from freeReaders for the batch
	cr       *csvcodec.Reader
	header   event.Header
	cur      *FileResult
	paused   bool
	done     bool
	err      error
	rejected []rejectedRow
	rejBytes int // bytes of raw lines and messages in rejected
	ord      int64

	ev     event.Event // the current good row
	file   string      // its file's name
	intern map[string]string
	recent [64]string // internCategory's last category per slot
}

func newSource(files []*FileResult, staging bool, now time.Time, maxRej, perFile int) *source {
	s := &source{files: files, staging: staging, now: now, maxRej: maxRej, perFile: perFile, intern: map[string]string{}}
	for _, fr := range files {
		if fr.Outcome == OutcomeFailed && fr.Failure != nil { // failed before reading (claim)
			s.buffer(rejectedRow{file: fr.File.Name, reason: fr.Failure.Reason, message: fr.Failure.Message})
		}
	}
	return s
}

// Next advances to the next good row.
func (s *source) Next() bool {
	if s.err != nil || s.done {
		return false
	}
	for {
		if len(s.rejected) >= s.maxRej || s.rejBytes >= maxRejectedBytes {
			s.paused = true
			return false
		}
		if s.cur == nil && !s.openNext() {
			return false
		}
		rec, err := s.cr.Next()
		if err == io.EOF {
			s.finishFile()
			continue
		}
		if err != nil {
			s.err = &FileError{Name: s.cur.File.Name, Err: fmt.Errorf("read %s at line %d: %w", s.cur.File.Path, s.cr.Line(), s.notCorruptIfChanged(err))}
			return false
		}
		s.cur.Total++
		if rec.Err != nil {
			s.reject(rec.Line, rec.Raw, reasonOf(rec.Err), rec.Err.Error())
			continue
		}
		e, rej := s.header.Parse(rec.Fields, s.now, s.internCategory)
		if rej != nil {
			s.reject(rec.Line, rec.Raw, rej.Reason, rej.Message)
			continue
		}
		s.fill(&e)
		s.cur.good++
		return true
	}
}

// openNext opens the next file and reads its header; a file that is not usable CSV is
// recorded as failed and skipped. It returns false when no file is left or on error.
func (s *source) openNext() bool {
	for s.idx < len(s.files) {
		fr := s.files[s.idx]
		s.idx++
		if fr.Outcome != OutcomeIngested {
			continue // skipped, locked elsewhere or already committed
		}
		f, v, err := s.open.Open(s.ctx, fr.File)
		if settleReadError(fr, err) {
			// Gone, replaced, or an OS error: nothing of it is read or committed now.
			continue
		}
		s.f, s.sum, s.cur = f, sha256.New(), fr
		s.claimed, fr.File.Version = fr.File.Version, v
		// The checksum sits below the buffer and the decompressor: every stored byte read
		// is hashed once, and finishFile hashes the rest straight from the item. A corrupt
		// compressed stream is a *compress.CorruptError inside the FileError (a Reject
		// verdict, see verdict).
		z := compress.Reader(fr.File.Name, io.TeeReader(f, s.sum))
		s.z = z
		if s.br == nil {
			s.br = getReader()
		}
		s.br.Reset(z)
		s.cr = csvcodec.NewReader(s.br) // reads s.br itself (at least the size it wants)
		rec, err := s.cr.Next()
		var rej *event.Rejection
		switch {
		case err == io.EOF:
			rej = &event.Rejection{Reason: event.ReasonEmptyFile, Message: "the file is empty (no header line)"}
		case err != nil:
			s.err = &FileError{Name: fr.File.Name, Err: fmt.Errorf("read %s: %w", fr.File.Path, s.notCorruptIfChanged(err))}
			return false
		case rec.Err != nil:
			rej = &event.Rejection{Reason: event.ReasonHeaderNotCSV, Message: "the header line is not CSV: " + rec.Err.Error()}
		default:
			s.header, rej = event.ParseHeader(rec.Fields)
		}
		if rej != nil {
			fr.Outcome, fr.Failure = OutcomeFailed, rej
			s.buffer(rejectedRow{file: fr.File.Name, line: 0, raw: sanitize(rec.Raw, maxRawHeader), reason: rej.Reason, message: rej.Message})
			s.finishFile()
			continue
		}
		fr.Extra = s.header.Extra
		return true
	}
	s.done = true
	return false
}

// ErrChangedWhileRead: a compressed stream ended short or broke in an item whose version
// when it was opened is not the one discovery claimed: it was read while being written
// or replaced, which says nothing of its content, so it is retried rather than rejected.
var ErrChangedWhileRead = errors.New("the item changed between its discovery and its read")

// notCorruptIfChanged returns err, unless it is a corrupt compressed stream of an item
// opened at another version than the one claimed: then ErrChangedWhileRead.
func (s *source) notCorruptIfChanged(err error) error {
	var corrupt *compress.CorruptError
	if !errors.As(err, &corrupt) || s.claimed.IsZero() || s.cur.File.Version.Same(s.claimed) {
		return err // not a stream error, or the verdict stands: the bytes are the ones claimed
	}
	return fmt.Errorf("%w (%d bytes claimed, %d opened; %v)", ErrChangedWhileRead, s.claimed.Size, s.cur.File.Size, corrupt.Err)
}

// finishFile drains the rest of the file into the checksum and closes it.
func (s *source) finishFile() {
	if s.cur == nil {
		return
	}
	if _, err := io.Copy(s.sum, s.f); err != nil && s.err == nil {
		s.err = &FileError{Name: s.cur.File.Name, Err: fmt.Errorf("read %s: %w", s.cur.File.Path, err)}
	}
	s.cur.SHA256 = hex.EncodeToString(s.sum.Sum(nil))
	s.z.Close()
	s.f.Close()
	s.cur, s.f, s.z, s.cr = nil, nil, nil, nil
}

func (s *source) close() {
	if s.f != nil {
		s.z.Close()
		s.f.Close()
		s.cur, s.f, s.z, s.cr = nil, nil, nil, nil
	}
	if s.br != nil {
		putReader(s.br)
		s.br = nil
	}
}

// readBuffer is a file's read buffer: large, so that a big file is read in few system
// calls or round trips.
const readBuffer = 256 << 10

// freeReaders keeps read buffers for the next batches, as freeChunks keeps chunks: one
// made for every file (objects of 100 rows at 10,000 rows/s: 25 MB/s of buffers
// allocated and cleared, 6 % of the ingester's CPU with the collections they caused in
// BenchmarkBucketPipeline's notify run) is now made once per worker.
var freeReaders = newFreeList(8, func() *bufio.Reader { return bufio.NewReaderSize(nil, readBuffer) })

func getReader() *bufio.Reader { return freeReaders.get() }

func putReader(br *bufio.Reader) {
	br.Reset(nil) // the file it read is closed; drop it
	freeReaders.put(br)
}

func (s *source) reject(line int64, raw []byte, reason, msg string) {
	s.cur.Rejected++
	if s.perFile > 0 && s.cur.stored >= int64(s.perFile) {
		return // counted in the ledger, not stored: a file of garbage stays cheap
	}
	s.cur.stored++
	s.buffer(rejectedRow{file: s.cur.File.Name, line: line, raw: sanitize(raw, maxRawLine), reason: reason, message: msg})
}

// internCategory returns a shared string for a category: the last one seen in its slot
// of recent (a compare, no hashing), else the map's (5 % of the ingester's CPU went to
// the map's lookups in make bench's profile, for a few dozen categories).
func (s *source) internCategory(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	slot := &s.recent[(len(b)+int(b[0])+int(b[len(b)-1])*3)%len(s.recent)]
	if *slot == string(b) {
		return *slot
	}
	c, ok := s.intern[string(b)]
	if !ok {
		c = string(b)
		if len(s.intern) < 100000 {
			s.intern[c] = c
		}
	}
	*slot = c
	return c
}

// fill makes e the current row, for appendRow.
func (s *source) fill(e *event.Event) {
	s.ev = *e
	s.file = s.cur.File.Name
	if s.staging {
		s.ord++
	}
}

// FileError is a read error of one file in the middle of a batch: the batch is rolled
// back, and the fault is that file's (or its disk's), not the other files'.
type FileError struct {
	Name string
	Err  error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Err reports a read error; COPY is then aborted and the transaction rolled back.
func (s *source) Err() error { return s.err }

func reasonOf(err error) string {
	switch {
	case errors.Is(err, csvcodec.ErrBareQuote):
		return event.ReasonBadQuote
	case errors.Is(err, csvcodec.ErrUnterminatedQuote):
		return event.ReasonUnterminated
	case errors.Is(err, csvcodec.ErrRecordTooLong):
		return event.ReasonRecordTooLong
	}
	return "bad_record"
}

// sanitize makes raw bytes storable as PostgreSQL text: invalid UTF-8 and NUL shown as
// \xNN so the line can still be read and fixed, and the result capped at limit bytes
// after escaping (never cutting a character or an escape in two).
func sanitize(raw []byte, limit int) string {
	if len(raw) <= limit && utf8.Valid(raw) && !strings.ContainsRune(string(raw), 0) {
		return string(raw)
	}
	var b strings.Builder
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		if (r == utf8.RuneError && size == 1) || r == 0 {
			if b.Len()+4 > limit {
				break
			}
			fmt.Fprintf(&b, `\x%02X`, raw[0])
		} else {
			if b.Len()+size > limit {
				break
			}
			b.Write(raw[:size])
		}
		raw = raw[size:]
	}
	return b.String()
}

// buffer holds a rejected row until the next flush, counting its bytes.
func (s *source) buffer(r rejectedRow) {
	s.rejBytes += len(r.raw) + len(r.message)
	s.rejected = append(s.rejected, r)
}
