package measure

import (
	"encoding/json"
	"testing"
	"time"
)

func TestWindowSQL(t *testing.T) {
	if got := (Window{}).where(); got != "true" {
		t.Error(got)
	}
	w := Window{Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Prefix: "s01-'x"}
	want := `file_created_at >= '2026-01-02T03:04:05Z'::timestamptz AND file_name LIKE 's01-''x%'`
	if got := w.where(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestPlanDescription(t *testing.T) {
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	js := `[{"Plan":{"Node Type":"Aggregate","Actual Rows":1,"Actual Loops":1,"Plans":[
	  {"Node Type":"Gather","Actual Rows":3,"Actual Loops":1,"Plans":[
	    {"Node Type":"Index Only Scan","Index Name":"events_pkey","Actual Rows":50000,"Actual Loops":3}]}]}}]`
	if err := json.Unmarshal([]byte(js), &plans); err != nil {
		t.Fatal(err)
	}
	p := plans[0].Plan
	if got := p.describe(); got != "Aggregate ← Index Only Scan using events_pkey" {
		t.Error(got)
	}
	if got := p.resultRows("count"); got != 150000 {
		t.Errorf("count rows %d", got)
	}
	scan := planNode{NodeType: "Bitmap Heap Scan", Relation: "events", ActualRows: 7,
		Plans: []planNode{{NodeType: "Bitmap Index Scan", IndexName: "idx_events_user_id"}}}
	if got := scan.describe(); got != "Bitmap Heap Scan on events ← Bitmap Index Scan using idx_events_user_id" {
		t.Error(got)
	}
	if scan.resultRows("by_user_id") != 7 {
		t.Error("rows")
	}
}

// On the partitioned events a plan scans every partition's copy of an index: the report
// names the parent's index once and counts the rows of all partitions.
func TestPlanDescriptionOfPartitionedEvents(t *testing.T) {
	count := planNode{NodeType: "Aggregate", Plans: []planNode{{NodeType: "Append", Plans: []planNode{
		{NodeType: "Index Only Scan", IndexName: "events_p20261201_event_type_idx", ActualRows: 100, Loops: 1},
		{NodeType: "Index Only Scan", IndexName: "events_p20261202_event_type_idx", ActualRows: 50, Loops: 2},
		{NodeType: "Seq Scan", Relation: "events_default", ActualRows: 3, Loops: 1},
	}}}}
	if got := count.describe(); got != "Aggregate ← Index Only Scan using idx_events_event_type, Seq Scan on events" {
		t.Error(got)
	}
	if got := count.resultRows("count"); got != 203 {
		t.Errorf("count over partitions %d, want 203", got)
	}
	for in, want := range map[string]string{"events_p20261201_pkey": "events_pkey", "events_default_user_id_idx": "idx_events_user_id",
		"events_p20261201_0900_product_id_idx": "idx_events_product_id", "idx_rejected_records_source_file": "idx_rejected_records_source_file"} {
		if got := parentIndex(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
