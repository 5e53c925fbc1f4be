package s3

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// AWS and MinIO send a key URL-encoded (a space as '+', a '+' as %2B), and an encoded key
// can pass the naming rule as it is: the object is found from the notification all the
// same, without a listing, and the other form's item (no such object) opens as gone,
// counting no error.
func TestAURLEncodedKeyIsFoundFromItsNotification(t *testing.T) {
	// The gateway does not publish here (it would send the key as it is): the only
	// notification is the encoded record published below.
	n := s3test.StartNATS(t)
	g := s3test.StartGateway(t, s3test.Options{}, bucket)
	e := &env{g: g, n: n, c: g.Client(t)}
	s := e.source(t, "in/", make(chan time.Time))
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })

	const key, encoded = "in/a b+c.csv", "in/a+b%2Bc.csv"
	etag := e.put(t, key, "x\n").ETag
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := map[string]any{"eventName": "ObjectCreated:Put", "eventTime": "2026-01-02T03:04:05.000Z",
		"s3": map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": encoded, "size": 2, "eTag": etag}}}
	j, _ := json.Marshal(map[string]any{"Records": []any{r}})
	if err := nc.Publish("s3.events", j); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	k.await(t, key+" notified", func() bool { _, ok := k.names()[s.o.Location.URL(key)]; return ok })
	if k.listings() != 1 {
		t.Fatalf("%d listings; the object must have come from the notification", k.listings())
	}

	real := k.names()[s.o.Location.URL(key)]
	rc, _, err := s.Open(context.Background(), real)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	rc.Close()
	// The other form was hinted first (as it came), with the object's ETag.
	wrong, ok := k.names()[s.o.Location.URL(encoded)]
	if !ok {
		t.Fatalf("the record's own form %s was not hinted: %v", encoded, k.names())
	}
	if _, _, err := s.Open(context.Background(), wrong); !errors.Is(err, source.ErrGone) {
		t.Fatalf("open of the other form %s: %v, want ErrGone", encoded, err)
	}
	if v := testutil.ToFloat64(s.m.errors.WithLabelValues(opGet)); v != 0 {
		t.Fatalf("%v get errors counted; a guess that finds nothing is not an error", v)
	}
}
