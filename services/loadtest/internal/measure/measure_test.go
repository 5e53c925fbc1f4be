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
