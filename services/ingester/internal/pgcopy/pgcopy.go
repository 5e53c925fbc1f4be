// Package pgcopy writes PostgreSQL's binary COPY format (COPY ... FROM STDIN (FORMAT
// binary)) for the column types of the events table, appending to a byte slice.
//
// Why not pgx's CopyFrom: it takes every row as []any and encodes each value through
// its type map (an interface dispatch, a plan lookup and, for numeric, big.Int
// arithmetic per value). A row of events is nine fixed types, so writing the wire format
// directly costs a few appends and no allocation; the bytes go to PostgreSQL through
// pgconn.PgConn.CopyFrom, which takes an io.Reader.
//
// The format (PostgreSQL docs, "COPY", Binary Format): a signature and two int32 words,
// then per row an int16 field count and per field an int32 length followed by that many
// bytes in the type's binary send format, then an int16 -1. All integers big-endian.
package pgcopy

import (
	"encoding/binary"
	"fmt"
	"time"
)

// signature starts every binary COPY stream; the two zero int32 words after it are the
// flags field and the header extension length.
const signature = "PGCOPY\n\xff\r\n\x00"

// AppendHeader starts a stream.
func AppendHeader(dst []byte) []byte {
	dst = append(dst, signature...)
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
}

// AppendTrailer ends a stream.
func AppendTrailer(dst []byte) []byte { return append(dst, 0xff, 0xff) }

// AppendRow starts a row of n fields; the n values follow.
func AppendRow(dst []byte, n int) []byte { return binary.BigEndian.AppendUint16(dst, uint16(n)) }

// AppendNull writes a NULL field.
func AppendNull(dst []byte) []byte { return append(dst, 0xff, 0xff, 0xff, 0xff) }

// AppendUUID writes a uuid.
func AppendUUID(dst []byte, u [16]byte) []byte {
	dst = append(dst, 0, 0, 0, 16)
	return append(dst, u[:]...)
}

// AppendText writes text (or varchar); s must be valid UTF-8 without NUL, which
// PostgreSQL checks and refuses otherwise.
func AppendText(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// AppendInt8 writes a bigint.
func AppendInt8(dst []byte, v int64) []byte {
	dst = append(dst, 0, 0, 0, 8)
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}

// AppendInt4 writes an integer.
func AppendInt4(dst []byte, v int32) []byte {
	dst = append(dst, 0, 0, 0, 4)
	return binary.BigEndian.AppendUint32(dst, uint32(v))
}

// pgEpochMicros is 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp origin, in Unix
// microseconds.
const pgEpochMicros = 946684800 * 1_000_000

// AppendTimestamptz writes a timestamptz: microseconds since 2000-01-01 UTC. Sub-
// microsecond digits are truncated toward the past, as pgx's own encoder does.
func AppendTimestamptz(dst []byte, t time.Time) []byte {
	dst = append(dst, 0, 0, 0, 8)
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMicro()-pgEpochMicros))
}

// numeric sign words of the send format.
const (
	numericPos = 0x0000
	numericNeg = 0x4000
)

// pow10 holds 10^0 .. 10^4.
var pow10 = [5]uint64{1, 10, 100, 1000, 10000}

// AppendNumeric writes the numeric unscaled × 10^-scale (e.g. 1250, 2 is 12.50) with
// display scale `scale`, 0 to 4 (the events table's price is numeric(12,2)).
//
// The send format is base-10000 digits: ndigits, weight (the power of 10000 of the
// first digit), sign, dscale, then the digits, with no leading or trailing zero digits
// (zero has none). With scale ≤ 4 the fractional part is one base-10000 digit.
func AppendNumeric(dst []byte, unscaled int64, scale int) ([]byte, error) {
	if scale < 0 || scale > 4 {
		return dst, fmt.Errorf("pgcopy: numeric scale %d is outside 0..4", scale)
	}
	sign := uint16(numericPos)
	mag := uint64(unscaled)
	if unscaled < 0 {
		sign, mag = numericNeg, -mag // two's complement: also right for math.MinInt64
	}
	whole := mag / pow10[scale]
	frac := (mag % pow10[scale]) * pow10[4-scale]

	// Base-10000 digits of the whole part, least significant first; int64 has at most 5.
	var digits [6]uint16
	n := 0
	for w := whole; w > 0; w /= 10000 {
		digits[n] = uint16(w % 10000)
		n++
	}
	weight := n - 1 // -1 when the whole part is zero: the first digit is the fraction's
	// Most significant first: reverse, then add the fraction digit.
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		digits[i], digits[j] = digits[j], digits[i]
	}
	if frac != 0 {
		digits[n] = uint16(frac)
		n++
	}
	// Strip trailing zero digits (a whole part like 10000 has them); weight still places
	// the first digit.
	for n > 0 && digits[n-1] == 0 {
		n--
	}
	if n == 0 {
		weight, sign = 0, numericPos // zero: no digits, weight 0, never negative
	}

	dst = binary.BigEndian.AppendUint32(dst, uint32(8+2*n))
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(scale))
	for _, d := range digits[:n] {
		dst = binary.BigEndian.AppendUint16(dst, d)
	}
	return dst, nil
}
