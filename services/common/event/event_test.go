package event

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/csvcodec"
)

var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// validRow is one good row by column name.
func validRow() map[string]string {
	return map[string]string{
		"event_id":   "0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11",
		"event_time": "2024-05-01T11:59:59.123Z",
		"event_type": "add_to_cart",
		"user_id":    "42",
		"session_id": "9f0e1d2c-3b4a-4958-8675-a4b3c2d1e0f9",
		"product_id": "7",
		"category":   "books",
		"price":      "19.99",
		"quantity":   "2",
	}
}

func fieldsOf(cols []string, row map[string]string) [][]byte {
	out := make([][]byte, len(cols))
	for i, c := range cols {
		out[i] = []byte(row[strings.TrimSpace(c)])
	}
	return out
}

func contractHeader(t testing.TB) Header {
	t.Helper()
	h, rej := ParseHeader(fieldsOf(Columns, map[string]string{
		"event_id": "event_id", "event_time": "event_time", "event_type": "event_type", "user_id": "user_id",
		"session_id": "session_id", "product_id": "product_id", "category": "category", "price": "price", "quantity": "quantity",
	}))
	if rej != nil {
		t.Fatalf("contract header rejected: %v", rej)
	}
	return h
}

func headerFields(cols ...string) [][]byte {
	out := make([][]byte, len(cols))
	for i, c := range cols {
		out[i] = []byte(c)
	}
	return out
}

// parseWith sets one column of a valid row and parses it.
func parseWith(t *testing.T, col, value string) (Event, *Rejection) {
	t.Helper()
	h := contractHeader(t)
	row := validRow()
	row[col] = value
	return h.Parse(fieldsOf(Columns, row), now, nil)
}

func TestParseValidRow(t *testing.T) {
	h := contractHeader(t)
	e, rej := h.Parse(fieldsOf(Columns, validRow()), now, nil)
	if rej != nil {
		t.Fatalf("valid row rejected: %v", rej)
	}
	wantID, _ := ParseUUID([]byte("0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11"))
	want := Event{
		EventID: wantID, EventTime: time.Date(2024, 5, 1, 11, 59, 59, 123e6, time.UTC), EventType: AddToCart,
		UserID: 42, ProductID: 7, Category: "books", PriceCents: 1999, Quantity: 2,
	}
	want.SessionID, _ = ParseUUID([]byte("9f0e1d2c-3b4a-4958-8675-a4b3c2d1e0f9"))
	if !e.EventTime.Equal(want.EventTime) {
		t.Errorf("event_time %v, want %v", e.EventTime, want.EventTime)
	}
	e.EventTime = want.EventTime
	if e != want {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
	if got := string(AppendUUID(nil, e.EventID)); got != "0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11" {
		t.Errorf("AppendUUID = %s", got)
	}
}

// TestParseRules covers every rule of the contract with its reason code and boundaries.
func TestParseRules(t *testing.T) {
	cat64 := strings.Repeat("é", 64) // 64 characters, 128 bytes
	cat65 := strings.Repeat("é", 65)
	tests := []struct {
		col, value string
		reason     string // "" means accepted
	}{
		// event_id / session_id
		{"event_id", "0B7E7B38-6D1E-4C55-9A8D-2F1E6B0B8C11", ""},
		{"event_id", "0b7e7b38-6D1E-4c55-9a8d-2f1e6b0b8c11", ""},
		{"event_id", "{0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11}", ReasonBadEventID},
		{"event_id", "urn:uuid:0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11", ReasonBadEventID},
		{"event_id", "0b7e7b386d1e4c559a8d2f1e6b0b8c11", ReasonBadEventID},
		{"event_id", "0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c1g", ReasonBadEventID},
		{"event_id", "0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c1", ReasonBadEventID},
		{"event_id", "0b7e7b3-86d1e-4c55-9a8d-2f1e6b0b8c11", ReasonBadEventID},
		{"event_id", " 0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c1", ReasonBadEventID},
		{"event_id", "", ReasonBadEventID},
		{"session_id", "9F0E1D2C-3B4A-4958-8675-A4B3C2D1E0F9", ""},
		{"session_id", "{9f0e1d2c-3b4a-4958-8675-a4b3c2d1e0f9}", ReasonBadSessionID},
		{"session_id", "", ReasonBadSessionID},
		// event_time
		{"event_time", "2024-05-01T12:00:00Z", ""},
		{"event_time", "2024-05-02T12:00:00Z", ""},                    // exactly 24 h ahead
		{"event_time", "2024-05-02T12:00:01Z", ReasonFutureEventTime}, // 24 h + 1 s
		{"event_time", "2024-05-02T12:00:00.000000001Z", ReasonFutureEventTime},
		{"event_time", "2024-05-02T14:00:00+02:00", ""}, // = 12:00Z, exactly 24 h
		{"event_time", "2024-05-02T14:00:01+02:00", ReasonFutureEventTime},
		{"event_time", "2024-05-02T07:30:00-04:30", ""},
		{"event_time", "2024-05-02T07:30:01-04:30", ReasonFutureEventTime},
		{"event_time", "2024-05-01T12:00:00.123456789+05:30", ""},
		{"event_time", "2024-05-01T12:00:00.5-00:00", ""},
		{"event_time", "1999-12-31T23:59:59Z", ""},
		{"event_time", "2024-05-01 12:00:00Z", ReasonBadEventTime},
		{"event_time", "2024-05-01T12:00:00", ReasonBadEventTime}, // no offset
		{"event_time", "2024-05-01", ReasonBadEventTime},
		{"event_time", "2024-02-30T00:00:00Z", ReasonBadEventTime},
		{"event_time", "2024-05-01T24:00:00Z", ReasonBadEventTime},
		{"event_time", "1714564800", ReasonBadEventTime},
		{"event_time", "", ReasonBadEventTime},
		// event_type
		{"event_type", "view", ""},
		{"event_type", "add_to_cart", ""},
		{"event_type", "remove_from_cart", ""},
		{"event_type", "purchase", ""},
		{"event_type", "View", ReasonBadEventType},
		{"event_type", "view ", ReasonBadEventType},
		{"event_type", "refund", ReasonBadEventType},
		{"event_type", "", ReasonBadEventType},
		// user_id / product_id
		{"user_id", "1", ""},
		{"user_id", "0", ReasonBadUserID},
		{"user_id", "-1", ReasonBadUserID},
		{"user_id", "+1", ReasonBadUserID},
		{"user_id", "1.0", ReasonBadUserID},
		{"user_id", " 1", ReasonBadUserID},
		{"user_id", "1e3", ReasonBadUserID},
		{"user_id", "", ReasonBadUserID},
		{"user_id", "9223372036854775807", ""}, // the largest bigint
		{"user_id", "9223372036854775808", ReasonBadUserID},
		{"user_id", "99999999999999999999", ReasonBadUserID},
		{"product_id", "1", ""},
		{"product_id", "0", ReasonBadProductID},
		{"product_id", "-5", ReasonBadProductID},
		{"product_id", "x", ReasonBadProductID},
		{"product_id", "1000000000000000000", ""},
		// category
		{"category", "a", ""},
		{"category", cat64, ""},
		{"category", cat65, ReasonBadCategory},
		{"category", strings.Repeat("x", 64), ""},
		{"category", strings.Repeat("x", 65), ReasonBadCategory},
		{"category", strings.Repeat("日", 64), ""}, // 192 bytes
		{"category", "", ReasonBadCategory},
		{"category", "home, garden \"outdoor\"\nline", ""},
		// price
		{"price", "0", ""},
		{"price", "0.00", ""},
		{"price", "9.9", ""},
		{"price", "999999.99", ""},
		{"price", "1000000.00", ReasonBadPrice},
		{"price", "1000000", ReasonBadPrice},
		{"price", "1.234", ReasonBadPrice},
		{"price", "-1", ReasonBadPrice},
		{"price", "-0.01", ReasonBadPrice},
		{"price", "1.", ReasonBadPrice},
		{"price", ".5", ReasonBadPrice},
		{"price", "1,5", ReasonBadPrice},
		{"price", "1e2", ReasonBadPrice},
		{"price", "+1", ReasonBadPrice},
		{"price", " 1", ReasonBadPrice},
		{"price", "1.2.3", ReasonBadPrice},
		{"price", "", ReasonBadPrice},
		{"price", "NaN", ReasonBadPrice},
		// quantity
		{"quantity", "1", ""},
		{"quantity", "0", ReasonBadQuantity},
		{"quantity", "-1", ReasonBadQuantity},
		{"quantity", "1.5", ReasonBadQuantity},
		{"quantity", "2147483647", ""},
		{"quantity", "2147483648", ReasonBadQuantity},
		{"quantity", "", ReasonBadQuantity},
		// encoding: any field, checked before the field's own rule
		{"category", "caf\xe9", ReasonBadEncoding},
		{"category", "a\xff", ReasonBadEncoding},
		{"category", "\xed\xa0\x80", ReasonBadEncoding}, // a UTF-16 surrogate
		{"category", "a\x00b", ReasonBadEncoding},       // PostgreSQL text cannot hold NUL
		{"event_type", "vi\xc3", ReasonBadEncoding},
		{"quantity", "\xff", ReasonBadEncoding},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s=%q", tc.col, tc.value), func(t *testing.T) {
			_, rej := parseWith(t, tc.col, tc.value)
			switch {
			case tc.reason == "" && rej != nil:
				t.Errorf("rejected: %v", rej)
			case tc.reason != "" && rej == nil:
				t.Errorf("accepted, want %s", tc.reason)
			case tc.reason != "" && rej.Reason != tc.reason:
				t.Errorf("reason %s (%s), want %s", rej.Reason, rej.Message, tc.reason)
			}
			if rej != nil && (rej.Message == "" || !strings.HasPrefix(rej.Error(), rej.Reason+": ")) {
				t.Errorf("rejection without a message: %#v", rej)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct {
		price string
		cents int64
	}{{"0", 0}, {"0.01", 1}, {"9.9", 990}, {"10.09", 1009}, {"999999.99", 99999999}, {"007", 700}} {
		e, rej := parseWith(t, "price", tc.price)
		if rej != nil || e.PriceCents != tc.cents {
			t.Errorf("price %q: %d cents (%v), want %d", tc.price, e.PriceCents, rej, tc.cents)
		}
		if got, ok := ParsePrice([]byte(tc.price)); !ok || got != tc.cents {
			t.Errorf("ParsePrice(%q) = %d %v", tc.price, got, ok)
		}
	}
	e, _ := parseWith(t, "event_time", "2024-05-01T14:00:00.123456789+02:00")
	if want := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC); !e.EventTime.Equal(want) {
		t.Errorf("event_time %v, want %v", e.EventTime, want)
	}
	e, _ = parseWith(t, "event_id", "0B7E7B38-6D1E-4C55-9A8D-2F1E6B0B8C11")
	if got := string(AppendUUID(nil, e.EventID)); got != "0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11" {
		t.Errorf("upper-case UUID read as %s", got)
	}
	e, _ = parseWith(t, "quantity", "2147483647")
	if e.Quantity != math.MaxInt32 {
		t.Errorf("quantity %d", e.Quantity)
	}
	e, _ = parseWith(t, "user_id", "9223372036854775807")
	if e.UserID != math.MaxInt64 {
		t.Errorf("user_id %d", e.UserID)
	}
	for _, p := range []string{"1.", "1.234", "-1", "1000000.00", ""} {
		if _, ok := ParsePrice([]byte(p)); ok {
			t.Errorf("ParsePrice(%q) accepted", p)
		}
	}
}

func TestParseIntern(t *testing.T) {
	h := contractHeader(t)
	calls := 0
	intern := func(b []byte) string { calls++; return "interned:" + string(b) }
	e, rej := h.Parse(fieldsOf(Columns, validRow()), now, intern)
	if rej != nil || e.Category != "interned:books" || calls != 1 {
		t.Fatalf("category %q, %d calls, %v", e.Category, calls, rej)
	}
}

func TestParseWrongFieldCount(t *testing.T) {
	h := contractHeader(t)
	f := fieldsOf(Columns, validRow())
	for _, fields := range [][][]byte{f[:8], append(f[:9:9], []byte("extra")), nil, {[]byte("")}} {
		if _, rej := h.Parse(fields, now, nil); rej == nil || rej.Reason != ReasonWrongFieldCount {
			t.Errorf("%d fields: %v", len(fields), rej)
		}
	}
	if h.Width() != len(Columns) {
		t.Errorf("Width %d", h.Width())
	}
}

func TestParseHeader(t *testing.T) {
	// Reordered columns and extra ones: matched by name, extras listed and ignored.
	cols := []string{"quantity", "note", "price", "category", "product_id", "session_id", "user_id", "event_type", "event_time", " source ", "event_id"}
	h, rej := ParseHeader(headerFields(cols...))
	if rej != nil {
		t.Fatalf("rejected: %v", rej)
	}
	if strings.Join(h.Extra, "|") != "note|source" {
		t.Errorf("Extra = %q", h.Extra)
	}
	if h.Width() != len(cols) {
		t.Errorf("Width %d", h.Width())
	}
	row := validRow()
	row["note"], row["source"] = "ignored, whatever", "caf\xe9" // an ignored column is not validated
	e, rej := h.Parse(fieldsOf(cols, row), now, nil)
	if rej != nil {
		t.Fatalf("row rejected: %v", rej)
	}
	if e.UserID != 42 || e.ProductID != 7 || e.Quantity != 2 || e.PriceCents != 1999 || e.Category != "books" || e.EventType != AddToCart {
		t.Errorf("columns mixed up: %+v", e)
	}
	// A rule still applies under a reordered header.
	row["quantity"] = "0"
	if _, rej := h.Parse(fieldsOf(cols, row), now, nil); rej == nil || rej.Reason != ReasonBadQuantity {
		t.Errorf("quantity 0 under a reordered header: %v", rej)
	}

	for _, tc := range []struct {
		name   string
		cols   []string
		reason string
	}{
		{"contract order", Columns, ""},
		{"names with spaces around", append([]string{" event_id"}, Columns[1:]...), ""},
		{"missing price", without(Columns, "price"), ReasonMissingColumns},
		{"missing two", without(without(Columns, "price"), "event_id"), ReasonMissingColumns},
		{"only one column", []string{"event_id"}, ReasonMissingColumns},
		{"upper-case names", upper(Columns), ReasonHeaderNotCSV},
		{"a data row as header", []string{"0b7e7b38-6d1e-4c55-9a8d-2f1e6b0b8c11", "2024-05-01T12:00:00Z", "view"}, ReasonHeaderNotCSV},
		{"one empty field", []string{""}, ReasonHeaderNotCSV},
		{"duplicate column", append(append([]string{}, Columns...), "price"), ReasonDuplicateColumn},
		{"non-UTF-8 name", append(append([]string{}, Columns...), "caf\xe9"), ReasonHeaderBadEncode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rej := ParseHeader(headerFields(tc.cols...))
			if tc.reason == "" {
				if rej != nil {
					t.Fatalf("rejected: %v", rej)
				}
				if _, rej := h.Parse(fieldsOf(tc.cols, validRow()), now, nil); rej != nil {
					t.Errorf("row rejected: %v", rej)
				}
				return
			}
			if rej == nil || rej.Reason != tc.reason {
				t.Fatalf("got %v, want %s", rej, tc.reason)
			}
			if tc.reason == ReasonMissingColumns && !strings.Contains(rej.Message, "price") && !strings.Contains(rej.Message, "event_time") {
				t.Errorf("message does not name the missing column: %s", rej.Message)
			}
		})
	}
}

func without(cols []string, drop string) []string {
	var out []string
	for _, c := range cols {
		if c != drop {
			out = append(out, c)
		}
	}
	return out
}

func upper(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = strings.ToUpper(c)
	}
	return out
}

func TestHeaderLine(t *testing.T) {
	if got := string(HeaderLine()); got != strings.Join(Columns, ",")+"\n" {
		t.Errorf("HeaderLine = %q", got)
	}
}

// outcome is what becomes of one record of a file: an event or a rejection reason.
type outcome struct {
	line   int64
	reason string
	event  Event
}

// readFile runs a whole file through the codec and the validation, the way the
// ingester does: the header, then each record.
func readFile(t testing.TB, in string) (Header, *Rejection, []outcome) {
	t.Helper()
	r := csvcodec.NewReader(strings.NewReader(in))
	rec, err := r.Next()
	if err == io.EOF {
		return Header{}, &Rejection{Reason: ReasonEmptyFile}, nil
	}
	if err != nil || rec.Err != nil {
		t.Fatalf("header: %v %v", err, rec.Err)
	}
	h, rej := ParseHeader(rec.Fields)
	if rej != nil {
		return h, rej, nil
	}
	var out []outcome
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return h, nil, out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case errors.Is(rec.Err, csvcodec.ErrBareQuote):
			out = append(out, outcome{line: rec.Line, reason: ReasonBadQuote})
		case errors.Is(rec.Err, csvcodec.ErrUnterminatedQuote):
			out = append(out, outcome{line: rec.Line, reason: ReasonUnterminated})
		case errors.Is(rec.Err, csvcodec.ErrRecordTooLong):
			out = append(out, outcome{line: rec.Line, reason: ReasonRecordTooLong})
		case rec.Err != nil:
			t.Fatalf("unknown record error %v", rec.Err)
		default:
			e, rej := h.Parse(rec.Fields, now, nil)
			if rej != nil {
				out = append(out, outcome{line: rec.Line, reason: rej.Reason})
			} else {
				out = append(out, outcome{line: rec.Line, event: e})
			}
		}
	}
}

func csvRow(cols []string, row map[string]string) string {
	var b []byte
	for i, c := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendField(b, row[c])
	}
	return string(append(b, '\n'))
}

func with(col, value string) map[string]string {
	r := validRow()
	r[col] = value
	return r
}

// TestFile runs files through csvcodec and Parse and checks each row's outcome and
// line number.
func TestFile(t *testing.T) {
	hdr := string(HeaderLine())
	good := csvRow(Columns, validRow())
	huge := strings.Repeat("x", csvcodec.DefaultMaxRecordBytes+1)

	t.Run("BOM, CRLF, quoted comma and newline, every kind of bad row", func(t *testing.T) {
		in := "\xef\xbb\xbf" + hdr + // 1
			good + // 2
			csvRow(Columns, with("category", "home, garden")) + // 3
			csvRow(Columns, with("category", "multi\nline \"quoted\"")) + // 4-5
			csvRow(Columns, with("price", "1.234")) + // 6
			"\n" + // 7 blank
			csvRow(Columns, with("category", "caf\xe9")) + // 8
			strings.Replace(good, "books", "bo\"oks", 1) + // 9 bare quote
			strings.Replace(good, "books", "\"books", 1) + // 10 unterminated
			good + // 11
			strings.Replace(good, "books", huge, 1) + // 12 too long
			csvRow(Columns, with("user_id", "0")) + // 13
			strings.TrimSuffix(strings.ReplaceAll(good, "\n", "\r\n"), "\r\n") // 14, no final line end
		_, rej, got := readFile(t, in)
		if rej != nil {
			t.Fatal(rej)
		}
		want := []outcome{{line: 2}, {line: 3}, {line: 4}, {line: 6, reason: ReasonBadPrice}, {line: 8, reason: ReasonBadEncoding},
			{line: 9, reason: ReasonBadQuote}, {line: 10, reason: ReasonUnterminated}, {line: 11}, {line: 12, reason: ReasonRecordTooLong},
			{line: 13, reason: ReasonBadUserID}, {line: 14}}
		checkOutcomes(t, got, want)
		if len(got) == len(want) {
			if got[1].event.Category != "home, garden" || got[2].event.Category != "multi\nline \"quoted\"" {
				t.Errorf("categories %q, %q", got[1].event.Category, got[2].event.Category)
			}
		}
	})
	t.Run("reordered and extra columns", func(t *testing.T) {
		cols := []string{"price", "extra", "event_id", "quantity", "category", "event_type", "session_id", "event_time", "user_id", "product_id"}
		row := validRow()
		row["extra"] = "x,y"
		h, rej, got := readFile(t, strings.Join(cols, ",")+"\r\n"+csvRow(cols, row)+csvRow(cols, with("price", "-1"))+csvRow(Columns, row))
		if rej != nil || strings.Join(h.Extra, ",") != "extra" {
			t.Fatalf("%v %q", rej, h.Extra)
		}
		checkOutcomes(t, got, []outcome{{line: 2}, {line: 3, reason: ReasonBadPrice}, {line: 4, reason: ReasonWrongFieldCount}})
	})
	t.Run("missing column", func(t *testing.T) {
		_, rej, _ := readFile(t, strings.Join(without(Columns, "quantity"), ",")+"\n"+good)
		if rej == nil || rej.Reason != ReasonMissingColumns {
			t.Fatalf("%v", rej)
		}
	})
	t.Run("not CSV of events", func(t *testing.T) {
		_, rej, _ := readFile(t, "hello world\nthis is text\n")
		if rej == nil || rej.Reason != ReasonHeaderNotCSV {
			t.Fatalf("%v", rej)
		}
	})
	t.Run("empty", func(t *testing.T) {
		for _, in := range []string{"", "\xef\xbb\xbf", "\n\n"} {
			if _, rej, _ := readFile(t, in); rej == nil || rej.Reason != ReasonEmptyFile {
				t.Errorf("%q: %v", in, rej)
			}
		}
	})
	t.Run("header only", func(t *testing.T) {
		if _, rej, got := readFile(t, hdr); rej != nil || len(got) != 0 {
			t.Fatalf("%v %v", rej, got)
		}
	})
}

func checkOutcomes(t *testing.T, got, want []outcome) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d outcomes, want %d: %+v", len(got), len(want), got)
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i].line != want[i].line || got[i].reason != want[i].reason {
			t.Errorf("outcome %d: line %d reason %q, want line %d reason %q", i, got[i].line, got[i].reason, want[i].line, want[i].reason)
		}
	}
}

var categoryRunes = []rune("abcxyzABC019 _-,\"\n\r\téü日本語€😀\u00a0\ufeff")

// randomEvent returns a valid event; times lie up to 24 h after now, in zones of any
// offset (sub-minute ones too).
func randomEvent(rng *rand.Rand) Event {
	var e Event
	for i := range e.EventID {
		e.EventID[i] = byte(rng.Uint32())
		e.SessionID[i] = byte(rng.Uint32())
	}
	sec := now.Unix() - rng.Int64N(30*365*86400) + rng.Int64N(86400)
	zone := time.UTC
	switch rng.IntN(4) {
	case 1:
		zone = time.FixedZone("", (rng.IntN(28*4)-14*4)*900)
	case 2:
		zone = time.FixedZone("", rng.IntN(50000)-25000) // like a pre-1900 local mean time
	}
	e.EventTime = time.Unix(sec, rng.Int64N(1e9)).In(zone)
	if rng.IntN(4) == 0 {
		e.EventTime = e.EventTime.Truncate(time.Second)
	}
	e.EventType = Types[rng.IntN(len(Types))]
	e.UserID = 1 + rng.Int64N(math.MaxInt64)
	e.ProductID = 1 + rng.Int64N(1+rng.Int64N(1_000_000))
	n := 1 + rng.IntN(MaxCategoryRunes)
	cat := make([]rune, n)
	for i := range cat {
		cat[i] = categoryRunes[rng.IntN(len(categoryRunes))]
	}
	e.Category = string(cat)
	e.PriceCents = rng.Int64N(MaxPriceCents + 1)
	e.Quantity = 1 + rng.Int32N(math.MaxInt32)
	return e
}

// TestRoundTrip: AppendCSV of random events, then csvcodec + Parse, gives the same events.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var want []Event
	buf := HeaderLine()
	for i := 0; i < 5000; i++ {
		e := randomEvent(rng)
		want = append(want, e)
		buf = AppendCSV(buf, &e)
	}
	// Edge values.
	edge := randomEvent(rng)
	edge.UserID, edge.ProductID, edge.Quantity, edge.PriceCents = math.MaxInt64, 1, math.MaxInt32, MaxPriceCents
	edge.EventTime, edge.Category = now.Add(MaxFuture), strings.Repeat("\"", MaxCategoryRunes)
	want = append(want, edge)
	buf = AppendCSV(buf, &edge)
	edge.PriceCents, edge.Category, edge.EventTime = 0, "\r\n", now.Add(-time.Hour).In(time.FixedZone("LMT", 1172))
	want = append(want, edge)
	buf = AppendCSV(buf, &edge)

	_, rej, got := readFile(t, string(buf))
	if rej != nil {
		t.Fatal(rej)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events read back, %d written", len(got), len(want))
	}
	for i, o := range got {
		w := want[i]
		if o.reason != "" {
			t.Fatalf("event %d (line %d) rejected %s: %q", i, o.line, o.reason, AppendCSV(nil, &w))
		}
		e := o.event
		if !e.EventTime.Equal(w.EventTime) {
			t.Fatalf("event %d: time %v read back as %v (%s)", i, w.EventTime, e.EventTime, AppendCSV(nil, &w))
		}
		e.EventTime = w.EventTime
		if e != w {
			t.Fatalf("event %d:\n wrote %+v\n read  %+v", i, w, e)
		}
	}
}

// BenchmarkParse measures the validation cost per row: 10,000 generated rows through
// csvcodec and Parse.
func BenchmarkParse(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	categories := []string{"books", "electronics", "home, garden", "toys", "beauty", "sports", "grocery", "fashion"}
	const rows = 10_000
	data := HeaderLine()
	for i := 0; i < rows; i++ {
		e := randomEvent(rng)
		e.EventTime = now.Add(-time.Duration(rng.Int64N(int64(time.Hour)))).UTC()
		e.UserID, e.ProductID = 1+rng.Int64N(100_000), 1+rng.Int64N(10_000)
		e.Category = categories[rng.IntN(len(categories))]
		e.PriceCents, e.Quantity = rng.Int64N(100_000), 1+rng.Int32N(5)
		data = AppendCSV(data, &e)
	}
	interned := map[string]string{}
	intern := func(c []byte) string {
		if s, ok := interned[string(c)]; ok {
			return s
		}
		s := string(c)
		interned[s] = s
		return s
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := csvcodec.NewReader(bytes.NewReader(data))
		rec, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		h, rej := ParseHeader(rec.Fields)
		if rej != nil {
			b.Fatal(rej)
		}
		n := 0
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rec.Err != nil {
				b.Fatal(err, rec.Err)
			}
			if _, rej := h.Parse(rec.Fields, now, intern); rej != nil {
				b.Fatal(rej)
			}
			n++
		}
		if n != rows {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
