package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsEverySettingWithItsVariable(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"DATABASE_URL", "INGESTER_INPUT_DIR", "--input-dir", "INGESTER_SETTLE", "INGESTER_TRIGGER_INTERVAL", "INGESTER_MAX_BATCH_RECORDS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out.String())
		}
	}
}

func TestBadSettingsGiveAClearErrorAndExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--on-success", "keep"}, want: "must be archive or delete"},
		{args: []string{"--workers", "0"}, want: "INGESTER_WORKERS"},
		{env: map[string]string{"INGESTER_MAX_BATCH_RECORDS": "0"}, want: "INGESTER_MAX_BATCH_RECORDS"},
		{args: []string{"--settle", "soon"}, want: "invalid value"},
		{args: []string{"--log-level", "loud"}, want: "unknown log level"},
		{args: []string{"--retry-base", "10s", "--retry-max", "1s"}, want: "INGESTER_RETRY_BASE"},
		{args: []string{"--db-statement-timeout", "-1s"}, want: "INGESTER_DB_"},
		{args: []string{"--max-file-attempts", "0"}, want: "INGESTER_MAX_FILE_ATTEMPTS"},
		{args: []string{"stray"}, want: "unexpected argument"},
		{args: []string{"--events-retention", "soon"}, want: "want whole days like 30d"},
		{env: map[string]string{"EVENTS_RETENTION": "1d"}, want: "INGESTER_EVENTS_RETENTION must be off or at least two partition widths"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		msg := errb.String() + out.String()
		if code != 2 || !strings.Contains(msg, tc.want) {
			t.Errorf("%v %v: exit %d, output %q; want exit 2 mentioning %q", tc.args, tc.env, code, msg, tc.want)
		}
		for k := range tc.env {
			t.Setenv(k, "20000")
		}
	}
}
