// Package event is the shop event of the CSV contract: its columns, the rules a row must
// meet, and the stable reason codes of a rejection.
package event

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is one accepted row.
type Event struct {
	EventID    [16]byte
	EventTime  time.Time
	EventType  string
	UserID     int64
	SessionID  [16]byte
	ProductID  int64
	Category   string
	PriceCents int64 // price in hundredths: the contract allows at most 2 decimals
	Quantity   int32
}

// Event types of the contract.
const (
	View           = "view"
	AddToCart      = "add_to_cart"
	RemoveFromCart = "remove_from_cart"
	Purchase       = "purchase"
)

// Types lists the event types in funnel order.
var Types = []string{View, AddToCart, RemoveFromCart, Purchase}

// Columns of the contract, in the order the generator writes them.
var Columns = []string{"event_id", "event_time", "event_type", "user_id", "session_id",
	"product_id", "category", "price", "quantity"}

// Positions of the columns in Columns (the order the generator writes them).
const (
	ColEventID = iota
	ColEventTime
	ColEventType
	ColUserID
	ColSessionID
	ColProductID
	ColCategory
	ColPrice
	ColQuantity
	NumColumns
)

// Limits of the contract.
const (
	MaxCategoryRunes = 64
	MaxPriceCents    = 1_000_000*100 - 1
	MaxFuture        = 24 * time.Hour
)

// Reason codes: stable, machine-readable, stored in rejected_records.reason.
const (
	ReasonWrongFieldCount = "wrong_field_count"
	ReasonBadEncoding     = "bad_encoding"
	ReasonBadEventID      = "bad_event_id"
	ReasonBadEventTime    = "bad_event_time"
	ReasonFutureEventTime = "future_event_time"
	ReasonBadEventType    = "bad_event_type"
	ReasonBadUserID       = "bad_user_id"
	ReasonBadSessionID    = "bad_session_id"
	ReasonBadProductID    = "bad_product_id"
	ReasonBadCategory     = "bad_category"
	ReasonBadPrice        = "bad_price"
	ReasonBadQuantity     = "bad_quantity"
	ReasonBadQuote        = "bad_quote"
	ReasonUnterminated    = "unterminated_quote"
	ReasonRecordTooLong   = "record_too_long"
	ReasonMissingColumns  = "missing_columns"
	ReasonDuplicateColumn = "duplicate_column"
	ReasonEmptyFile       = "empty_file"
	ReasonUnreadable      = "unreadable"
	ReasonHeaderNotCSV    = "not_csv"
	ReasonHeaderBadEncode = "bad_header_encoding"
	ReasonBadFileName     = "bad_file_name"
)

// Rejection says why a row (or a file) was not accepted.
type Rejection struct {
	Reason  string // one of the Reason codes
	Message string // for a person: which field and what was wrong
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Message }

func reject(reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Header maps the contract's columns to their positions in a file (order is free).
type Header struct {
	pos   [NumColumns]int
	n     int
	Extra []string // columns the contract does not know; ignored
}

// ParseHeader reads a header record. A missing required column rejects the file.
func ParseHeader(fields [][]byte) (Header, *Rejection) {
	var h Header
	for i := range h.pos {
		h.pos[i] = -1
	}
	h.n = len(fields)
	for i, f := range fields {
		if !utf8.Valid(f) {
			return h, reject(ReasonHeaderBadEncode, "header field %d is not UTF-8", i+1)
		}
		name := string(bytes.TrimSpace(f))
		known := false
		for c, col := range Columns {
			if name == col {
				if h.pos[c] >= 0 {
					return h, reject(ReasonDuplicateColumn, "column %q appears twice in the header", name)
				}
				h.pos[c], known = i, true
			}
		}
		if !known {
			h.Extra = append(h.Extra, name)
		}
	}
	var missing []string
	for c, p := range h.pos {
		if p < 0 {
			missing = append(missing, Columns[c])
		}
	}
	if len(missing) == len(Columns) {
		return h, reject(ReasonHeaderNotCSV, "the first line is not a header of the event CSV (none of the columns %v)", Columns)
	}
	if len(missing) > 0 {
		return h, reject(ReasonMissingColumns, "required columns missing from the header: %v", missing)
	}
	return h, nil
}

// Width is the number of fields every record must have.
func (h *Header) Width() int { return h.n }

// Parse validates one record's fields against the contract. now bounds event_time
// (at most MaxFuture ahead). intern, if not nil, returns a shared string for a category
// (categories repeat, so a row need not allocate one).
func (h *Header) Parse(fields [][]byte, now time.Time, intern func([]byte) string) (Event, *Rejection) {
	var e Event
	if len(fields) != h.n {
		return e, reject(ReasonWrongFieldCount, "%d fields, the header has %d", len(fields), h.n)
	}
	// The contract's columns only (an extra column is ignored, whatever its bytes); NUL
	// is valid UTF-8 but PostgreSQL text cannot hold it.
	for _, p := range h.pos {
		if f := fields[p]; !asciiNoNUL(f) && (!utf8.Valid(f) || bytes.IndexByte(f, 0) >= 0) {
			return e, reject(ReasonBadEncoding, "field %d is not valid UTF-8 (or holds NUL)", p+1)
		}
	}
	f := func(c int) []byte { return fields[h.pos[c]] }
	var ok bool
	if e.EventID, ok = ParseUUID(f(ColEventID)); !ok {
		return e, reject(ReasonBadEventID, "event_id %q is not a UUID", clip(f(ColEventID)))
	}
	t, err := time.Parse(time.RFC3339Nano, string(f(ColEventTime)))
	if err != nil {
		return e, reject(ReasonBadEventTime, "event_time %q is not an RFC 3339 timestamp", clip(f(ColEventTime)))
	}
	if t.Sub(now) > MaxFuture {
		return e, reject(ReasonFutureEventTime, "event_time %s is more than 24h in the future", t.Format(time.RFC3339))
	}
	e.EventTime = t
	if e.EventType, ok = eventType(f(ColEventType)); !ok {
		return e, reject(ReasonBadEventType, "event_type %q is not one of view, add_to_cart, remove_from_cart, purchase", clip(f(ColEventType)))
	}
	if e.UserID, ok = positive(f(ColUserID)); !ok {
		return e, reject(ReasonBadUserID, "user_id %q is not an integer > 0", clip(f(ColUserID)))
	}
	if e.SessionID, ok = ParseUUID(f(ColSessionID)); !ok {
		return e, reject(ReasonBadSessionID, "session_id %q is not a UUID", clip(f(ColSessionID)))
	}
	if e.ProductID, ok = positive(f(ColProductID)); !ok {
		return e, reject(ReasonBadProductID, "product_id %q is not an integer > 0", clip(f(ColProductID)))
	}
	cat := f(ColCategory)
	if n := utf8.RuneCount(cat); n == 0 || n > MaxCategoryRunes {
		return e, reject(ReasonBadCategory, "category must be 1 to %d characters, got %d", MaxCategoryRunes, n)
	}
	if intern != nil {
		e.Category = intern(cat)
	} else {
		e.Category = string(cat)
	}
	if e.PriceCents, ok = ParsePrice(f(ColPrice)); !ok {
		return e, reject(ReasonBadPrice, "price %q must be a decimal >= 0 and < 1000000 with at most 2 decimals", clip(f(ColPrice)))
	}
	q, ok := positive(f(ColQuantity))
	if !ok || q > 1<<31-1 {
		return e, reject(ReasonBadQuantity, "quantity %q is not an integer >= 1", clip(f(ColQuantity)))
	}
	e.Quantity = int32(q)
	return e, nil
}

// clip keeps messages short when a field is huge.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func eventType(b []byte) (string, bool) {
	for _, t := range Types {
		if string(b) == t {
			return t, true
		}
	}
	return "", false
}

// positive parses a decimal integer > 0 that fits a bigint, without allocating.
func positive(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, n > 0
}

// ParsePrice reads a decimal with at most 2 places, >= 0 and < 1,000,000, as cents.
func ParsePrice(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var whole, frac int64
	i := 0
	for ; i < len(b) && b[i] != '.'; i++ {
		c := b[i]
		if c < '0' || c > '9' || i >= 7 {
			return 0, false
		}
		whole = whole*10 + int64(c-'0')
	}
	if i == 0 {
		return 0, false
	}
	if i < len(b) { // b[i] == '.'
		digits := b[i+1:]
		if len(digits) == 0 || len(digits) > 2 {
			return 0, false
		}
		for _, c := range digits {
			if c < '0' || c > '9' {
				return 0, false
			}
			frac = frac*10 + int64(c-'0')
		}
		if len(digits) == 1 {
			frac *= 10
		}
	}
	cents := whole*100 + frac
	return cents, cents <= MaxPriceCents
}

// ParseUUID reads the canonical 8-4-4-4-12 hex form (either case).
func ParseUUID(b []byte) ([16]byte, bool) {
	var u [16]byte
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return u, false
	}
	// One table lookup per digit and one test at the end: this runs twice per row.
	var bad byte
	for j, i := range uuidDigits {
		hi, lo := hexValue[b[i]], hexValue[b[i+1]]
		bad |= hi | lo
		u[j] = hi<<4 | lo
	}
	if bad == notHex {
		return parseUUIDSlow(b)
	}
	return u, true
}

// uuidDigits are the offsets of the 16 hex pairs in the canonical form.
var uuidDigits = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// notHex marks a byte that is not a hex digit in hexValue; or-ed with any digit's value
// it stays notHex, so one comparison checks all 32 digits.
const notHex = 0xff

var hexValue = func() (t [256]byte) {
	for c := range t {
		v, ok := unhex(byte(c))
		t[c] = v
		if !ok {
			t[c] = notHex
		}
	}
	return t
}()

// parseUUIDSlow is ParseUUID digit by digit; for a rejected UUID it returns the bytes
// read up to the first bad digit, as ParseUUID always did.
func parseUUIDSlow(b []byte) ([16]byte, bool) {
	var u [16]byte
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(b[i])
		lo, ok2 := unhex(b[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

// asciiNoNUL reports whether b is ASCII without NUL, eight bytes at a time: true for
// nearly every field, which then needs neither utf8.Valid nor a search for NUL.
func asciiNoNUL(b []byte) bool {
	const hi, lo = 0x8080808080808080, 0x0101010101010101
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		// (w-lo)&^w&hi is non-zero exactly when some byte of w is zero.
		if w&hi != 0 || (w-lo)&^w&hi != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// AppendUUID writes u in canonical lower-case form.
func AppendUUID(dst []byte, u [16]byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return append(dst, buf[:]...)
}

// AppendPrice writes cents as a decimal with 2 places.
func AppendPrice(dst []byte, cents int64) []byte {
	dst = strconv.AppendInt(dst, cents/100, 10)
	c := cents % 100
	return append(dst, '.', byte('0'+c/10), byte('0'+c%10))
}

// AppendCSV writes e as one record in Columns order, LF-terminated, quoting the
// category when it needs it.
func AppendCSV(dst []byte, e *Event) []byte {
	dst = AppendUUID(dst, e.EventID)
	dst = append(dst, ',')
	t := e.EventTime
	if _, off := t.Zone(); off%60 != 0 {
		t = t.UTC() // RFC 3339 offsets have no seconds: written as is, the instant would move
	}
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, ',')
	dst = append(dst, e.EventType...)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, e.UserID, 10)
	dst = append(dst, ',')
	dst = AppendUUID(dst, e.SessionID)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, e.ProductID, 10)
	dst = append(dst, ',')
	dst = AppendField(dst, e.Category)
	dst = append(dst, ',')
	dst = AppendPrice(dst, e.PriceCents)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(e.Quantity), 10)
	return append(dst, '\n')
}

// AppendField writes s as a CSV field, quoted when it holds a comma, quote or line end.
func AppendField(dst []byte, s string) []byte {
	needs := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			needs = true
			break
		}
	}
	if !needs {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// HeaderLine is the header the generator writes.
func HeaderLine() []byte {
	var b []byte
	for i, c := range Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c...)
	}
	return append(b, '\n')
}
