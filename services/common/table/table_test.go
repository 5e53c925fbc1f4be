package table

import (
	"slices"
	"strings"
	"testing"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// Every CSV column of the contract is a column of events, in the contract's order, and
// every Field is held by exactly one column.
func TestEventsHoldsEveryCSVColumnAndEveryFieldOnce(t *testing.T) {
	names := Events.Names()
	if !slices.Equal(names[:len(event.Columns)], event.Columns) {
		t.Errorf("columns %v do not start with the CSV columns %v", names, event.Columns)
	}
	for f := Field(0); f < NumFields; f++ {
		n := 0
		for _, c := range Events.Columns {
			if c.Field == f {
				n++
			}
		}
		if n != 1 {
			t.Errorf("field %d is held by %d columns, want 1", f, n)
		}
	}
	if Events.Column(SourceFile) != "source_file" || Events.Column(NumFields) != "" {
		t.Errorf("Column: %q %q", Events.Column(SourceFile), Events.Column(NumFields))
	}
}

// The statements the ingester runs, spelled out: a change to the descriptor shows here.
func TestStatementsAreDerivedFromTheDescriptor(t *testing.T) {
	cols := "event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file"
	if got, want := Events.CopyBinary(`"stage"`, "ord"), `COPY "stage" (`+cols+`, ord) FROM STDIN (FORMAT binary)`; got != want {
		t.Errorf("CopyBinary:\n got %s\nwant %s", got, want)
	}
	if got, want := Events.StagingDDL("stage", "ord bigint"), "CREATE TEMP TABLE stage (LIKE events INCLUDING DEFAULTS, ord bigint) ON COMMIT DROP"; got != want {
		t.Errorf("StagingDDL:\n got %s\nwant %s", got, want)
	}
	merge := Events.Merge("stage", "ord", "source_file")
	for _, want := range []string{"INSERT INTO events (" + cols + ")", "SELECT DISTINCT ON (event_id, event_time) " + cols,
		"FROM stage ORDER BY event_id, event_time, ord", "ON CONFLICT (event_id, event_time) DO NOTHING", "RETURNING source_file"} {
		if !strings.Contains(merge, want) {
			t.Errorf("Merge lacks %q:\n%s", want, merge)
		}
	}
}
