package report

import (
	"encoding/json"
	"strings"
	"testing"
)

// The max report puts the 2-stream COPY bulk rate of the same run beside the highest
// sustained rate, with their ratio, in the Markdown and the JSON; a run that did not
// measure it says nothing of it.
func TestMaxReportShowsTheBulkRateBesideTheHighestSustainedRate(t *testing.T) {
	r := fixture()
	r.MaxRate = &MaxRate{RowsPerSec: 60000, Offered: 64000, P99: 0.4, BulkCopy: 50000}
	md := Markdown(r)
	if !strings.Contains(md, "**2-stream `\\copy` bulk rate, same PostgreSQL, same run: "+Rate(50000)+"**") ||
		!strings.Contains(md, "highest sustained rate / bulk rate = 1.20") {
		t.Errorf("markdown lacks the bulk rate:\n%s", md[:min(len(md), 1200)])
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"bulk_copy_2_streams_rows_per_second":50000`) {
		t.Error("json lacks bulk_copy_2_streams_rows_per_second")
	}
	r.MaxRate.BulkCopyAtEnd, r.MaxRate.EventsAtEnd = 40000, 6000000
	if md := Markdown(r); !strings.Contains(md, "into events at the end of the ramp (6,000,000 rows in it; rolled back): "+Rate(40000)+"; highest sustained rate / that rate = 1.50") {
		t.Errorf("markdown lacks the bulk rate at the end:\n%s", md[:min(len(md), 1400)])
	}
	r.MaxRate.BulkCopyAtBest, r.MaxRate.EventsAtBest = 48000, 1125000
	if md := Markdown(r); !strings.Contains(md, "into a copy of events holding 1,125,000 of its rows (the table the highest passing step started from; dropped afterwards): "+Rate(48000)+"; highest sustained rate / that rate = 1.25") {
		t.Errorf("markdown lacks the bulk rate at the best step's table size:\n%s", md[:min(len(md), 1600)])
	}
	r.MaxRate.BulkCopy, r.MaxRate.BulkCopyAtEnd, r.MaxRate.BulkCopyAtBest = 0, 0, 0
	if md := Markdown(r); strings.Contains(md, "bulk rate") {
		t.Error("a run without the bulk rate mentions it")
	}
}
