package load

import (
	"testing"

	"github.com/ecomstream/ecomstream/services/common/table"
)

// A column added to the events descriptor cannot be loaded until the binary COPY knows
// how to encode its value: every field has an encoding that writes one value.
func TestEveryFieldOfTheEventsTableHasABinaryEncoding(t *testing.T) {
	s := &source{file: "a.csv"}
	for f := table.Field(0); f < table.NumFields; f++ {
		if encoders[f] == nil {
			t.Errorf("field %d has no encoding", f)
			continue
		}
		if got := len(encoders[f](nil, s)); got < 4 {
			t.Errorf("field %d encoded as %d bytes, want a length word and a value", f, got)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a column without an encoding was accepted")
		}
	}()
	encodersOf(table.Table{Name: "t", Columns: []table.Column{{Name: "new", Field: table.NumFields}}})
}
