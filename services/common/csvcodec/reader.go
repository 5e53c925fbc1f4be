// Package csvcodec reads and writes the CSV of the contract (RFC 4180, UTF-8, LF or
// CRLF, a header line). Its reader differs from encoding/csv in what a pipeline needs:
// every record comes with its raw bytes and first line number (for rejected_records),
// a malformed record is reported and skipped instead of ending the file (good rows
// around a bad one still land), and a record's size is capped so a file without line
// ends cannot exhaust memory.
package csvcodec

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Record problems; a record with one of these has Err set and no usable fields.
var (
	ErrBareQuote         = errors.New("bad_quote: a quote inside an unquoted field or after a closing quote")
	ErrUnterminatedQuote = errors.New("unterminated_quote: a quoted field is never closed")
	ErrRecordTooLong     = errors.New("record_too_long: record exceeds the size limit")
)

// DefaultMaxRecordBytes caps one record (its raw bytes); a legitimate event is < 1 KiB.
const DefaultMaxRecordBytes = 1 << 20

// Record is one parsed record. Fields and Raw alias the reader's buffers and are valid
// until the next call to Next.
type Record struct {
	Line   int64    // physical line (1-based) on which the record starts
	Fields [][]byte // unquoted field values
	Raw    []byte   // the record as it stood in the file, without its line end (capped)
	Err    error    // non-nil when the record is malformed
}

// Reader yields records one by one with constant memory.
type Reader struct {
	br       *bufio.Reader
	pending  []pendingLine // physical lines pushed back after an unterminated quote
	line     int64         // physical lines consumed so far
	first    bool
	MaxBytes int
	general  bool // tests: no fast path for quote-free lines

	raw    []byte
	field  []byte
	ends   []int
	fields [][]byte
}

// pendingLine is a physical line pushed back; tooLong marks one that was cut at MaxBytes.
type pendingLine struct {
	b       []byte
	tooLong bool
}

// NewReader returns a reader over r; a leading UTF-8 BOM is skipped.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), first: true, MaxBytes: DefaultMaxRecordBytes}
}

// readLine returns the next physical line including its line end, copied into a
// buffer that the caller may keep until the next call; tooLong reports a line cut at
// MaxBytes (the rest of it is consumed and dropped).
func (r *Reader) readLine(dst []byte) (line []byte, tooLong bool, err error) {
	if n := len(r.pending); n > 0 {
		l := r.pending[0]
		r.pending = r.pending[1:]
		r.line++
		return append(dst, l.b...), l.tooLong, nil
	}
	start := len(dst)
	for {
		chunk, e := r.br.ReadSlice('\n')
		if len(dst)-start+len(chunk) > r.MaxBytes {
			room := r.MaxBytes - (len(dst) - start)
			if room > 0 {
				dst = append(dst, chunk[:room]...)
			}
			tooLong = true
		} else {
			dst = append(dst, chunk...)
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e != nil && (e != io.EOF || len(dst) == start) {
			return dst, tooLong, e
		}
		break
	}
	r.line++
	if r.first {
		r.first = false
		if bytes.HasPrefix(dst[start:], []byte("\xef\xbb\xbf")) {
			dst = append(dst[:start], dst[start+3:]...)
		}
	}
	return dst, tooLong, nil
}

// Next returns the next record, skipping blank lines; io.EOF at the end of input. A
// read error of the underlying reader is returned as is.
func (r *Reader) Next() (Record, error) {
	for {
		var tooLong bool
		var err error
		r.raw, tooLong, err = r.readLine(r.raw[:0])
		if err != nil {
			return Record{}, err
		}
		startLine := r.line
		if tooLong {
			return Record{Line: startLine, Raw: trimEOL(r.raw), Err: ErrRecordTooLong}, nil
		}
		if len(trimEOL(r.raw)) == 0 {
			continue
		}
		return r.parse(startLine)
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// parse splits r.raw (one physical line so far) into fields.
func (r *Reader) parse(startLine int64) (Record, error) {
	// Nearly every record holds no quote: its fields are the line cut at commas, which
	// the general parser would copy out field by field to the same result.
	if line := trimEOL(r.raw); !r.general && bytes.IndexByte(line, '"') < 0 {
		r.fields = r.fields[:0]
		for {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				r.fields = append(r.fields, line[:len(line):len(line)])
				break
			}
			r.fields = append(r.fields, line[:i:i])
			line = line[i+1:]
		}
		return Record{Line: startLine, Fields: r.fields, Raw: trimEOL(r.raw)}, nil
	}
	return r.parseGeneral(startLine)
}

// parseGeneral splits r.raw (one or more physical lines) into fields, reading more lines
// while a quoted field spans line ends.
func (r *Reader) parseGeneral(startLine int64) (Record, error) {
	r.field, r.ends = r.field[:0], r.ends[:0]
	pos := 0
	firstLineEnd := len(r.raw)
	for {
		// Start of a field at r.raw[pos].
		if pos < len(r.raw) && r.raw[pos] == '"' {
			pos++
			for {
				i := bytes.IndexByte(r.raw[pos:], '"')
				if i < 0 {
					// The quoted field goes on past this line: take the next one.
					// The line end (LF or CRLF) is part of the field as it stands, so
					// AppendField's output reads back byte for byte.
					r.field = append(r.field, r.raw[pos:]...)
					pos = len(r.raw)
					more, tooLong, err := r.readLine(r.raw)
					if err != nil || tooLong || len(more) > r.MaxBytes {
						if err != nil && err != io.EOF {
							return Record{}, err
						}
						// Every line read so far goes back, the last one too (marked
						// when it was cut), so none is lost and none shifts.
						r.raw = more
						return r.unterminated(startLine, firstLineEnd, tooLong)
					}
					r.raw = more
					continue
				}
				r.field = append(r.field, r.raw[pos:pos+i]...)
				pos += i + 1
				if pos < len(r.raw) && r.raw[pos] == '"' { // escaped quote
					r.field = append(r.field, '"')
					pos++
					continue
				}
				break
			}
			// After the closing quote: a comma, the line end, or the end of input.
			rest := r.raw[pos:]
			switch {
			case len(rest) > 0 && rest[0] == ',':
				r.ends = append(r.ends, len(r.field))
				pos++
				continue
			case len(trimEOL(rest)) == 0:
				r.ends = append(r.ends, len(r.field))
				return r.record(startLine, nil), nil
			default:
				return r.record(startLine, ErrBareQuote), nil
			}
		}
		// Unquoted field: up to the next comma or line end; a quote inside is an error.
		end := len(trimEOL(r.raw))
		seg := r.raw[pos:end]
		i := bytes.IndexByte(seg, ',')
		if i >= 0 {
			seg = seg[:i]
		}
		if bytes.IndexByte(seg, '"') >= 0 {
			return r.record(startLine, ErrBareQuote), nil
		}
		r.field = append(r.field, seg...)
		r.ends = append(r.ends, len(r.field))
		if i < 0 {
			return r.record(startLine, nil), nil
		}
		pos += i + 1
	}
}

// unterminated handles a quoted field that never closes (or grows past the cap): the
// record is reported bad as its first physical line, and the lines after it are read
// again as records of their own, so one stray quote costs one row, not the file.
func (r *Reader) unterminated(startLine int64, firstLineEnd int, lastTooLong bool) (Record, error) {
	rest := r.raw[firstLineEnd:]
	var lines []pendingLine
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			i = len(rest) - 1
		}
		lines = append(lines, pendingLine{b: append([]byte(nil), rest[:i+1]...)})
		rest = rest[i+1:]
	}
	if lastTooLong && len(lines) > 0 {
		lines[len(lines)-1].tooLong = true
	}
	r.pending = append(lines, r.pending...)
	r.line = startLine
	r.raw = r.raw[:firstLineEnd]
	return Record{Line: startLine, Raw: trimEOL(r.raw), Err: ErrUnterminatedQuote}, nil
}

func (r *Reader) record(line int64, err error) Record {
	raw := trimEOL(r.raw)
	if err != nil {
		return Record{Line: line, Raw: raw, Err: err}
	}
	r.fields = r.fields[:0]
	prev := 0
	for _, e := range r.ends {
		r.fields = append(r.fields, r.field[prev:e:e])
		prev = e
	}
	return Record{Line: line, Fields: r.fields, Raw: raw}
}

// Line returns how many physical lines have been consumed.
func (r *Reader) Line() int64 { return r.line }
