package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/common/servertest"
)

// testStream is the stream env.source names (empty: a plain subscription, as the tests
// of s3_test.go were written for); the JetStream variants below set it.
var testStream string

// withStream runs f with every source made by env.source consuming a JetStream stream.
func withStream(t *testing.T, f func(*testing.T)) {
	testStream = "S3TEST"
	t.Cleanup(func() { testStream = "" })
	f(t)
}

// The notification properties of the plain subscription hold through a stream as well:
// found without a listing, hostile records dropped, NATS killed and restarted on its store.
func TestJetStreamKeepsTheNotificationProperties(t *testing.T) {
	for name, f := range map[string]func(*testing.T){
		"FindsAnObjectWithoutAListing":          TestNotificationFindsAnObjectWithoutAListing,
		"HostileNotifications":                  TestHostileNotificationsHandOutNothingButInputObjects,
		"LostNotificationsCostOneListingAtMost": TestLostNotificationsCostOneListingAtMost,
	} {
		t.Run(name, func(t *testing.T) { withStream(t, f) })
	}
}

// jsSource is a source of in/ consuming the stream S3TEST through consumer, logging to log.
func (e *env) jsSource(t *testing.T, url, consumer string, log *syncBuffer) *Source {
	t.Helper()
	o := Options{Location: objstore.Location{Bucket: bucket, Prefix: "in/"}, ArchivePrefix: "archive/", FailedPrefix: "failed/",
		ListInterval: time.Hour, Ticks: make(chan time.Time), Log: zerolog.New(log), Metrics: NewMetrics(nil),
		NATSURL: url, NATSSubject: "s3.events", NATSStream: "S3TEST", NATSConsumer: consumer}
	s, err := New(e.c, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// follow subscribes s until the test ends and returns its hints.
func follow(t *testing.T, s *Source) <-chan hint {
	t.Helper()
	hints, stop, err := s.subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return hints
}

// collect reads hints until want (key -> ETag) have all arrived; the bound only ends a
// test that would otherwise hang.
func collect(t *testing.T, hints <-chan hint, want map[string]string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	deadline := time.After(2 * time.Minute)
	for missing := len(want); missing > 0; {
		select {
		case h := <-hints:
			etag, ok := want[h.key]
			if !ok || h.removed {
				continue
			}
			if h.etag != etag {
				t.Fatalf("%s notified with ETag %q, put with %q", h.key, h.etag, etag)
			}
			if seen[h.key]++; seen[h.key] == 1 {
				missing--
			}
		case <-deadline:
			t.Fatalf("notified %v of %v", seen, want)
		}
	}
	return seen
}

// putWhileNoneRuns lets an ingester of consumer run once (the stream and the consumer
// exist), stops it, and puts n objects named by format; it returns their ETags by key.
func (e *env) putWhileNoneRuns(t *testing.T, consumer string, log *syncBuffer, format string, n int) map[string]string {
	t.Helper()
	_, stop, err := e.jsSource(t, e.n.URL(), consumer, log).subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	want := map[string]string{}
	for i := range n {
		key := fmt.Sprintf(format, i)
		want[key] = e.put(t, key, "x\n").ETag
	}
	return want
}

// The point of the stream: objects put while no ingester runs are notified to the next
// one that starts, without any listing (a plain subscription never hears of them and
// they wait for a listing interval).
func TestNotificationsPublishedWhileNoIngesterRunsAreDeliveredWhenOneStarts(t *testing.T) {
	e := setup(t, true)
	var log syncBuffer
	// An ingester ran once: the stream and the consumer exist. Then none runs.
	want := e.putWhileNoneRuns(t, "ingesters", &log, "in/offline-%d.csv", 5)
	e.put(t, "archive/not-input.csv", "x\n")

	next := e.jsSource(t, e.n.URL(), "ingesters", &log)
	collect(t, follow(t, next), want)
	if strings.Contains(log.String(), "JetStream not available") {
		t.Fatalf("fell back with JetStream enabled: %s", log.String())
	}
	// Every notification was acknowledged once handed to the queue.
	js := jsClient(t, e.n.URL())
	awaitConsumer(t, js, "ingesters", func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 0 && ci.NumPending == 0 })
}

func jsClient(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// awaitConsumer polls the consumer's state until cond holds; the bound only ends a hung test.
func awaitConsumer(t *testing.T, js jetstream.JetStream, name string, cond func(*jetstream.ConsumerInfo) bool) *jetstream.ConsumerInfo {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := js.Consumer(context.Background(), "S3TEST", name)
		if err == nil {
			ci, err := c.Info(context.Background())
			if err == nil && cond(ci) {
				return ci
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s never reached the state wanted (last error %v)", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An ingester that dies after receiving notifications and before acknowledging them
// (seen from the server: a fetch, then the connection gone) loses nothing: the stream
// delivers them again to the next ingester, which hands out the same versions (the
// ledger then makes a second look at a committed object a no-op; tests/e2e checks rows).
func TestNotificationsReceivedByAnIngesterThatDiesBeforeAckingAreRedelivered(t *testing.T) {
	old := ackWait
	ackWait = 300 * time.Millisecond
	t.Cleanup(func() { ackWait = old })
	e := setup(t, true)
	var log syncBuffer
	want := e.putWhileNoneRuns(t, "dying", &log, "in/unacked-%d.csv", 4)

	// The dying ingester: the same durable consumer, messages received, no ack, gone.
	nc, err := nats.Connect(e.n.URL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(context.Background(), "S3TEST", "dying")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < len(want) {
		batch, err := c.Fetch(len(want)-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() {
			got++
		}
	}
	nc.Close()

	collect(t, follow(t, e.jsSource(t, e.n.URL(), "dying", &log)), want)
	ci := awaitConsumer(t, jsClient(t, e.n.URL()), "dying", func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 0 })
	if ci.Delivered.Consumer < uint64(2*len(want)) {
		t.Fatalf("%d deliveries of %d notifications: they were not delivered again", ci.Delivered.Consumer, len(want))
	}
}

// A NATS server without JetStream: a warning that says so, a plain subscription, and
// notifications still arrive; the password of the NATS URL is in no log line.
func TestWithoutJetStreamTheSourceFallsBackToAPlainSubscription(t *testing.T) {
	n := s3test.StartNATSWithoutJetStream(t)
	g := s3test.StartGateway(t, s3test.Options{NATSURL: n.URL(), Subject: "s3.events"}, bucket)
	e := &env{g: g, c: g.Client(t)}
	var log syncBuffer
	url := strings.Replace(n.URL(), "nats://", "nats://ingester:n4ts-s3cr3t@", 1) // a server without auth ignores it
	s := e.jsSource(t, url, "ingesters", &log)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	if !strings.Contains(log.String(), "JetStream not available") {
		t.Fatalf("no fallback warning: %s", log.String())
	}
	// As in TestNotificationFindsAnObjectWithoutAListing: the gateway may connect after
	// the first put, so put until one is notified; no second listing runs.
	e.putUntilNotified(t, k, "in/plain-%03d.csv", &log)
	if v := testutil.ToFloat64(s.m.errors.WithLabelValues(opNotify)); v < 1 {
		t.Fatalf("the fallback was not counted as a notification error: %v", v)
	}
	if strings.Contains(log.String(), "n4ts-s3cr3t") {
		t.Fatalf("the NATS password is in the log: %s", log.String())
	}
}

// A stream the server refuses (here: another stream already captures the subject) is
// the fallback's case too: a warning, and the notifications still arrive.
func TestARefusedStreamFallsBackToAPlainSubscription(t *testing.T) {
	e := setup(t, true)
	js := jsClient(t, e.n.URL())
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "SOMEONE_ELSES", Subjects: []string{"s3.>"}}); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	s := e.jsSource(t, e.n.URL(), "ingesters", &log)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	if !strings.Contains(log.String(), "JetStream not available") {
		t.Fatalf("no fallback warning: %s", log.String())
	}
	e.put(t, "in/plain.csv", "x\n")
	k.await(t, "in/plain.csv notified", func() bool { _, ok := k.names()["s3://input/in/plain.csv"]; return ok })
	if k.listings() != 1 {
		t.Fatalf("%d listings; the object must have come from a notification", k.listings())
	}
}

// The stream and its consumer lost while an ingester consumes (deleted, or a NATS
// restarted without its store): the ingester makes them again and notifications resume,
// without a restart and without a listing.
func TestALostStreamIsMadeAgainAndNotificationsResume(t *testing.T) {
	e := setup(t, true)
	var log syncBuffer
	s := e.jsSource(t, e.n.URL(), "ingesters", &log)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	e.put(t, "in/before.csv", "x\n")
	k.await(t, "in/before.csv notified", func() bool { _, ok := k.names()["s3://input/in/before.csv"]; return ok })

	if err := jsClient(t, e.n.URL()).DeleteStream(context.Background(), "S3TEST"); err != nil {
		t.Fatal(err)
	}
	// Objects put before the stream is back are the listing's; put until one is notified.
	for i := 0; ; i++ {
		if i == 600 {
			js := jsClient(t, e.n.URL())
			st, err := js.Stream(context.Background(), "S3TEST")
			if err == nil {
				t.Logf("stream: %+v", st.CachedInfo().State)
				c, err := js.Consumer(context.Background(), "S3TEST", "ingesters")
				if err == nil {
					t.Logf("consumer: %+v", *c.CachedInfo())
				}
			}
			t.Fatalf("no notification after the stream was lost: %s", log.String())
		}
		e.put(t, fmt.Sprintf("in/after-%03d.csv", i), "x\n")
		found := false
		for name := range k.names() {
			found = found || strings.HasPrefix(name, "s3://input/in/after-")
		}
		if found {
			break
		}
		time.Sleep(100 * time.Millisecond) // pacing of the probes, not an assertion
	}
	if k.listings() != 1 {
		t.Fatalf("%d listings; the object must have come from a notification", k.listings())
	}
	if strings.Contains(log.String(), "JetStream not available") {
		t.Fatalf("fell back instead of making the stream again: %s", log.String())
	}
}

// A consumer of the name that the ingester cannot consume (someone made it push-based:
// pull requests to it are refused) is a refusal like a refused stream: a warning, the
// plain subscription, and notifications still arrive.
func TestAConsumerThatCannotBePulledFallsBackToAPlainSubscription(t *testing.T) {
	e := setup(t, true)
	js := jsClient(t, e.n.URL())
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, streamConfig("S3TEST", "s3.events")); err != nil {
		t.Fatal(err)
	}
	push := consumerConfig("ingesters", "s3.events")
	if _, err := jsPushConsumer(t, e.n.URL(), "S3TEST", push); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	s := e.jsSource(t, e.n.URL(), "ingesters", &log)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	e.putUntilNotified(t, k, "in/push-%03d.csv", &log)
	if !strings.Contains(log.String(), "JetStream not available") {
		t.Fatalf("no fallback warning: %s", log.String())
	}
}

// jsPushConsumer makes a push consumer (one with a deliver subject) through the legacy
// JetStream API, which the jetstream package no longer offers.
func jsPushConsumer(t *testing.T, url, stream string, c jetstream.ConsumerConfig) (*nats.ConsumerInfo, error) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	return js.AddConsumer(stream, &nats.ConsumerConfig{Durable: c.Durable, DeliverSubject: "someone.elses.inbox",
		FilterSubject: c.FilterSubject, AckPolicy: nats.AckExplicitPolicy, DeliverPolicy: nats.DeliverNewPolicy})
}

// A consumer of the shared name that filters another subject (a second deployment
// reading another subject under the default stream and consumer names, or an operator's
// consumer) never delivers this ingester's notifications, and consuming it would take
// the other one's: this ingester falls back to the plain subscription of its own
// subject, and the other's messages stay for it.
func TestAConsumerOfAnotherSubjectFallsBackAndLeavesItsMessages(t *testing.T) {
	e := setup(t, true)
	js := jsClient(t, e.n.URL())
	ctx := context.Background()
	sc := streamConfig("S3TEST", "s3.events")
	sc.Subjects = []string{"other.events", "s3.events"}
	if _, err := js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, "S3TEST", consumerConfig("ingesters", "other.events")); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	s := e.jsSource(t, e.n.URL(), "ingesters", &log)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	// The other deployment's notification, published after this one attached.
	nc, err := nats.Connect(e.n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e.putUntilNotified(t, k, "in/mine-%03d.csv", &log)
	if err := nc.Publish("other.events", []byte(`{"Records":[]}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ci := awaitConsumer(t, js, "ingesters", func(ci *jetstream.ConsumerInfo) bool { return ci.NumPending+uint64(ci.NumAckPending) >= 1 })
	if ci.AckFloor.Consumer != 0 {
		t.Fatalf("this ingester acknowledged the other subject's messages: %+v", ci)
	}
}

// A consumer's filter delivers the subject as the server matches subjects: '*' one
// token, '>' one or more, no filter every subject of the stream.
func TestAConsumerFilterDeliversTheSubjectAsTheServerMatchesIt(t *testing.T) {
	for _, tc := range []struct {
		filter string
		more   []string
		want   bool
	}{
		{"", nil, true},
		{"s3.events", nil, true},
		{"s3.*", nil, true},
		{"*.events", nil, true},
		{"s3.>", nil, true},
		{">", nil, true},
		{"", []string{"other.events", "s3.>"}, true},
		{"other.events", nil, false},
		{"s3", nil, false},
		{"s3.events.x", nil, false},
		{"s3.events.>", nil, false},
		{"s3.*.x", nil, false},
		{"", []string{"other.>"}, false},
	} {
		if got := filters(tc.filter, tc.more, "s3.events"); got != tc.want {
			t.Errorf("filter %q %v delivers s3.events: %v, want %v", tc.filter, tc.more, got, tc.want)
		}
	}
}

// putUntilNotified puts objects named by format (the gateway may connect to NATS after
// the first put) until the sink has one, and checks that it came from a notification:
// no second listing ran. The bound only ends a test that would otherwise hang.
func (e *env) putUntilNotified(t *testing.T, k *sink, format string, log *syncBuffer) {
	t.Helper()
	for i := 0; ; i++ {
		if i == 600 {
			t.Fatalf("no notification: %s", log.String())
		}
		e.put(t, fmt.Sprintf(format, i), "x\n")
		if len(k.names()) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // pacing of the probes, not an assertion
	}
	if k.listings() != 1 {
		t.Fatalf("%d listings; the object must have come from a notification", k.listings())
	}
}

// A server without JetStream at start, restarted with it on the same port: the ingester
// that fell back to the plain subscription tries JetStream again, consumes the stream
// (the durable consumer exists on the server and delivers what is put), and its plain
// subscription is gone from the server (no second copy of every hint, no leak).
func TestAFallenBackIngesterReturnsToJetStreamWhenItIsBack(t *testing.T) {
	old := rejoinWait
	rejoinWait = 200 * time.Millisecond
	t.Cleanup(func() { rejoinWait = old })
	n := s3test.StartNATSWithoutJetStream(t)
	g := s3test.StartGateway(t, s3test.Options{NATSURL: n.URL(), Subject: "s3.events"}, bucket)
	e := &env{g: g, c: g.Client(t)}
	var log syncBuffer
	s := e.jsSource(t, n.URL(), "ingesters", &log)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	if !strings.Contains(log.String(), "JetStream not available") {
		t.Fatalf("no fallback warning: %s", log.String())
	}

	n.Kill()
	monitor := restartWithJetStream(t, n.URL())
	js := jsClient(t, n.URL())
	awaitConsumer(t, js, "ingesters", func(*jetstream.ConsumerInfo) bool { return true })
	// The plain subscription that stood in for the stream ends; the one to removals,
	// which every replica keeps beside the stream, stays.
	awaitSubscriptions(t, monitor, "ecomstream-ingester", "s3.events", 1)

	e.putUntilNotified(t, k, "in/rejoined-%03d.csv", &log)
	// What was notified came through the stream: delivered by the consumer and acknowledged.
	awaitConsumer(t, js, "ingesters", func(ci *jetstream.ConsumerInfo) bool {
		return ci.Delivered.Consumer >= 1 && ci.NumAckPending == 0
	})
}

// restartWithJetStream runs a nats-server with JetStream on url's port (the one a test
// server without it had) until the test ends, and returns its monitoring address.
func restartWithJetStream(t *testing.T, url string) string {
	t.Helper()
	bin, err := s3test.NATSServer()
	if err != nil {
		t.Fatal(err)
	}
	port := url[strings.LastIndex(url, ":")+1:]
	mport, err := servertest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", port, "-m", strconv.Itoa(mport), "-js", "-sd", filepath.Join(dir, "js"))
	logf, err := os.Create(filepath.Join(dir, "nats.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) { // a bound on a broken start
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("nats-server with JetStream does not listen: %s", b)
		}
	}
	return "http://127.0.0.1:" + strconv.Itoa(mport)
}

// awaitSubscriptions polls the server's monitoring endpoint until the connections named
// client hold want subscriptions to subject (the stream's own subscription to it is the
// server's); the bound only ends a hung test.
func awaitSubscriptions(t *testing.T, monitor, client, subject string, want int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(monitor + "/connz?subs=1&limit=10000")
		if err != nil {
			last = err.Error()
			continue
		}
		var z struct {
			Conns []struct {
				Name string   `json:"name"`
				Subs []string `json:"subscriptions_list"`
			} `json:"connections"`
		}
		err = json.NewDecoder(resp.Body).Decode(&z)
		resp.Body.Close()
		if err != nil {
			last = err.Error()
			continue
		}
		n := 0
		for _, c := range z.Conns {
			for _, sub := range c.Subs {
				if c.Name == client && sub == subject {
					n++
				}
			}
		}
		if n == want {
			return
		}
		last = fmt.Sprintf("%+v", z.Conns)
	}
	t.Fatalf("%s does not hold %d subscriptions to %s: %s", client, want, subject, last)
}

// Replicas share the stream's consumer, so each creation is handed to one of them; a
// removal reaches every one (a plain subscription to removals beside the stream): each
// replica's queue holds the objects its listings found, and one that never heard of
// another's archive claimed the object later and GETted it for nothing (404).
func TestEveryReplicaHearsEveryRemovalAndOneEachCreation(t *testing.T) {
	e := setup(t, true)
	var log syncBuffer
	a, b := e.jsSource(t, e.n.URL(), "ingesters", &log), e.jsSource(t, e.n.URL(), "ingesters", &log)
	ha, hb := follow(t, a), follow(t, b)
	const n = 6
	for i := range n {
		e.put(t, fmt.Sprintf("in/r-%d.csv", i), "x\n")
	}
	for i := range n {
		if err := e.c.RemoveObject(context.Background(), bucket, fmt.Sprintf("in/r-%d.csv", i), minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	created := map[string]int{}
	removed := []map[string]bool{{}, {}}
	deadline := time.After(2 * time.Minute) // only ends a test that would hang
	for len(removed[0]) < n || len(removed[1]) < n || len(created) < n {
		var h hint
		var who int
		select {
		case h = <-ha:
		case h = <-hb:
			who = 1
		case <-deadline:
			t.Fatalf("removals heard by each replica: %d and %d of %d; creations %v", len(removed[0]), len(removed[1]), n, created)
		}
		if h.removed {
			removed[who][h.key] = true
		} else {
			created[h.key]++
		}
	}
	for k, c := range created {
		if c != 1 {
			t.Fatalf("creation of %s handed out %d times, want once (to one replica)", k, c)
		}
	}
}
