package csvcodec

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// rec is a Record copied out of the reader's buffers.
type rec struct {
	Line   int64
	Fields []string
	Raw    string
	Err    error
}

func copyRecord(r Record) rec {
	c := rec{Line: r.Line, Raw: string(r.Raw), Err: r.Err}
	if r.Fields != nil {
		c.Fields = make([]string, len(r.Fields))
		for i, f := range r.Fields {
			c.Fields[i] = string(f)
		}
	}
	return c
}

// readAllFrom reads every record of r; maxBytes 0 keeps the default cap.
func readAllFrom(t testing.TB, src io.Reader, maxBytes int) ([]rec, *Reader) {
	t.Helper()
	r := NewReader(src)
	if maxBytes > 0 {
		r.MaxBytes = maxBytes
	}
	var out []rec
	for {
		got, err := r.Next()
		if err == io.EOF {
			return out, r
		}
		if err != nil {
			t.Fatalf("Next: unexpected error %v", err)
		}
		out = append(out, copyRecord(got))
		if len(out) > 1_000_000 {
			t.Fatal("reader does not terminate")
		}
	}
}

func readAll(t testing.TB, in string) []rec {
	t.Helper()
	out, _ := readAllFrom(t, strings.NewReader(in), 0)
	return out
}

func ok(line int64, raw string, fields ...string) rec {
	return rec{Line: line, Raw: raw, Fields: fields}
}

func bad(line int64, raw string, err error) rec {
	return rec{Line: line, Raw: raw, Err: err}
}

func equalRecs(t *testing.T, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d records, want %d", len(got), len(want))
	}
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w rec
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g.Line != w.Line || g.Raw != w.Raw || !errors.Is(g.Err, w.Err) || (g.Err == nil) != (w.Err == nil) ||
			strings.Join(g.Fields, "\x00|") != strings.Join(w.Fields, "\x00|") || len(g.Fields) != len(w.Fields) {
			t.Errorf("record %d:\n got  line=%d raw=%q fields=%q err=%v\n want line=%d raw=%q fields=%q err=%v",
				i, g.Line, g.Raw, g.Fields, g.Err, w.Line, w.Raw, w.Fields, w.Err)
		}
	}
}

func TestReaderCases(t *testing.T) {
	long := strings.Repeat("x", DefaultMaxRecordBytes+10)
	tests := []struct {
		name string
		in   string
		want []rec
	}{
		{"empty input", "", nil},
		{"only a BOM", "\xef\xbb\xbf", nil},
		{"only blank lines", "\n\r\n\n", nil},
		{"simple LF", "a,b,c\n1,2,3\n", []rec{ok(1, "a,b,c", "a", "b", "c"), ok(2, "1,2,3", "1", "2", "3")}},
		{"CRLF", "a,b\r\n1,2\r\n", []rec{ok(1, "a,b", "a", "b"), ok(2, "1,2", "1", "2")}},
		{"mixed line ends", "a,b\r\n1,2\n3,4\r\n", []rec{ok(1, "a,b", "a", "b"), ok(2, "1,2", "1", "2"), ok(3, "3,4", "3", "4")}},
		{"BOM skipped", "\xef\xbb\xbfa,b\n1,2\n", []rec{ok(1, "a,b", "a", "b"), ok(2, "1,2", "1", "2")}},
		{"BOM only on the first line", "a\n\xef\xbb\xbfb\n", []rec{ok(1, "a", "a"), ok(2, "\xef\xbb\xbfb", "\xef\xbb\xbfb")}},
		{"no trailing newline", "a,b\n1,2", []rec{ok(1, "a,b", "a", "b"), ok(2, "1,2", "1", "2")}},
		{"no trailing newline, quoted last field", "a,\"b\"", []rec{ok(1, "a,\"b\"", "a", "b")}},
		{"trailing lone CR without LF is data", "a,b\r", []rec{ok(1, "a,b\r", "a", "b\r")}},
		{"CR inside an unquoted field", "a\rb,c\n", []rec{ok(1, "a\rb,c", "a\rb", "c")}},
		{"blank lines skipped, numbers kept", "\na,b\n\n\r\n1,2\n\n", []rec{ok(2, "a,b", "a", "b"), ok(5, "1,2", "1", "2")}},
		{"empty fields", ",,\n", []rec{ok(1, ",,", "", "", "")}},
		{"one empty quoted field", "\"\"\n", []rec{ok(1, "\"\"", "")}},
		{"quoted comma", "\"a,b\",c\n", []rec{ok(1, "\"a,b\",c", "a,b", "c")}},
		{"escaped quotes", "\"say \"\"hi\"\"\",\"\"\"\"\n", []rec{ok(1, "\"say \"\"hi\"\"\",\"\"\"\"", "say \"hi\"", "\"")}},
		{"quoted newline keeps line numbers", "h\n\"a\nb\nc\",d\nx,y\n", []rec{
			ok(1, "h", "h"), ok(2, "\"a\nb\nc\",d", "a\nb\nc", "d"), ok(5, "x,y", "x", "y")}},
		{"quoted CRLF is kept as is", "\"a\r\nb\",c\r\nx\r\n", []rec{ok(1, "\"a\r\nb\",c", "a\r\nb", "c"), ok(3, "x", "x")}},
		{"quoted blank line", "\"a\n\nb\"\nz\n", []rec{ok(1, "\"a\n\nb\"", "a\n\nb"), ok(4, "z", "z")}},
		{"quoted field then unquoted after newline", "x,\"1\n2\",y,z\n", []rec{ok(1, "x,\"1\n2\",y,z", "x", "1\n2", "y", "z")}},
		{"quoted trailing comma", "\"a\",\n", []rec{ok(1, "\"a\",", "a", "")}},
		{"bare quote in unquoted field", "a,b\"c,d\n1,2\n", []rec{bad(1, "a,b\"c,d", ErrBareQuote), ok(2, "1,2", "1", "2")}},
		{"quote after closing quote", "\"a\"b,c\n1\n", []rec{bad(1, "\"a\"b,c", ErrBareQuote), ok(2, "1", "1")}},
		{"space before quote", "a, \"b\"\n1\n", []rec{bad(1, "a, \"b\"", ErrBareQuote), ok(2, "1", "1")}},
		{"unterminated quote in the middle", "h1,h2\n1,2\n3,\"4\n5,6\n7,8\n", []rec{
			ok(1, "h1,h2", "h1", "h2"), ok(2, "1,2", "1", "2"), bad(3, "3,\"4", ErrUnterminatedQuote),
			ok(4, "5,6", "5", "6"), ok(5, "7,8", "7", "8")}},
		{"unterminated quote, CRLF, no final newline", "a\r\n\"b\r\nc,d\r\n\r\ne", []rec{
			ok(1, "a", "a"), bad(2, "\"b", ErrUnterminatedQuote), ok(3, "c,d", "c", "d"), ok(5, "e", "e")}},
		{"unterminated quote on the last line", "a\n\"b", []rec{ok(1, "a", "a"), bad(2, "\"b", ErrUnterminatedQuote)}},
		{"two unterminated quotes", "\"a\nb\n\"c\nd\n", []rec{
			// The second quote closes the first field, so the record is lines 1-3 and
			// what follows the closing quote is a bare quote.
			bad(1, "\"a\nb\n\"c", ErrBareQuote), ok(4, "d", "d")}},
		{"record too long, the next one parses", "h\n" + long + "\nx,y\n", []rec{
			ok(1, "h", "h"), bad(2, long[:DefaultMaxRecordBytes], ErrRecordTooLong), ok(3, "x,y", "x", "y")}},
		{"too long field without any line end", "h\n" + long, []rec{ok(1, "h", "h"), bad(2, long[:DefaultMaxRecordBytes], ErrRecordTooLong)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, tc.in)
			equalRecs(t, got, tc.want)
			// The same records whatever the chunking of the underlying reader.
			got2, _ := readAllFrom(t, iotest.OneByteReader(strings.NewReader(tc.in)), 0)
			equalRecs(t, got2, tc.want)
		})
	}
}

func TestReaderLineCountAtEOF(t *testing.T) {
	for _, in := range []string{"", "a", "a\n", "a\n\n", "a\r\n\"b\nc\"\nd", "\"open\nx\ny"} {
		_, r := readAllFrom(t, strings.NewReader(in), 0)
		want := int64(strings.Count(in, "\n"))
		if in != "" && !strings.HasSuffix(in, "\n") {
			want++
		}
		if r.Line() != want {
			t.Errorf("%q: Line() = %d at EOF, want %d", in, r.Line(), want)
		}
		// EOF is sticky.
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("%q: second Next after EOF = %v", in, err)
		}
	}
}

func TestReaderHugeQuotedFieldOverCap(t *testing.T) {
	// A quoted field that grows past the cap over several lines is reported at its first
	// line, and every later line is read again on its own: none is lost, none shifts.
	in := "\"aaaa\nbbbb\ncccc\",x\nnext,row\n"
	got, _ := readAllFrom(t, strings.NewReader(in), 10)
	equalRecs(t, got, []rec{
		bad(1, "\"aaaa", ErrUnterminatedQuote),
		ok(2, "bbbb", "bbbb"),
		bad(3, "cccc\",x", ErrBareQuote),
		ok(4, "next,row", "next", "row"),
	})
}

func TestReaderTooLongLineInsideOpenQuote(t *testing.T) {
	// An open quote runs into a line longer than the cap: that line is a record of its
	// own (too long), never a truncated "valid" record, and the lines after it keep
	// their numbers.
	long := "1,2," + strings.Repeat("z", 50)
	in := "h\n3,\"4\n" + long + "\n5,6\n"
	got, _ := readAllFrom(t, strings.NewReader(in), 20)
	equalRecs(t, got, []rec{
		ok(1, "h", "h"),
		bad(2, "3,\"4", ErrUnterminatedQuote),
		bad(3, long[:20], ErrRecordTooLong),
		ok(4, "5,6", "5", "6"),
	})
}

func TestReaderDefaultCapHugeQuotedField(t *testing.T) {
	// A single quoted field larger than DefaultMaxRecordBytes on one line.
	huge := strings.Repeat("y", DefaultMaxRecordBytes)
	in := "a,\"" + huge + "\"\nb,c\n"
	got := readAll(t, in)
	if len(got) != 2 || !errors.Is(got[0].Err, ErrRecordTooLong) || got[0].Line != 1 {
		t.Fatalf("first record: %+v", got[0].Err)
	}
	if len(got[0].Raw) > DefaultMaxRecordBytes {
		t.Errorf("raw of %d bytes exceeds the cap", len(got[0].Raw))
	}
	equalRecs(t, got[1:], []rec{ok(2, "b,c", "b", "c")})
	// Just under the cap is fine.
	field := strings.Repeat("y", DefaultMaxRecordBytes-10)
	got = readAll(t, "\""+field+"\",z\nq\n")
	equalRecs(t, got, []rec{ok(1, "\""+field+"\",z", field, "z"), ok(2, "q", "q")})
}

func TestReaderMaxBytesBoundary(t *testing.T) {
	// The cap counts the line end: "abcd\n" is 5 bytes.
	got, _ := readAllFrom(t, strings.NewReader("abcd\nabcde\nx\n"), 5)
	equalRecs(t, got, []rec{ok(1, "abcd", "abcd"), bad(2, "abcde", ErrRecordTooLong), ok(3, "x", "x")})
}

func TestReaderUnderlyingError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := NewReader(io.MultiReader(strings.NewReader("a,b\n"), iotest.ErrReader(boom)))
	if rec, err := r.Next(); err != nil || rec.Line != 1 {
		t.Fatalf("first record: %v %v", rec, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("want the reader's error, got %v", err)
	}
	// Inside an open quote too.
	r = NewReader(io.MultiReader(strings.NewReader("\"a\n"), iotest.ErrReader(boom)))
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("want the reader's error inside a quote, got %v", err)
	}
}

func TestReaderManyRecordsConstantBuffers(t *testing.T) {
	var b bytes.Buffer
	for i := 0; i < 10000; i++ {
		b.WriteString("abc,\"d,e\",f\n")
	}
	r := NewReader(&b)
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil || rec.Err != nil || len(rec.Fields) != 3 || string(rec.Fields[1]) != "d,e" {
			t.Fatalf("record %d: %v %v", n, err, rec.Err)
		}
		n++
		if rec.Line != int64(n) {
			t.Fatalf("line %d, want %d", rec.Line, n)
		}
	}
	if n != 10000 {
		t.Fatalf("%d records", n)
	}
}
