package settings

import (
	"bytes"
	"strings"
	"testing"
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
