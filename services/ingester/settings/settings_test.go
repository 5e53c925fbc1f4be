package settings

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The notifications' stream and consumer: JetStream by default, a plain subscription
// with an empty stream, and names the server cannot take refused with the variable named.
func TestNATSStreamAndConsumerSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{args: nil},
		{args: []string{"--nats-stream", ""}},
		{args: []string{"--nats-stream", "", "--nats-consumer", ""}},
		{args: []string{"--nats-stream", "SHOP_EVENTS", "--nats-consumer", "shop-ingesters"}},
		{args: []string{"--nats-stream", "shop.events"}, want: "INGESTER_NATS_STREAM"},
		{args: []string{"--nats-stream", "a b"}, want: "INGESTER_NATS_STREAM"},
		{args: []string{"--nats-consumer", ""}}, // derived from the source
		{args: []string{"--nats-consumer", "a.b"}, want: "INGESTER_NATS_CONSUMER"},
		{args: []string{"--nats-consumer", "ingest*"}, want: "INGESTER_NATS_CONSUMER"},
	} {
		var out bytes.Buffer
		args := append([]string{"--database-url", "postgres://localhost/x", "--source", "s3://in-bucket/x", "--nats-url", "nats://127.0.0.1:4222"}, tc.args...)
		cfg, err := Load(args, &out)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if tc.args == nil && (cfg.NATSStream != "ECOMSTREAM_S3_EVENTS" || cfg.NATSConsumer != "") {
			t.Errorf("defaults: stream %q, consumer %q", cfg.NATSStream, cfg.NATSConsumer)
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

// Load slots: 0 is this host's CPUs, -1 no bound, a number itself; below -1 is refused.
func TestLoadSlots(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want int // Slots(); -2: refused
	}{
		{"", runtime.NumCPU()},
		{"0", runtime.NumCPU()},
		{"-1", 0},
		{"3", 3},
		{"-2", -2},
	} {
		args := []string{"--database-url", "postgres://localhost/x"}
		if tc.arg != "" {
			args = append(args, "--load-slots", tc.arg)
		}
		cfg, err := Load(args, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.arg, err)
		}
		err = cfg.Validate()
		switch {
		case tc.want == -2 && (err == nil || !strings.Contains(err.Error(), "INGESTER_LOAD_SLOTS")):
			t.Errorf("%q: %v, want INGESTER_LOAD_SLOTS refused", tc.arg, err)
		case tc.want != -2 && err != nil:
			t.Errorf("%q: %v", tc.arg, err)
		case tc.want != -2 && cfg.Slots() != tc.want:
			t.Errorf("%q: %d slots, want %d", tc.arg, cfg.Slots(), tc.want)
		}
	}
}

// The listings' minimum wait never refuses a short rescan interval: above it, it is the
// rescan interval (a rescan interval of 200 ms was refused for the default 250 ms).
func TestAShortRescanIntervalBoundsTheListingsMinimumWait(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 250 * time.Millisecond},
		{[]string{"--rescan-interval", "200ms"}, 200 * time.Millisecond},
		{[]string{"--rescan-min-interval", "0"}, 0},
		{[]string{"--rescan-interval", "5s", "--rescan-min-interval", "1s"}, time.Second},
	} {
		args := append([]string{"--database-url", "postgres://localhost/x", "--source", "s3://in-bucket/x/"}, tc.args...)
		cfg, err := Load(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		if got := cfg.ListMinInterval(); got != tc.want {
			t.Errorf("%v: minimum wait %s, want %s", tc.args, got, tc.want)
		}
	}
}
