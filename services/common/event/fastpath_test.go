package event

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// The table-driven ParseUUID gives what the digit-by-digit reader gives, value and
// verdict, for every byte at every position of a UUID.
func TestParseUUIDAgreesWithTheDigitByDigitReaderForEveryByte(t *testing.T) {
	valid := []byte("357642a0-BAD3-4886-998a-25716f85d49d")
	for pos := range valid {
		for c := 0; c < 256; c++ {
			b := bytes.Clone(valid)
			b[pos] = byte(c)
			got, gotOK := ParseUUID(b)
			want, wantOK := [16]byte{}, false
			if b[8] == '-' && b[13] == '-' && b[18] == '-' && b[23] == '-' {
				want, wantOK = parseUUIDSlow(b)
			}
			if got != want || gotOK != wantOK {
				t.Fatalf("%q: got %x %v, want %x %v", b, got, gotOK, want, wantOK)
			}
		}
	}
}

// The ASCII fast path of the encoding check accepts a field only when the full check
// (valid UTF-8, no NUL) would, for every byte at every position of fields of every
// length up to three words.
func TestASCIIFastPathAcceptsOnlyWhatTheUTF8CheckAccepts(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := bytes.Repeat([]byte{'a'}, n)
				b[pos] = byte(c)
				fast := asciiNoNUL(b)
				if want := c != 0 && c < 0x80; fast != want {
					t.Fatalf("len %d, byte %#x at %d: asciiNoNUL %v, want %v", n, c, pos, fast, want)
				}
				if fast && (!utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0) {
					t.Fatalf("len %d, byte %#x at %d: fast path accepted a field the full check refuses", n, c, pos)
				}
			}
		}
	}
	if !asciiNoNUL(nil) {
		t.Error("an empty field is clean")
	}
}
