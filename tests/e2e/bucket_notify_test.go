package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The ingesters' JetStream stream (their settings' default).
const natsStream = "ECOMSTREAM_S3_EVENTS"

// ingestersConsumer is the name of the durable consumer the ingesters made ("" while
// none exists): they derive it from their source, and this test's is the stream's only
// consumer.
func ingestersConsumer(js jetstream.JetStream) string {
	s, err := js.Stream(context.Background(), natsStream)
	if err != nil {
		return ""
	}
	names := s.ConsumerNames(context.Background())
	var found []string
	for n := range names.Name() {
		found = append(found, n)
	}
	if names.Err() != nil || len(found) != 1 {
		return ""
	}
	return found[0]
}

// consumerInfo is the state of the ingesters' durable consumer, or nil while it does not exist.
func consumerInfo(js jetstream.JetStream) *jetstream.ConsumerInfo {
	name := ingestersConsumer(js)
	if name == "" {
		return nil
	}
	c, err := js.Consumer(context.Background(), natsStream, name)
	if err != nil {
		return nil
	}
	ci, err := c.Info(context.Background())
	if err != nil {
		return nil
	}
	return ci
}

// Notifications received by an ingester that dies before acknowledging them come back
// (to the next ingester), and change nothing: every object is committed once, with its
// rows once. The ingester that dies is played by this test on the ingesters' own durable
// consumer (a fetch, then the connection gone, as the server sees a kill -9 between
// receive and ack), so the window is hit every time rather than by luck.
func TestBucketNotificationsRedeliveredAfterAnIngesterDiesChangeNothing(t *testing.T) {
	r := newBucketRig(t)
	db := pool(t, r.url)
	ctx := context.Background()
	nc, err := nats.Connect(r.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// An ingester ran once: it made the stream and the consumer. Then none runs.
	first := r.startIngesterAt(t, freeAddr(t), "ing-first", "1h")
	await(t, "the ingester's stream and consumer", func() bool { return consumerInfo(js) != nil })
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	const objects = 12
	for i := range objects {
		r.put(t, fmt.Sprintf("incoming/while-none-runs-%02d.csv", i), csvBody(20))
	}
	await(t, "the notifications stored", func() bool { ci := consumerInfo(js); return ci != nil && ci.NumPending >= objects })

	// The dying ingester: receives them all, acknowledges none, is gone.
	dying, err := nats.Connect(r.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	djs, _ := jetstream.New(dying)
	c, err := djs.Consumer(ctx, natsStream, ingestersConsumer(js))
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < objects; {
		batch, err := c.Fetch(objects-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	dying.Close()
	if ci := consumerInfo(js); ci == nil || ci.NumAckPending < objects {
		t.Fatalf("the dying ingester's notifications are not pending acknowledgement: %+v", ci)
	}

	// The next ingester: its first listing commits the objects; the redelivered
	// notifications then name objects the ledger has (archived by then) and are acked.
	next := r.startIngesterAt(t, freeAddr(t), "ing-next", "1h")
	r.waitBucketDrained(t, db, objects, 3*time.Minute)
	await(t, "the redelivered notifications acknowledged", func() bool {
		ci := consumerInfo(js)
		return ci != nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	// Every message of the stream was delivered; the deliveries beyond one each are the
	// redeliveries (the archive copies and deletes are notified too, once each).
	if ci := consumerInfo(js); ci.Delivered.Consumer-ci.Delivered.Stream < objects {
		t.Fatalf("%d deliveries of %d messages: the dying ingester's %d notifications were not delivered again",
			ci.Delivered.Consumer, ci.Delivered.Stream, objects)
	}
	if err := next.stop(); err != nil {
		t.Fatal(err)
	}
	r.checkBucketInvariant(t, db, nil)
	var files, events, distinct int64
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM ingested_files), (SELECT count(*) FROM events),
		(SELECT count(DISTINCT event_id) FROM events)`).Scan(&files, &events, &distinct); err != nil {
		t.Fatal(err)
	}
	if files != objects || events != objects*20 || distinct != events {
		t.Fatalf("ledger %d rows, events %d (%d distinct); want %d objects of 20 rows, each once", files, events, distinct, objects)
	}
}
