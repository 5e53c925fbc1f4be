// Package table describes the events table once: its columns in COPY order, its key, and
// which value of an accepted event (or of its file) each column holds. The ingester
// derives its COPY column list, the staging table, the merge statement and its binary
// COPY encoding from Events; the collector and the load test name the table and its
// columns through it. Adding a column is one Column (and Field) here, its encoding in
// the ingester's fieldCode (services/ingester/internal/load/copyrow_test.go, which fails
// until it exists; then make generate), and a migration in sql/.
package table

import (
	"strings"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// Field says which value of a row a column holds.
type Field int

// The values a row of events is made of: the event's CSV fields and the file it came from.
const (
	EventID Field = iota
	EventTime
	EventType
	UserID
	SessionID
	ProductID
	Category
	Price
	Quantity
	SourceFile
	NumFields
)

// Column is one column a loader writes.
type Column struct {
	Name  string
	Field Field
}

// Table is a table a loader writes rows into.
type Table struct {
	Name    string
	Columns []Column // in COPY order; columns the server fills (ingested_at) are not here
	Key     []string // the primary key: what makes two rows the same row
}

// Events is the events table (sql/0001_events.sql, partitioned by 0004): the CSV
// columns of the contract, named as in the CSV header, then the file the row came from.
// Its key is (event_id, event_time), the partitioned primary key: a duplicate event has
// the same id and time.
var Events = Table{
	Name: "events",
	Columns: []Column{
		{event.Columns[event.ColEventID], EventID},
		{event.Columns[event.ColEventTime], EventTime},
		{event.Columns[event.ColEventType], EventType},
		{event.Columns[event.ColUserID], UserID},
		{event.Columns[event.ColSessionID], SessionID},
		{event.Columns[event.ColProductID], ProductID},
		{event.Columns[event.ColCategory], Category},
		{event.Columns[event.ColPrice], Price},
		{event.Columns[event.ColQuantity], Quantity},
		{"source_file", SourceFile},
	},
	Key: []string{event.Columns[event.ColEventID], event.Columns[event.ColEventTime]},
}

// Names are the column names in COPY order.
func (t Table) Names() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// Column is the name of the column holding f ("" when the table has none).
func (t Table) Column(f Field) string {
	for _, c := range t.Columns {
		if c.Field == f {
			return c.Name
		}
	}
	return ""
}

// List is the column names joined for SQL ("event_id, event_time, ..."), with extra
// columns after them.
func (t Table) List(extra ...string) string {
	return strings.Join(append(t.Names(), extra...), ", ")
}

// CopyBinary is the COPY statement that loads into target (this table, or a staging copy
// of it) the columns in order, extra ones after them, in PostgreSQL's binary format.
func (t Table) CopyBinary(target string, extra ...string) string {
	return "COPY " + target + " (" + t.List(extra...) + ") FROM STDIN (FORMAT binary)"
}

// StagingDDL creates staging, a temporary table like this one (its defaults, not its
// key, so duplicates can be staged) plus extra column definitions, dropped at commit.
func (t Table) StagingDDL(staging string, extra ...string) string {
	cols := append([]string{"LIKE " + t.Name + " INCLUDING DEFAULTS"}, extra...)
	return "CREATE TEMP TABLE " + staging + " (" + strings.Join(cols, ", ") + ") ON COMMIT DROP"
}

// Merge inserts each key of staging once (the first by order, e.g. "ord") into this
// table, skipping keys it already holds, and returns the inserted rows' returning
// columns.
func (t Table) Merge(staging, order string, returning ...string) string {
	key := strings.Join(t.Key, ", ")
	return "INSERT INTO " + t.Name + " (" + t.List() + ")\n" +
		"SELECT DISTINCT ON (" + key + ") " + t.List() + "\n" +
		"FROM " + staging + " ORDER BY " + key + ", " + order + "\n" +
		"ON CONFLICT (" + key + ") DO NOTHING\n" +
		"RETURNING " + strings.Join(returning, ", ")
}
