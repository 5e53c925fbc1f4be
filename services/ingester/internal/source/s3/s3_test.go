package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

const bucket = "input"

// sink records what discovery says, and lets a test wait for a name.
type sink struct {
	mu      sync.Mutex
	found   []source.Item
	removed []string
	listed  int
	changed chan struct{}
}

func newSink() *sink { return &sink{changed: make(chan struct{}, 1)} }

func (k *sink) poke() {
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

func (k *sink) Found(it source.Item, complete bool) {
	k.mu.Lock()
	k.found = append(k.found, it)
	k.mu.Unlock()
	k.poke()
}
func (k *sink) Removed(name string) {
	k.mu.Lock()
	k.removed = append(k.removed, name)
	k.mu.Unlock()
	k.poke()
}
func (k *sink) Listed(time.Time) {
	k.mu.Lock()
	k.listed++
	k.mu.Unlock()
	k.poke()
}
func (k *sink) Aside(string, string) {}

// names is the set of names found so far.
func (k *sink) names() map[string]source.Item {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := map[string]source.Item{}
	for _, it := range k.found {
		m[it.Name] = it
	}
	return m
}

func (k *sink) listings() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.listed
}

// await waits until cond holds. The bound only ends a test that would otherwise hang;
// no test asserts how long anything took.
func (k *sink) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for !cond() {
		select {
		case <-k.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("never happened: %s", what)
		}
	}
}

type env struct {
	g   *s3test.Gateway
	n   *s3test.NATS
	c   *minio.Client
	reg *prometheus.Registry
}

func setup(t testing.TB, withNATS bool) *env {
	e := &env{reg: prometheus.NewRegistry()}
	o := s3test.Options{}
	if withNATS {
		e.n = s3test.StartNATS(t)
		o = s3test.Options{NATSURL: e.n.URL(), Subject: "s3.events"}
	}
	e.g = s3test.StartGateway(t, o, bucket)
	e.c = e.g.Client(t)
	return e
}

func (e *env) source(t testing.TB, prefix string, ticks chan time.Time) *Source {
	e.reg = prometheus.NewRegistry()
	o := Options{Location: objstore.Location{Bucket: bucket, Prefix: prefix}, ArchivePrefix: "archive/", FailedPrefix: "failed/",
		ListInterval: time.Hour, Ticks: ticks, Log: zerolog.Nop(), Metrics: NewMetrics(e.reg)}
	if e.n != nil {
		o.NATSURL, o.NATSSubject = e.n.URL(), "s3.events"
		o.NATSStream, o.NATSConsumer = testStream, "ingesters" // jetstream_test.go
	}
	s, err := New(e.c, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) put(t *testing.T, key, body string) minio.UploadInfo {
	t.Helper()
	info, err := e.c.PutObject(context.Background(), bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func (e *env) get(t *testing.T, key string) (string, bool) {
	t.Helper()
	o, err := e.c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return "", false
		}
		t.Fatalf("get %s: %v", key, err)
	}
	return string(b), true
}

// discover runs Discover until the test ends.
func discover(t *testing.T, s *Source, k *sink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Discover(ctx, k) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Discover: %v", err)
		}
	})
}

func TestListingFindsEveryInputObjectAcrossPagesAndNothingElse(t *testing.T) {
	e := setup(t, false)
	const n = 1100 // more than one ListObjectsV2 page (1000 keys)
	var wg sync.WaitGroup
	keys := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				e.put(t, k, "event_id\n")
			}
		}()
	}
	for i := range n {
		keys <- fmt.Sprintf("in/d%d/f%05d.csv", i%3, i)
	}
	for _, k := range []string{"in/.f.csv.tmp", "in/.hidden.csv", "in/notes.txt", "in/f.csv.reason.txt", "other/x.csv", "archive/in/a.csv", "failed/in/b.csv"} {
		keys <- k
	}
	close(keys)
	wg.Wait()

	k := newSink()
	s := e.source(t, "in/", nil)
	if _, err := s.list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	got := k.names()
	if len(got) != n || len(k.found) != n {
		t.Fatalf("found %d objects (%d distinct), want %d", len(k.found), len(got), n)
	}
	for i := range n {
		name := fmt.Sprintf("s3://%s/in/d%d/f%05d.csv", bucket, i%3, i)
		it, ok := got[name]
		if !ok {
			t.Fatalf("%s not found", name)
		}
		if it.ETag == "" || it.Size != int64(len("event_id\n")) || it.ModTime.IsZero() {
			t.Fatalf("%s found without its version: %+v", name, it.Version)
		}
	}
	for i := 1; i < len(k.found); i++ {
		if k.found[i].ModTime.Before(k.found[i-1].ModTime) {
			t.Fatalf("not oldest first: %s (%v) after %s (%v)", k.found[i].Name, k.found[i].ModTime, k.found[i-1].Name, k.found[i-1].ModTime)
		}
	}
	if k.listed != 1 {
		t.Fatalf("Listed called %d times, want 1", k.listed)
	}
	if v := testutil.ToFloat64(s.m.listed); v != n {
		t.Fatalf("source_listed_items = %v, want %d", v, n)
	}
}

func TestAnEmptyPrefixNeverListsTheArchiveOrFailedObjects(t *testing.T) {
	e := setup(t, false)
	e.put(t, "a.csv", "x\n")
	e.put(t, "archive/a.0123.csv", "x\n")
	e.put(t, "failed/b.0123.csv", "x\n")
	k := newSink()
	if _, err := e.source(t, "", nil).list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if got := k.names(); len(got) != 1 || got["s3://input/a.csv"].Name == "" {
		t.Fatalf("found %v, want only s3://input/a.csv", got)
	}
}

func TestOpenReadsOnlyTheListedVersion(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	ctx := context.Background()
	e.put(t, "in/a.csv", "version one\n")
	k := newSink()
	if _, err := s.list(ctx, k); err != nil {
		t.Fatal(err)
	}
	listed := k.names()["s3://input/in/a.csv"]

	r, v, err := s.Open(ctx, listed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "version one\n" || v.ETag != listed.ETag || v.Size != int64(len(b)) {
		t.Fatalf("read %q as %+v, listed %+v", b, v, listed.Version)
	}

	e.put(t, "in/a.csv", "version two, longer\n")
	if _, _, err := s.Open(ctx, listed); !errors.Is(err, source.ErrChanged) {
		t.Fatalf("Open of an overwritten version: %v, want ErrChanged", err)
	}
	k = newSink()
	if _, err := s.list(ctx, k); err != nil {
		t.Fatal(err)
	}
	second := k.names()["s3://input/in/a.csv"]
	if second.ETag == listed.ETag {
		t.Fatal("new bytes under the same key listed with the old ETag")
	}
	r, _, err = s.Open(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r)
	r.Close()
	if string(b) != "version two, longer\n" {
		t.Fatalf("read %q", b)
	}

	if err := e.c.RemoveObject(ctx, bucket, "in/a.csv", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(ctx, second); !errors.Is(err, source.ErrGone) {
		t.Fatalf("Open of a removed object: %v, want ErrGone", err)
	}
}

// finishOne lists key and finishes the listed version with a.
func finishOne(t *testing.T, e *env, s *Source, key string, a source.Action, reason string) (source.Item, error) {
	t.Helper()
	k := newSink()
	if _, err := s.list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	it, ok := k.names()[objstore.Location{Bucket: bucket}.URL(key)]
	if !ok {
		t.Fatalf("%s not listed", key)
	}
	errs := s.Finish(context.Background(), []source.Finish{{Item: it, Version: it.Version, Action: a, Reason: reason}})
	return it, errs[0]
}

func TestFinishArchiveCopiesUnderTheETagThenDeletes(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	info := e.put(t, "in/day/a.csv", "rows\n")
	if _, err := finishOne(t, e, s, "in/day/a.csv", source.Archive, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.get(t, "in/day/a.csv"); ok {
		t.Fatal("archived object still in the input")
	}
	if b, ok := e.get(t, "archive/day/a."+info.ETag+".csv"); !ok || b != "rows\n" {
		t.Fatalf("archive copy: %q, %v", b, ok)
	}
	// The same name again with other bytes: archived beside the first, not over it.
	info2 := e.put(t, "in/day/a.csv", "other rows\n")
	if _, err := finishOne(t, e, s, "in/day/a.csv", source.Archive, ""); err != nil {
		t.Fatal(err)
	}
	if b, ok := e.get(t, "archive/day/a."+info.ETag+".csv"); !ok || b != "rows\n" {
		t.Fatalf("first archive copy after the second: %q, %v", b, ok)
	}
	if b, ok := e.get(t, "archive/day/a."+info2.ETag+".csv"); !ok || b != "other rows\n" {
		t.Fatalf("second archive copy: %q, %v", b, ok)
	}
}

func TestFinishDeleteAndFailAndGone(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	e.put(t, "in/d.csv", "rows\n")
	it, err := finishOne(t, e, s, "in/d.csv", source.Delete, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.get(t, "in/d.csv"); ok {
		t.Fatal("deleted object still in the input")
	}
	// Finished again (another replica did it first): gone, as good as done.
	if errs := s.Finish(context.Background(), []source.Finish{{Item: it, Version: it.Version, Action: source.Archive}}); !errors.Is(errs[0], source.ErrGone) {
		t.Fatalf("finishing a gone object: %v, want ErrGone", errs[0])
	}

	info := e.put(t, "in/bad.csv", "not,a,header\n")
	if _, err := finishOne(t, e, s, "in/bad.csv", source.Fail, "missing_column: event_id"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.get(t, "in/bad.csv"); ok {
		t.Fatal("failed object still in the input")
	}
	failed := "failed/bad." + info.ETag + ".csv"
	if b, ok := e.get(t, failed); !ok || b != "not,a,header\n" {
		t.Fatalf("failed copy: %q, %v", b, ok)
	}
	if b, ok := e.get(t, failed+".reason.txt"); !ok || !strings.Contains(b, "missing_column: event_id") {
		t.Fatalf("reason: %q, %v", b, ok)
	}
}

// An input key near the store's limits (here 250 bytes between two slashes, where a
// posix-backed gateway takes 255) is still archived and moved aside: its copy's key,
// which adds the ETag and, for the reason, ".reason.txt", is shortened to fit, and two
// long names that share their beginning keep copies of their own. (Before, the copy was
// refused as "key too long" on every attempt: committed, never archived, parked.)
func TestAVeryLongKeyIsArchivedAndFailedUnderAKeyTheStoreTakes(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	long := strings.Repeat("é", 121) // 242 bytes: the cut falls inside a character
	a, b := "in/"+long+"a.csv", "in/"+long+"b.csv"
	e.put(t, a, "same bytes\n")
	info := e.put(t, b, "same bytes\n")
	if _, err := finishOne(t, e, s, a, source.Archive, ""); err != nil {
		t.Fatalf("archive of a long key: %v", err)
	}
	if _, err := finishOne(t, e, s, b, source.Fail, "bad_header: x"); err != nil {
		t.Fatalf("fail of a long key: %v", err)
	}
	for _, k := range []string{a, b} {
		if _, ok := e.get(t, k); ok {
			t.Errorf("%s still in the input", k)
		}
	}
	var archived, failed []string
	for o := range e.c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		switch {
		case strings.HasPrefix(o.Key, "archive/"):
			archived = append(archived, o.Key)
		case strings.HasPrefix(o.Key, "failed/"):
			failed = append(failed, o.Key)
		}
	}
	if len(archived) != 1 || len(failed) != 2 {
		t.Fatalf("archived %q, failed %q; want one copy, and one copy with its reason", archived, failed)
	}
	for _, k := range append(archived, failed...) {
		if !utf8.ValidString(k) || !strings.Contains(k, "."+info.ETag+".csv") {
			t.Errorf("copy %q: want valid UTF-8 with the ETag before the extension", k)
		}
	}
	if s.aside("archive/", a, info.ETag) == s.aside("archive/", b, info.ETag) {
		t.Error("two long names that share their beginning get the same copy")
	}
	if got := s.aside("archive/", "in/day/a.csv", info.ETag); got != "archive/day/a."+info.ETag+".csv" {
		t.Errorf("a short key's copy: %q", got)
	}
}

// What Keep remembers lasts as long as the object: a listing that no longer finds a kept
// object (expired by a lifecycle rule, deleted) forgets it, so a long-lived replica of a
// kept bucket does not grow by every object it ever kept; one still there stays kept.
// (Before, every kept name stayed in memory for the life of the process.)
func TestKeptObjectsAreForgottenOnceGoneFromTheBucket(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	for _, k := range []string{"in/a.csv", "in/b.csv", "in/c.csv"} {
		e.put(t, k, "rows\n")
		if _, err := finishOne(t, e, s, k, source.Keep, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"in/a.csv", "in/b.csv"} { // a lifecycle rule expires them
		if err := e.c.RemoveObject(context.Background(), bucket, k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		k := newSink()
		if _, err := s.list(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		if len(k.found) != 0 {
			t.Fatalf("listing %d: a kept object was handed out again: %v", i, k.found)
		}
	}
	s.mu.Lock()
	n := len(s.kept)
	_, c := s.kept["s3://input/in/c.csv"]
	s.mu.Unlock()
	if n != 1 || !c {
		t.Fatalf("%d objects remembered as kept, want only in/c.csv, which is still there", n)
	}
}

// A NATS URL the client cannot parse (a password with a bare '%', say) is refused with
// what is wrong, never with the password: the NATS client's error quotes the whole URL.
func TestAMalformedNATSURLIsNeverEchoedWithItsPassword(t *testing.T) {
	c, err := objstore.New(objstore.Settings{Endpoint: "http://127.0.0.1:1", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"nats://u:s3cr3t%zz@127.0.0.1:4222", "nats://u:s3cr3t@127.0.0.1:99999x", "nats://u:s3cr3t@[::1"} {
		s, err := New(c, Options{Location: objstore.Location{Bucket: bucket}, ArchivePrefix: "archive/", FailedPrefix: "failed/",
			ListInterval: time.Hour, NATSURL: u, NATSSubject: "s3.events", Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Discover(context.Background(), newSink())
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Discover with NATS URL %q: %v; want an error without the password", u, err)
		}
	}
}

// Whatever is published on the subject, only this bucket's input objects are handed
// out: garbage, other buckets, our own archive and failed prefixes, reason files, and a
// key that names no object are dropped, and the notifications after them still work.
func TestHostileNotificationsHandOutNothingButInputObjects(t *testing.T) {
	e := setup(t, true)
	s := e.source(t, "in/", make(chan time.Time))
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	nc, err := nats.Connect(e.n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rec := func(ev, b, key, etag string) string {
		o := map[string]any{"key": key, "size": 1}
		if etag != "" {
			o["eTag"] = etag
		}
		r := map[string]any{"eventName": ev, "eventTime": "not a time", "s3": map[string]any{"bucket": map[string]any{"name": b}, "object": o}}
		j, _ := json.Marshal(map[string]any{"Records": []any{r}})
		return string(j)
	}
	for _, m := range []string{
		"not json", `{"Records": 7}`, `{"Records": [null, {}]}`, strings.Repeat("[", 100000),
		rec("s3:ObjectCreated:Put", "other-bucket", "in/x.csv", "abc"),
		rec("s3:ObjectCreated:Put", bucket, "archive/x.csv", "abc"),
		rec("s3:ObjectCreated:Put", bucket, "failed/x.abc.csv.reason.txt", "abc"),
		rec("s3:ObjectCreated:Put", bucket, "in/x.csv.reason.txt", "abc"),
		rec("s3:ObjectCreated:Put", bucket, "in/.hidden.csv", "abc"),
		rec("s3:ObjectAccessed:Get", bucket, "in/x.csv", "abc"),
		rec("s3:ObjectCreated:Put", bucket, "in/nothing-there.csv", ""), // looked at: no such object
	} {
		if err := nc.Publish("s3.events", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.put(t, "in/real.csv", "x\n")
	k.await(t, "in/real.csv notified", func() bool { _, ok := k.names()["s3://input/in/real.csv"]; return ok })
	if got := k.names(); len(got) != 1 {
		t.Fatalf("handed out %v; want in/real.csv only", got)
	}
}

// The version read is finished, never a newer one written over its key meanwhile: the
// copy and the delete are both conditional on the ETag that was read.
func TestFinishNeverRemovesANewerVersion(t *testing.T) {
	for _, a := range []source.Action{source.Archive, source.Delete, source.Fail} {
		t.Run(a.String(), func(t *testing.T) {
			e := setup(t, false)
			s := e.source(t, "in/", nil)
			e.put(t, "in/a.csv", "old\n")
			k := newSink()
			if _, err := s.list(context.Background(), k); err != nil {
				t.Fatal(err)
			}
			old := k.names()["s3://input/in/a.csv"]
			e.put(t, "in/a.csv", "new bytes\n")
			errs := s.Finish(context.Background(), []source.Finish{{Item: old, Version: old.Version, Action: a, Reason: "r"}})
			if !errors.Is(errs[0], source.ErrChanged) {
				t.Fatalf("finish of an overwritten version: %v, want ErrChanged", errs[0])
			}
			if b, ok := e.get(t, "in/a.csv"); !ok || b != "new bytes\n" {
				t.Fatalf("the newer version: %q, %v", b, ok)
			}
		})
	}
}

// The delete itself is conditional: a version written after the copy (the narrowest
// window) survives the delete.
func TestDeleteIsConditionalOnTheETag(t *testing.T) {
	e := setup(t, false)
	old := e.put(t, "in/a.csv", "old\n")
	e.put(t, "in/a.csv", "new\n")
	err := e.c.RemoveObject(objstore.DeleteIfMatch(context.Background(), old.ETag), bucket, "in/a.csv", minio.RemoveObjectOptions{})
	if !errors.Is(verdict(err), source.ErrChanged) {
		t.Fatalf("conditional delete of an old ETag: %v, want a precondition failure", err)
	}
	if b, ok := e.get(t, "in/a.csv"); !ok || b != "new\n" {
		t.Fatalf("after the refused delete: %q, %v", b, ok)
	}
}

func TestKeepLeavesTheObjectAndStopsListingThatVersion(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	e.put(t, "in/k.csv", "rows\n")
	if _, err := finishOne(t, e, s, "in/k.csv", source.Keep, ""); err != nil {
		t.Fatal(err)
	}
	if b, ok := e.get(t, "in/k.csv"); !ok || b != "rows\n" {
		t.Fatalf("kept object: %q, %v", b, ok)
	}
	k := newSink()
	if _, err := s.list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if len(k.found) != 0 {
		t.Fatalf("a kept version was handed out again: %v", k.found)
	}
	// A new version under the kept name is new input.
	e.put(t, "in/k.csv", "new rows\n")
	k = newSink()
	if _, err := s.list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if len(k.found) != 1 {
		t.Fatalf("a new version of a kept object: found %v", k.found)
	}
	// A restarted process knows nothing kept: it lists the object again (the ledger makes it a no-op).
	k = newSink()
	if _, err := e.source(t, "in/", nil).list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	if len(k.found) != 1 {
		t.Fatalf("a new process: found %v", k.found)
	}
}

func TestNotificationFindsAnObjectWithoutAListing(t *testing.T) {
	e := setup(t, true)
	ticks := make(chan time.Time) // never ticks: only the first listing runs
	s := e.source(t, "in/", ticks)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	// The subscription is made after the first listing: an object put before it may be
	// missed by both, so wait until one notification arrives before asserting.
	e.put(t, "in/probe.csv", "x\n")
	k.await(t, "the probe object notified", func() bool { _, ok := k.names()["s3://input/in/probe.csv"]; return ok })
	info := e.put(t, "in/n.csv", "x\n")
	e.put(t, "archive/ignored.csv", "x\n") // our own archive copies are not input
	k.await(t, "in/n.csv notified", func() bool { _, ok := k.names()["s3://input/in/n.csv"]; return ok })
	if got := k.names()["s3://input/in/n.csv"]; got.ETag != info.ETag {
		t.Fatalf("notified with %+v, put %s", got.Version, info.ETag)
	}
	if err := e.c.RemoveObject(context.Background(), bucket, "in/n.csv", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	k.await(t, "in/n.csv removed", func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, r := range k.removed {
			if r == "s3://input/in/n.csv" {
				return true
			}
		}
		return false
	})
	if k.listings() != 1 {
		t.Fatalf("%d listings ran; the ticker never ticked", k.listings())
	}
	if _, ok := k.names()["s3://input/archive/ignored.csv"]; ok {
		t.Fatal("an archive object was handed out")
	}
	if n := lagObserved(t, e.reg); n == 0 {
		t.Fatal("no notification's lag was observed")
	}
}

// Notifications lost (NATS down): every object put meanwhile is found by the next
// listing, and once NATS is back notifications work again without a restart.
func TestLostNotificationsCostOneListingAtMost(t *testing.T) {
	e := setup(t, true)
	ticks := make(chan time.Time)
	s := e.source(t, "in/", ticks)
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	e.put(t, "in/probe.csv", "x\n")
	k.await(t, "the probe notified", func() bool { _, ok := k.names()["s3://input/in/probe.csv"]; return ok })

	e.n.Kill()
	var lost []string
	for i := range 20 {
		key := fmt.Sprintf("in/lost-%02d.csv", i)
		e.put(t, key, "x\n")
		lost = append(lost, "s3://input/"+key)
	}
	for _, name := range lost {
		if _, ok := k.names()[name]; ok {
			t.Fatalf("%s found with NATS down and no listing", name)
		}
	}
	ticks <- time.Now() // one listing interval
	k.await(t, "the second listing", func() bool { return k.listings() == 2 })
	got := k.names()
	for _, name := range lost {
		if _, ok := got[name]; !ok {
			t.Fatalf("%s not found by the listing after the notifications were lost", name)
		}
	}

	if err := e.n.Start(); err != nil {
		t.Fatal(err)
	}
	// The gateway and the ingester both reconnect; objects put until then are the
	// listing's. Put until one is notified: no third listing runs.
	notified := func() bool {
		for name := range k.names() {
			if strings.HasPrefix(name, "s3://input/in/after-") {
				return true
			}
		}
		return false
	}
	for i := 0; !notified(); i++ {
		if i == 600 {
			t.Fatal("no notification after NATS restarted")
		}
		e.put(t, fmt.Sprintf("in/after-%03d.csv", i), "x\n")
		time.Sleep(100 * time.Millisecond) // pacing of the probes, not an assertion
	}
	if k.listings() != 2 {
		t.Fatalf("%d listings; the last object must have come from a notification", k.listings())
	}
	if v := testutil.ToFloat64(s.m.errors.WithLabelValues(opNotify)); v < 1 {
		t.Fatalf("the NATS outage was not counted: %v", v)
	}
}

// A gateway that is down is a transient error: never ErrGone or ErrChanged, counted by
// operation, and everything works once it is back.
func TestTransientErrorsAreRetriedNotVerdicts(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	e.put(t, "in/a.csv", "rows\n")
	k := newSink()
	if _, err := s.list(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	it := k.names()["s3://input/in/a.csv"]

	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with the gateway up: %v", err)
	}
	e.g.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // bounds minio-go's own retries
	defer cancel()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready with the gateway down")
	}
	// The store's own trouble: ErrUnavailable, which counts against no object's attempts.
	if _, _, err := s.Open(ctx, it); !errors.Is(err, source.ErrUnavailable) || errors.Is(err, source.ErrGone) || errors.Is(err, source.ErrChanged) {
		t.Fatalf("Open with the gateway down: %v, want source.ErrUnavailable", err)
	}
	for _, a := range []source.Action{source.Archive, source.Delete, source.Fail} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		errs := s.Finish(ctx, []source.Finish{{Item: it, Version: it.Version, Action: a, Reason: "r"}})
		cancel()
		if !errors.Is(errs[0], source.ErrUnavailable) || errors.Is(errs[0], source.ErrGone) || errors.Is(errs[0], source.ErrChanged) {
			t.Fatalf("Finish %v with the gateway down: %v, want source.ErrUnavailable", a, errs[0])
		}
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if _, err := s.list(ctx2, newSink()); err == nil {
		t.Fatal("a listing with the gateway down succeeded")
	}
	for _, op := range []string{opGet, opCopy, opList} {
		if v := testutil.ToFloat64(s.m.errors.WithLabelValues(op)); v < 1 {
			t.Fatalf("source_errors_total{operation=%q} = %v", op, v)
		}
	}

	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Open(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(b, []byte("rows\n")) {
		t.Fatalf("read %q after the restart", b)
	}
	if errs := s.Finish(context.Background(), []source.Finish{{Item: it, Version: it.Version, Action: source.Archive}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// lagObserved is how many notifications' lags the registry's histogram holds.
func lagObserved(t *testing.T, g prometheus.Gatherer) (n uint64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ecomstream_ingester_notification_lag_seconds" {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// The errors that are the store's (no answer, an answer meaning "later") are told from
// the answers about the request, which count against the object.
func TestUnavailableIsTheStoresTroubleOnly(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/input/a.csv", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{minio.ErrorResponse{StatusCode: 503, Code: "SlowDown"}, true},
		{minio.ErrorResponse{StatusCode: 500, Code: "InternalError"}, true},
		{minio.ErrorResponse{StatusCode: 429, Code: "TooManyRequests"}, true},
		{minio.ErrorResponse{StatusCode: 400, Code: "RequestTimeout"}, true},
		{minio.ErrorResponse{StatusCode: 400, Code: "Throttling"}, true},
		{minio.ErrorResponse{StatusCode: 400, Code: "ExpiredToken"}, true},
		{minio.ErrorResponse{StatusCode: 403, Code: "AccessDenied"}, false},
		{minio.ErrorResponse{StatusCode: 400, Code: "InvalidRequest"}, false},
		{minio.ErrorResponse{StatusCode: 501, Code: "NotImplemented"}, false},
		{minio.ErrorResponse{StatusCode: 200, Code: "InternalError"}, false}, // minio-go's own, e.g. a malformed header
		{fmt.Errorf("stopping: %w", context.Canceled), false},
	} {
		err := unavailable(c.err)
		if got := errors.Is(err, source.ErrUnavailable); got != c.want {
			t.Errorf("%v: unavailable %v, want %v", c.err, got, c.want)
		}
		if !errors.Is(err, c.err) && err != c.err {
			t.Errorf("%v: the cause is lost in %v", c.err, err)
		}
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	for _, n := range []string{"ecomstream_ingester_source_errors_total", "ecomstream_ingester_source_listed_items"} {
		if c := testutil.CollectAndCount(reg, n); c == 0 {
			t.Fatalf("%s missing", n)
		}
	}
}

// The latency origin is the producer's x-amz-meta-mtime when it is plausible, finer than
// Last-Modified's whole seconds; a far-off one is ignored.
func TestOpenTakesTheProducersMtimeWhenPlausible(t *testing.T) {
	e := setup(t, false)
	s := e.source(t, "in/", nil)
	ctx := context.Background()
	put := func(key, mtime string) {
		opts := minio.PutObjectOptions{}
		if mtime != "" {
			opts.UserMetadata = map[string]string{MtimeKey: mtime}
		}
		if _, err := e.c.PutObject(ctx, bucket, key, strings.NewReader("x\n"), 2, opts); err != nil {
			t.Fatal(err)
		}
	}
	open := func(key string) source.Version {
		r, v, err := s.Open(ctx, source.Item{Name: "s3://input/" + key})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return v
	}
	began := time.Now().Add(-200 * time.Millisecond)
	put("in/fine.csv", fmt.Sprintf("%d.%09d", began.Unix(), began.Nanosecond()))
	if v := open("in/fine.csv"); !v.ModTime.Equal(time.Unix(began.Unix(), int64(began.Nanosecond()))) {
		t.Fatalf("mtime %v, put %v", v.ModTime, began)
	}
	put("in/far.csv", "1000000000.5")
	if v := open("in/far.csv"); v.ModTime.Year() < 2020 || v.ModTime.Nanosecond() != 0 {
		t.Fatalf("a far-off mtime was taken: %v", v.ModTime)
	}
	put("in/none.csv", "")
	if v := open("in/none.csv"); v.ModTime.IsZero() || v.ModTime.Nanosecond() != 0 {
		t.Fatalf("without an mtime: %v, want Last-Modified", v.ModTime)
	}
	// The server stamps files with the file system's coarse clock, a tick behind the one a
	// producer reads: an object begun 2 ms into a second can be stamped in the second
	// before. Its mtime is taken; one a few seconds ahead of the stamp is not.
	lastModified := func(key string) time.Time {
		st, err := e.c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st.LastModified
	}
	for _, tc := range []struct {
		key   string
		ahead time.Duration // of the mtime, past Last-Modified's second
		taken bool
	}{{"in/tick.csv", time.Second + 2*time.Millisecond, true}, {"in/ahead.csv", 3 * time.Second, false}} {
		// The mtime is written before the server stamps the object: aim it at the second
		// after the one the PUT lands in, and put again if the PUT landed in the next one.
		var lm, mtime time.Time
		for {
			now := time.Now().Truncate(time.Second)
			mtime = now.Add(tc.ahead)
			put(tc.key, fmt.Sprintf("%d.%09d", mtime.Unix(), mtime.Nanosecond()))
			if lm = lastModified(tc.key); lm.Equal(now) {
				break
			}
		}
		v := open(tc.key)
		if got := v.ModTime.Equal(mtime); got != tc.taken {
			t.Errorf("%s: an mtime %v past Last-Modified %v: got %v, taken %v, want taken %v", tc.key, mtime.Sub(lm), lm, v.ModTime, got, tc.taken)
		}
		if !tc.taken && !v.ModTime.Equal(lm) {
			t.Errorf("%s: %v, want Last-Modified %v", tc.key, v.ModTime, lm)
		}
	}
}

// pacedSource is a bucket source whose listings are paced with backoff (ListMinInterval):
// asked receives each wait it asks for, and each listing after the first starts when the
// test sends on fire.
func (e *env) pacedSource(t *testing.T, minInterval, interval time.Duration) (s *Source, asked chan time.Duration, fire chan time.Time) {
	asked, fire = make(chan time.Duration, 16), make(chan time.Time)
	o := Options{Location: objstore.Location{Bucket: bucket, Prefix: "in/"}, ArchivePrefix: "archive/", FailedPrefix: "failed/",
		ListInterval: interval, ListMinInterval: minInterval, Log: zerolog.Nop(), Metrics: NewMetrics(prometheus.NewRegistry()),
		After: func(d time.Duration) <-chan time.Time { asked <- d; return fire }}
	if e.n != nil {
		o.NATSURL, o.NATSSubject = e.n.URL(), "s3.events"
		o.NATSStream, o.NATSConsumer = testStream, "ingesters"
	}
	s, err := New(e.c, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, asked, fire
}

func nextWait(t *testing.T, asked chan time.Duration) time.Duration {
	t.Helper()
	select {
	case d := <-asked:
		return d
	case <-time.After(2 * time.Minute): // ends a hung test; nothing is timed
		t.Fatal("no wait asked for after a listing")
		return 0
	}
}

// Paced listings (ClickHouse S3Queue's backoff): after a listing that found an object the
// previous one did not, the next comes after the minimum wait; each listing that finds
// nothing new doubles the wait, up to the interval.
func TestPacedListingsSpeedUpOnNewObjectsAndBackOffWhenIdle(t *testing.T) {
	e := setup(t, false)
	const minWait, interval = time.Minute, 5 * time.Minute
	s, asked, fire := e.pacedSource(t, minWait, interval)
	e.put(t, "in/a.csv", "x\n")
	k := newSink()
	discover(t, s, k)
	want := []time.Duration{minWait, 2 * minWait, 4 * minWait, interval, interval}
	for i, w := range want {
		if i > 0 {
			fire <- time.Now()
		}
		if got := nextWait(t, asked); got != w {
			t.Fatalf("after listing %d: wait %s, want %s", i+1, got, w)
		}
	}
	e.put(t, "in/b.csv", "x\n")
	fire <- time.Now()
	if got := nextWait(t, asked); got != minWait {
		t.Fatalf("after the listing that found b.csv: wait %s, want %s", got, minWait)
	}
	if _, ok := k.names()["s3://input/in/b.csv"]; !ok {
		t.Fatal("b.csv not found")
	}
}

// Objects found after notifications were received are not news: with notifications
// working (here or, for the objects of other replicas, there), paced listings back off
// as if the bucket were idle.
func TestPacedListingsBackOffWhenNotificationsAnnouncedTheObjects(t *testing.T) {
	e := setup(t, true)
	const minWait, interval = time.Minute, 8 * time.Minute
	s, asked, fire := e.pacedSource(t, minWait, interval)
	k := newSink()
	discover(t, s, k)
	if got := nextWait(t, asked); got != 2*minWait {
		t.Fatalf("after an empty first listing: wait %s, want %s (from the minimum, doubled)", got, 2*minWait)
	}
	for i := 0; ; i++ { // put until one is notified (the subscription may lag the first listing)
		key := fmt.Sprintf("in/n-%03d.csv", i)
		e.put(t, key, "x\n")
		k.await(t, key+" found", func() bool { _, ok := k.names()["s3://input/"+key]; return ok })
		if k.listings() == 1 {
			break
		}
		if i == 100 {
			t.Fatal("no object notified")
		}
	}
	fire <- time.Now()
	if got := nextWait(t, asked); got != 4*minWait {
		t.Fatalf("after a listing that found only notified objects: wait %s, want %s (no news: doubled)", got, 4*minWait)
	}
}

// A paced listing never follows the last one sooner than that one took (a long prefix is
// not listed back to back), and never waits longer than the interval; off, it waits the
// interval.
func TestAPacedListingWaitsAtLeastAsLongAsTheLastTook(t *testing.T) {
	p := pacer{min: time.Second, max: time.Minute, cur: time.Minute}
	if got := p.next(true, 5*time.Second); got != 5*time.Second {
		t.Fatalf("after a 5 s listing with news: %s, want 5s", got)
	}
	if got := p.next(true, 10*time.Millisecond); got != time.Second {
		t.Fatalf("after a short listing with news: %s, want 1s", got)
	}
	if got := p.next(true, time.Hour); got != time.Minute {
		t.Fatalf("after an hour-long listing: %s, want the interval", got)
	}
	off := pacer{max: time.Minute, cur: time.Minute}
	if got := off.next(true, 0); got != time.Minute {
		t.Fatalf("off: %s, want the interval", got)
	}
}

// The ingester's own account of compose's s3 profile (the policy of
// deploy/versitygw/bucket-policy.json, set up as compose's s3-access job does) is enough
// for the source's whole cycle: /readyz, the listing, the HEAD of a notified key, the
// read, and every finish (archive, delete, fail with its reason). The objects are put
// with the generator's account and checked with root's keys.
func TestEveryFinishWorksWithTheIngestersOwnAccount(t *testing.T) {
	e := &env{reg: prometheus.NewRegistry(), g: s3test.StartGateway(t, s3test.Options{IAM: true})}
	e.g.Restrict(t, bucket)
	e.c = e.g.ClientAs(t, s3test.Accounts["ingester"])
	s := e.source(t, "incoming/", nil)
	e.c = e.g.ClientAs(t, s3test.Accounts["generator"])
	infos := map[string]minio.UploadInfo{}
	for _, k := range []string{"incoming/a.csv", "incoming/d.csv", "incoming/bad.csv", "incoming/n.csv"} {
		infos[k] = e.put(t, k, "rows of "+k+"\n")
	}
	e.c = e.g.Client(t) // root, for e.get
	ctx := context.Background()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	k := newSink()
	s.look(ctx, k, hint{key: "incoming/n.csv"}) // a notification without an ETag: a HEAD
	if _, ok := k.names()[objstore.Location{Bucket: bucket}.URL("incoming/n.csv")]; !ok {
		t.Fatalf("the notified object was not looked at: %v", k.names())
	}
	if _, err := s.list(ctx, k); err != nil {
		t.Fatal(err)
	}
	it := k.names()[objstore.Location{Bucket: bucket}.URL("incoming/a.csv")]
	r, _, err := s.Open(ctx, it)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "rows of incoming/a.csv\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	r.Close()
	for key, a := range map[string]source.Action{"incoming/a.csv": source.Archive, "incoming/d.csv": source.Delete, "incoming/bad.csv": source.Fail} {
		if _, err := finishOne(t, e, s, key, a, "missing_column: event_id"); err != nil {
			t.Fatalf("finish %s: %v", key, err)
		}
		if _, ok := e.get(t, key); ok {
			t.Errorf("%s still in the input", key)
		}
	}
	if b, ok := e.get(t, "archive/a."+infos["incoming/a.csv"].ETag+".csv"); !ok || b != "rows of incoming/a.csv\n" {
		t.Errorf("archive copy: %q, %v", b, ok)
	}
	failed := "failed/bad." + infos["incoming/bad.csv"].ETag + ".csv"
	if _, ok := e.get(t, failed); !ok {
		t.Error("no failed copy")
	}
	if b, ok := e.get(t, failed+".reason.txt"); !ok || !strings.Contains(b, "missing_column") {
		t.Errorf("reason: %q, %v", b, ok)
	}
}

// A replica asks for its turn before each periodic listing, never before its first (it
// fills its own queue at start): a listing another replica began within most of the
// interval is left to that one (counted), and the objects wait for the next turn.
func TestAPeriodicListingIsLeftToTheReplicaWhoseTurnItWas(t *testing.T) {
	e := setup(t, false)
	ticks := make(chan time.Time)
	s := e.source(t, "in/", ticks)
	asked, answer := make(chan time.Duration), make(chan bool)
	s.o.Turn = func(_ context.Context, within time.Duration) bool { asked <- within; return <-answer }
	e.put(t, "in/first.csv", "x\n")
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing, no turn asked", func() bool { return k.listings() == 1 })
	if _, ok := k.names()["s3://input/in/first.csv"]; !ok {
		t.Fatal("the first listing missed in/first.csv")
	}

	e.put(t, "in/second.csv", "x\n")
	ticks <- time.Now()
	if w := <-asked; w != time.Hour-time.Hour/turnMargin {
		t.Fatalf("asked whether a listing began within %v, want %v (most of the interval)", w, time.Hour-time.Hour/turnMargin)
	}
	answer <- false // another replica's turn
	k.await(t, "the listing left to another replica counted", func() bool {
		return testutil.ToFloat64(s.m.turnsLeft) == 1
	})
	if k.listings() != 1 {
		t.Fatalf("%d listings: the one left to another replica was made", k.listings())
	}
	if _, ok := k.names()["s3://input/in/second.csv"]; ok {
		t.Fatal("in/second.csv found without a listing")
	}

	ticks <- time.Now()
	<-asked
	answer <- true
	k.await(t, "the listing of this replica's turn", func() bool { return k.listings() == 2 })
	if _, ok := k.names()["s3://input/in/second.csv"]; !ok {
		t.Fatal("this replica's listing missed in/second.csv")
	}
}

// A replica whose ticks always come after another's listing is never given the turn,
// yet its own listings are what end its queue's memory of the items it finished
// (queue.Listed), its kept objects no longer there (forgetKept) and its backlog gauge:
// without one it keeps an entry for every object it ever loaded. So it lists on its own
// at least every ownListingEvery ticks, and records that listing as a turn (within 0).
func TestAReplicaNeverGivenTheTurnStillListsNowAndThen(t *testing.T) {
	e := setup(t, false)
	ticks := make(chan time.Time)
	s := e.source(t, "in/", ticks)
	var recorded atomic.Int32
	s.o.Turn = func(_ context.Context, within time.Duration) bool {
		recorded.Add(int32(btoi(within == 0)))
		return within == 0 // else another replica always listed just before
	}
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	for range 2 * ownListingEvery {
		ticks <- time.Now()
	}
	k.await(t, "two listings of its own in twice ownListingEvery ticks", func() bool { return k.listings() == 3 })
	if recorded := recorded.Load(); recorded != 2 {
		t.Fatalf("%d of its own listings recorded as turns, want 2", recorded)
	}
	if left := testutil.ToFloat64(s.m.turnsLeft); left != 2*ownListingEvery-2 {
		t.Fatalf("%v listings left to another replica, want %d", left, 2*ownListingEvery-2)
	}
}

// A replica that took the turn and whose listing then failed hands the turn back
// (Options.TurnFailed): held, the others would leave their listings to it for most of
// every interval, and a replica that cannot list (its own credentials, its own route to
// the store) would hold every turn whose tick came first.
func TestATurnWhoseListingFailedIsHandedBack(t *testing.T) {
	e := setup(t, false)
	ticks := make(chan time.Time)
	s := e.source(t, "in/", ticks)
	var handedBack atomic.Int32
	s.o.Turn = func(context.Context, time.Duration) bool { return true }
	s.o.TurnFailed = func(context.Context) { handedBack.Add(1) }
	back := func() int32 { return handedBack.Load() }
	k := newSink()
	discover(t, s, k)
	k.await(t, "the first listing", func() bool { return k.listings() == 1 })
	ticks <- time.Now()
	k.await(t, "the second listing", func() bool { return k.listings() == 2 })
	if back() != 0 {
		t.Fatal("a turn whose listing succeeded was handed back")
	}
	if err := e.c.RemoveBucket(context.Background(), bucket); err != nil { // every listing now fails
		t.Fatal(err)
	}
	ticks <- time.Now()
	k.await(t, "the failed listing's turn handed back", func() bool { return back() == 1 })
	if k.listings() != 2 {
		t.Fatalf("%d listings: the failed one completed", k.listings())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
