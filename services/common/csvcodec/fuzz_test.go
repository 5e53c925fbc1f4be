package csvcodec

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ecomstream/ecomstream/services/common/event"
)

var bom = []byte("\xef\xbb\xbf")

// fuzzSeeds are the cases of the unit tests, so `go test` runs them as the seed corpus.
func fuzzSeeds() []string {
	header := string(event.HeaderLine())
	row := "0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11,2024-05-01T12:00:00Z,view,1,9f0e1d2c-3b4a-4958-8675-a4b3c2d1e0f9,7,books,9.99,1\n"
	return []string{
		"",
		"\xef\xbb\xbf",
		"\n\r\n\n",
		header + row,
		"\xef\xbb\xbf" + header + row,
		strings.ReplaceAll(header+row+row, "\n", "\r\n"),
		header + row + row[:len(row)-1],
		"a,b,c\n1,2,3\n",
		"a,b\r\n1,2\n3,4\r\n",
		"a,b\n1,2",
		"a,\"b\"",
		"a,b\r",
		"a\rb,c\n",
		"\na,b\n\n\r\n1,2\n\n",
		",,\n",
		"\"\"\n",
		"\"a,b\",c\n",
		"\"say \"\"hi\"\"\",\"\"\"\"\n",
		"h\n\"a\nb\nc\",d\nx,y\n",
		"\"a\r\nb\",c\r\nx\r\n",
		"\"a\r\r\nb\"\n",
		"\"a\n\nb\"\nz\n",
		"x,\"1\n2\",y,z\n",
		"\"a\",\n",
		"a,b\"c,d\n1,2\n",
		"\"a\"b,c\n1\n",
		"a, \"b\"\n1\n",
		"h1,h2\n1,2\n3,\"4\n5,6\n7,8\n",
		"a\r\n\"b\r\nc,d\r\n\r\ne",
		"a\n\"b",
		"\"a\nb\n\"c\nd\n",
		"\"aaaa\nbbbb\ncccc\",x\nnext,row\n",
		"h\n3,\"4\n1,2,zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n5,6\n",
		"h\n" + strings.Repeat("x", 300) + "\nx,y\n",
		"a,\"" + strings.Repeat("y", 300) + "\"\nb,c\n",
		header + strings.Replace(row, "books", "\"caf\xe9, \xff\"", 1),
		header + strings.Replace(row, "books", "\"日本語,\n\"\"本\"\"\"", 1) + row,
		"\xef\xbb\xbf\n",
		"\"",
		"\"\"\"",
		"a\"",
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), uint16(0))  // the default cap
		f.Add([]byte(s), uint16(16)) // a small cap, to reach record_too_long with small inputs
	}
	f.Fuzz(func(t *testing.T, data []byte, maxBytes uint16) {
		checkReader(t, data, int(maxBytes))
	})
}

// lineSpans returns the physical lines of data, each with its line end.
func physicalLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data) - 1
		}
		lines = append(lines, data[:i+1])
		data = data[i+1:]
	}
	return lines
}

// checkReader reads data and checks the invariants of the reader.
func checkReader(t *testing.T, data []byte, maxBytes int) {
	limit := maxBytes
	if limit <= 0 {
		limit = DefaultMaxRecordBytes
	}
	lines := physicalLines(data)
	nLines := int64(len(lines))

	got, r := readAllFrom(t, bytes.NewReader(data), maxBytes)

	// Whatever the chunks the underlying reader delivers, the records are the same.
	again, _ := readAllFrom(t, iotest.HalfReader(bytes.NewReader(data)), maxBytes)
	if len(again) != len(got) {
		t.Fatalf("%d records with one read, %d with half reads", len(got), len(again))
	}
	for i := range got {
		g, a := got[i], again[i]
		if g.Line != a.Line || g.Raw != a.Raw || g.Err != a.Err || strings.Join(g.Fields, "\x00") != strings.Join(a.Fields, "\x00") || len(g.Fields) != len(a.Fields) {
			t.Fatalf("record %d differs with half reads: %+v vs %+v", i, g, a)
		}
	}

	if r.Line() != nLines {
		t.Fatalf("Line() = %d at EOF, the input has %d lines", r.Line(), nLines)
	}

	covered := make([]bool, nLines+1) // covered[l]: line l belongs to a record
	var last int64                    // last line of the previous record
	for i, rec := range got {
		if len(rec.Raw) > limit {
			t.Fatalf("record %d: raw of %d bytes exceeds MaxBytes %d", i, len(rec.Raw), limit)
		}
		if rec.Line <= last || rec.Line > nLines {
			t.Fatalf("record %d: line %d after line %d, input of %d lines", i, rec.Line, last, nLines)
		}
		if (rec.Err == nil) == (rec.Fields == nil) {
			t.Fatalf("record %d: err %v with %d fields", i, rec.Err, len(rec.Fields))
		}
		if rec.Err != nil && !errors.Is(rec.Err, ErrBareQuote) && !errors.Is(rec.Err, ErrUnterminatedQuote) && !errors.Is(rec.Err, ErrRecordTooLong) {
			t.Fatalf("record %d: unknown error %v", i, rec.Err)
		}
		// The record's lines: one for a line too long or an unterminated quote (its
		// later lines are read again), all the lines its raw bytes span otherwise.
		end := rec.Line
		if !errors.Is(rec.Err, ErrRecordTooLong) && !errors.Is(rec.Err, ErrUnterminatedQuote) {
			end += int64(strings.Count(rec.Raw, "\n"))
		}
		if end > nLines {
			t.Fatalf("record %d: spans lines %d-%d of %d", i, rec.Line, end, nLines)
		}
		// Raw is the input at that line, without the BOM of line 1.
		at := bytes.Join(lines[rec.Line-1:end], nil)
		stripped := at
		if rec.Line == 1 {
			stripped = bytes.TrimPrefix(at, bom)
		}
		if !bytes.HasPrefix(stripped, []byte(rec.Raw)) && !bytes.HasPrefix(at, []byte(rec.Raw)) {
			t.Fatalf("record %d at line %d: raw %q is not the input there %q", i, rec.Line, rec.Raw, at)
		}
		if errors.Is(rec.Err, ErrRecordTooLong) && len(at) <= limit {
			t.Fatalf("record %d: line of %d bytes reported too long (cap %d)", i, len(at), limit)
		}
		for l := rec.Line; l <= end; l++ {
			covered[l] = true
		}
		last = end
	}
	// Every line that is not blank belongs to a record: no byte is silently dropped.
	for l := int64(1); l <= nLines; l++ {
		line := lines[l-1]
		if l == 1 {
			line = bytes.TrimPrefix(line, bom)
		}
		if !covered[l] && len(trimEOL(line)) > 0 {
			t.Fatalf("line %d %q is in no record", l, line)
		}
	}

	// Input made only of well-formed records: the fields written again with AppendField
	// read back the same.
	if len(got) == 0 {
		return
	}
	for _, rec := range got {
		if rec.Err != nil {
			return
		}
	}
	// A BOM first: the reader takes a leading one away, and the first field may itself
	// begin with U+FEFF.
	out := append([]byte(nil), bom...)
	for _, rec := range got {
		out = appendRecord(out, rec.Fields)
	}
	back, _ := readAllFrom(t, bytes.NewReader(out), len(out)+1)
	if len(back) != len(got) {
		t.Fatalf("%d records written, %d read back from %q", len(got), len(back), out)
	}
	for i := range got {
		if back[i].Err != nil || len(back[i].Fields) != len(got[i].Fields) {
			t.Fatalf("record %d read back as %+v, want fields %q", i, back[i], got[i].Fields)
		}
		for j := range got[i].Fields {
			if back[i].Fields[j] != got[i].Fields[j] {
				t.Fatalf("record %d field %d: %q read back as %q", i, j, got[i].Fields[j], back[i].Fields[j])
			}
		}
	}
}

// appendRecord writes fields as one record with AppendField. A record of one empty
// field is written "" (an empty line is no record).
func appendRecord(dst []byte, fields []string) []byte {
	if len(fields) == 1 && fields[0] == "" {
		return append(dst, "\"\"\n"...)
	}
	for j, f := range fields {
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = event.AppendField(dst, f)
	}
	return append(dst, '\n')
}

func TestAppendFieldRoundTrip(t *testing.T) {
	for _, f := range []string{"", "plain", "a,b", "say \"hi\"", "\"", "line\nbreak", "cr\rlf", "crlf\r\n", "\r\r\n", "日本語", " lead", "trail ", "\n", ","} {
		out := appendRecord(nil, []string{"x", f, "y"})
		got, _ := readAllFrom(t, bytes.NewReader(out), 0)
		if len(got) != 1 || got[0].Err != nil || len(got[0].Fields) != 3 || got[0].Fields[1] != f {
			t.Errorf("%q written as %q read back as %+v", f, out, got)
		}
	}
}

// FuzzQuoteFreeFastPath: the fast path for lines without quotes yields exactly the
// records (lines, fields, raw bytes, errors) of the general parser, for any input.
func FuzzQuoteFreeFastPath(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte("a,b,,c\r\n,\n\n,x\r\ny\rz,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := NewReader(bytes.NewReader(data))
		general := NewReader(bytes.NewReader(data))
		general.general = true
		for i := 0; ; i++ {
			a, errA := fast.Next()
			b, errB := general.Next()
			if errA != errB {
				t.Fatalf("record %d: error %v, general parser %v", i, errA, errB)
			}
			if errA != nil {
				return
			}
			if a.Line != b.Line || !bytes.Equal(a.Raw, b.Raw) || a.Err != b.Err || len(a.Fields) != len(b.Fields) {
				t.Fatalf("record %d: %+v, general parser %+v", i, a, b)
			}
			for j := range a.Fields {
				if !bytes.Equal(a.Fields[j], b.Fields[j]) || cap(a.Fields[j]) != len(a.Fields[j]) {
					t.Fatalf("record %d field %d: %q (cap %d), general parser %q", i, j, a.Fields[j], cap(a.Fields[j]), b.Fields[j])
				}
			}
		}
	})
}
