package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/ingester/settings"
)

func TestBucketSettingsAreCheckedAndKeepIsForBucketsOnly(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{args: []string{"--source", "s3://in-bucket/incoming", "--on-success", "keep"}},
		{args: []string{"--source", "s3://in-bucket", "--input-dir", ""}},
		{args: []string{"--source", "s3://in-bucket/x", "--nats-url", "nats://127.0.0.1:4222"}},
		{args: []string{"--on-success", "keep"}, want: "must be archive or delete"},
		{args: []string{"--source", "/data/incoming"}, want: "INGESTER_SOURCE"},
		{args: []string{"--source", "s3://B/x"}, want: "bucket name"},
		{args: []string{"--source", "s3://in-bucket/x", "--on-success", "shred"}, want: "archive, delete or keep"},
		{args: []string{"--source", "s3://in-bucket/x", "--s3-archive-prefix", "archive"}, want: "INGESTER_S3_ARCHIVE_PREFIX"},
		{args: []string{"--source", "s3://in-bucket/x", "--s3-failed-prefix", ""}, want: "INGESTER_S3_FAILED_PREFIX"},
		{args: []string{"--source", "s3://in-bucket/x", "--nats-url", "nats://h", "--nats-subject", ""}, want: "INGESTER_NATS_SUBJECT"},
	} {
		var out bytes.Buffer
		cfg, err := settings.Load(append([]string{"--database-url", "postgres://localhost/x"}, tc.args...), &out)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err = cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestNewSourceIsTheBucketOrNilForTheDirectory(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
	var out bytes.Buffer
	cfg, err := settings.Load([]string{"--source", "s3://in-bucket/incoming"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSource(&cfg, zerolog.Nop(), prometheus.NewRegistry(), nil)
	if err != nil || s == nil || s.String() != "s3://in-bucket/incoming/" {
		t.Fatalf("newSource: %v, %v", s, err)
	}
	cfg.Source = ""
	if s, err := newSource(&cfg, zerolog.Nop(), prometheus.NewRegistry(), nil); s != nil || err != nil {
		t.Fatalf("no --source: %v, %v", s, err)
	}
}
