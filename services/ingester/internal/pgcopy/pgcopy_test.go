package pgcopy

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ecomstream/ecomstream/services/common/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// roundTrip is one value: how to encode it, and PostgreSQL's own text input for it.
type roundTrip struct {
	name   string
	append func([]byte) []byte
	want   string // PostgreSQL's text input of the same value; "" with null
	null   bool
}

func uuidOf(s string) [16]byte {
	var u [16]byte
	if n, err := hex.Decode(u[:], []byte(strings.ReplaceAll(s, "-", ""))); err != nil || n != 16 {
		panic(fmt.Sprintf("uuidOf(%q): %v", s, err))
	}
	return u
}

func numeric(unscaled int64, scale int) func([]byte) []byte {
	return func(dst []byte) []byte {
		out, err := AppendNumeric(dst, unscaled, scale)
		if err != nil {
			panic(err)
		}
		return out
	}
}

func ts(s string) func([]byte) []byte {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return func(dst []byte) []byte { return AppendTimestamptz(dst, t) }
}

// columnCases are edge values of every column type of events, per PostgreSQL type.
var columnCases = map[string][]roundTrip{
	"uuid": {
		{name: "zero", append: func(d []byte) []byte { return AppendUUID(d, [16]byte{}) }, want: "00000000-0000-0000-0000-000000000000"},
		{name: "all ones", append: func(d []byte) []byte { return AppendUUID(d, uuidOf("ffffffff-ffff-ffff-ffff-ffffffffffff")) }, want: "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{name: "v4", append: func(d []byte) []byte { return AppendUUID(d, uuidOf("357642a0-bad3-4886-998a-25716f85d49d")) }, want: "357642a0-bad3-4886-998a-25716f85d49d"},
	},
	"timestamptz": {
		{name: "PostgreSQL epoch", append: ts("2000-01-01T00:00:00Z"), want: "2000-01-01 00:00:00+00"},
		{name: "before the epoch", append: ts("1999-12-31T23:59:59.999999Z"), want: "1999-12-31 23:59:59.999999+00"},
		{name: "unix epoch", append: ts("1970-01-01T00:00:00Z"), want: "1970-01-01 00:00:00+00"},
		{name: "microseconds", append: ts("2026-12-01T21:59:47.147884Z"), want: "2026-12-01 21:59:47.147884+00"},
		{name: "nanoseconds truncate", append: ts("2026-12-01T21:59:47.1478849Z"), want: "2026-12-01 21:59:47.147884+00"},
		{name: "before the epoch, nanoseconds truncate to the past", append: ts("1999-12-31T23:59:59.0000001Z"), want: "1999-12-31 23:59:59+00"},
		{name: "offset zone", append: ts("2026-06-01T12:30:00+05:30"), want: "2026-06-01 07:00:00+00"},
		{name: "far future", append: ts("9999-12-31T23:59:59.999999Z"), want: "9999-12-31 23:59:59.999999+00"},
	},
	"text": {
		{name: "empty", append: func(d []byte) []byte { return AppendText(d, "") }, want: ""},
		{name: "ascii with separators", append: func(d []byte) []byte { return AppendText(d, `office, "products"`+"\t\\\n") }, want: `office, "products"` + "\t\\\n"},
		{name: "multibyte, 64 runes", append: func(d []byte) []byte { return AppendText(d, strings.Repeat("é", 63)+"😀") }, want: strings.Repeat("é", 63) + "😀"},
		{name: "null", append: AppendNull, null: true},
	},
	"bigint": {
		{name: "one", append: func(d []byte) []byte { return AppendInt8(d, 1) }, want: "1"},
		{name: "max", append: func(d []byte) []byte { return AppendInt8(d, math.MaxInt64) }, want: "9223372036854775807"},
		{name: "min", append: func(d []byte) []byte { return AppendInt8(d, math.MinInt64) }, want: "-9223372036854775808"},
	},
	"integer": {
		{name: "one", append: func(d []byte) []byte { return AppendInt4(d, 1) }, want: "1"},
		{name: "max", append: func(d []byte) []byte { return AppendInt4(d, math.MaxInt32) }, want: "2147483647"},
		{name: "min", append: func(d []byte) []byte { return AppendInt4(d, math.MinInt32) }, want: "-2147483648"},
	},
	// numeric keeps its display scale (no typmod here), so the text form checks dscale too.
	"numeric": {
		{name: "zero", append: numeric(0, 2), want: "0.00"},
		{name: "one cent", append: numeric(1, 2), want: "0.01"},
		{name: "ten cents", append: numeric(10, 2), want: "0.10"},
		{name: "one", append: numeric(100, 2), want: "1.00"},
		{name: "price", append: numeric(1250, 2), want: "12.50"},
		{name: "ten thousand (trailing zero digit)", append: numeric(1000000, 2), want: "10000.00"},
		{name: "ten thousand and a cent (zero digit inside)", append: numeric(1000001, 2), want: "10000.01"},
		{name: "largest price", append: numeric(99999999, 2), want: "999999.99"},
		{name: "negative", append: numeric(-1250, 2), want: "-12.50"},
		{name: "negative zero is zero", append: numeric(0, 0), want: "0"},
		{name: "scale 0", append: numeric(123456789, 0), want: "123456789"},
		{name: "scale 1", append: numeric(-5, 1), want: "-0.5"},
		{name: "scale 3", append: numeric(100001, 3), want: "100.001"},
		{name: "scale 4", append: numeric(1, 4), want: "0.0001"},
		{name: "max int64", append: numeric(math.MaxInt64, 2), want: "92233720368547758.07"},
		{name: "min int64", append: numeric(math.MinInt64, 2), want: "-92233720368547758.08"},
	},
}

// TestEveryColumnTypeRoundTripsThroughPostgreSQL copies each value in the binary format
// into a column of its type and checks that PostgreSQL reads the value its own text
// input gives for the expected literal, in the same text form (so numeric's scale too).
func TestEveryColumnTypeRoundTripsThroughPostgreSQL(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	for typ, cases := range columnCases {
		t.Run(typ, func(t *testing.T) {
			table := "rt_" + typ
			if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (k integer, v %s)", table, typ)); err != nil {
				t.Fatal(err)
			}
			buf := AppendHeader(nil)
			for k, c := range cases {
				buf = AppendRow(buf, 2)
				buf = AppendInt4(buf, int32(k))
				buf = c.append(buf)
			}
			buf = AppendTrailer(buf)
			tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY "+table+" (k, v) FROM STDIN (FORMAT binary)")
			if err != nil {
				t.Fatal(err)
			}
			if tag.RowsAffected() != int64(len(cases)) {
				t.Fatalf("copied %d rows, want %d", tag.RowsAffected(), len(cases))
			}
			for k, c := range cases {
				var same bool
				var got, want *string
				err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT v IS NOT DISTINCT FROM $2::text::%[2]s, v::text, $2::text::%[2]s::text
					FROM %[1]s WHERE k = $1`, table, typ), k, nullable(c)).Scan(&same, &got, &want)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if !same || (got == nil) != (want == nil) || (got != nil && *got != *want) {
					t.Errorf("%s: PostgreSQL read %v, want %v", c.name, deref(got), deref(want))
				}
			}
		})
	}
}

func nullable(c roundTrip) *string {
	if c.null {
		return nil
	}
	return &c.want
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

// TestAnEventsRowCopiesIntoTheEventsColumns writes one row with the events table's
// column types in its order, numeric(12,2) included, as the ingester does.
func TestAnEventsRowCopiesIntoTheEventsColumns(t *testing.T) {
	conn := connect(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE ev (event_id uuid, event_time timestamptz, event_type text,
		user_id bigint, session_id uuid, product_id bigint, category text, price numeric(12,2),
		quantity integer, source_file text)`); err != nil {
		t.Fatal(err)
	}
	buf := AppendHeader(nil)
	for i := range 3 {
		buf = AppendRow(buf, 10)
		buf = AppendUUID(buf, uuidOf(fmt.Sprintf("357642a0-bad3-4886-998a-25716f85d49%d", i)))
		buf = ts("2026-12-01T21:59:47.147884Z")(buf)
		buf = AppendText(buf, "add_to_cart")
		buf = AppendInt8(buf, 455)
		buf = AppendUUID(buf, uuidOf("fb020a60-ae9e-4273-a3e2-ef9c692cf9f0"))
		buf = AppendInt8(buf, 3601)
		buf = AppendText(buf, "office products")
		buf = numeric(2499+int64(i), 2)(buf)
		buf = AppendInt4(buf, 2)
		buf = AppendText(buf, "f.csv")
	}
	buf = AppendTrailer(buf)
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY ev FROM STDIN (FORMAT binary)"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRow(ctx, `SELECT string_agg(ev::text, E'\n' ORDER BY event_id) FROM ev`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`(357642a0-bad3-4886-998a-25716f85d490,"2026-12-01 21:59:47.147884+00",add_to_cart,455,fb020a60-ae9e-4273-a3e2-ef9c692cf9f0,3601,"office products",24.99,2,f.csv)`,
		`(357642a0-bad3-4886-998a-25716f85d491,"2026-12-01 21:59:47.147884+00",add_to_cart,455,fb020a60-ae9e-4273-a3e2-ef9c692cf9f0,3601,"office products",25.00,2,f.csv)`,
		`(357642a0-bad3-4886-998a-25716f85d492,"2026-12-01 21:59:47.147884+00",add_to_cart,455,fb020a60-ae9e-4273-a3e2-ef9c692cf9f0,3601,"office products",25.01,2,f.csv)`,
	}, "\n")
	if got != want {
		t.Errorf("rows read back:\n%s\nwant:\n%s", got, want)
	}
}

func TestNumericRefusesAScaleOutsideZeroToFour(t *testing.T) {
	for _, scale := range []int{-1, 5} {
		if _, err := AppendNumeric(nil, 1, scale); err == nil {
			t.Errorf("scale %d: no error", scale)
		}
	}
}

// BenchmarkAppendRow is the encoding cost of one events row.
func BenchmarkAppendRow(b *testing.B) {
	u := uuidOf("357642a0-bad3-4886-998a-25716f85d49d")
	t0 := time.Date(2026, 12, 1, 21, 59, 47, 147884000, time.UTC)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRow(buf[:0], 10)
		buf = AppendUUID(buf, u)
		buf = AppendTimestamptz(buf, t0)
		buf = AppendText(buf, "view")
		buf = AppendInt8(buf, 455)
		buf = AppendUUID(buf, u)
		buf = AppendInt8(buf, 3601)
		buf = AppendText(buf, "books")
		buf, _ = AppendNumeric(buf, 2499, 2)
		buf = AppendInt4(buf, 1)
		buf = AppendText(buf, "bench-00001.csv")
	}
}
