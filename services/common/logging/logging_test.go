package logging

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ecomstream/ecomstream/services/common/replica"
)

func TestEveryLineNamesServiceAndInstance(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "ingester", "ing-1", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("hidden")
	log.Info().Str("file", "a.csv").Msg("committed")
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &m); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if m["service"] != "ingester" || m["instance"] != "ing-1" || m["file"] != "a.csv" || m["time"] == nil {
		t.Fatalf("line %v", m)
	}
	if _, err := New(&buf, "x", "y", "loud"); err == nil {
		t.Fatal("unknown level accepted")
	}
	if Instance("explicit") != "explicit" || Instance("") == "" {
		t.Fatal("instance name")
	}
}

// The name chosen here is the replica's everywhere: ecomstream_build_info's replica label
// reads it (package replica), so a dashboard legend and a log line name a replica alike.
func TestTheInstanceNameIsRecordedAsTheReplicasName(t *testing.T) {
	if got := Instance("ingester-9"); got != "ingester-9" || replica.Name() != "ingester-9" {
		t.Fatalf("Instance = %q, replica.Name = %q", got, replica.Name())
	}
}
