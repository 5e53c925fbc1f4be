package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

// The backlog of a bucket prefix, against a real S3 server: the input objects the
// ingesters would take (every compression, in sub-folders too), not dotfiles, reason
// files, other names or what was put aside, under the directory mode's metric names.
func TestBucketBacklogCountsTheInputObjectsUnderThePrefix(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "bkt")
	c := g.Client(t)
	ctx := context.Background()
	put := func(key string, size int) time.Time {
		if _, err := c.PutObject(ctx, "bkt", key, strings.NewReader(strings.Repeat("x", size)), int64(size), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		st, err := c.StatObject(ctx, "bkt", key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st.LastModified
	}
	first := put("in/a.csv", 100)
	put("in/sub/b.csv.gz", 20)
	last := put("in/c.csv.zst", 3)
	for _, key := range []string{"in/.d.csv.tmp", "in/.e.csv", "in/notes.txt", "in/f.csv.reason.txt",
		"in/archive/a.1.csv", "in/failed/g.2.csv", "archive/in/a.3.csv", "failed/in/h.4.csv", "other/i.csv"} {
		put(key, 1000)
	}
	now := last.Add(time.Hour)
	// The ingesters' archive and failed prefixes inside their input prefix.
	b := &Backlog{Bucket: c, Location: objstore.Location{Bucket: "bkt", Prefix: "in/"}, ArchivePrefix: "in/archive/", FailedPrefix: "in/failed/",
		Now: func() time.Time { return now }}
	m := collect(t, b)
	for key, want := range map[string]float64{
		`ecomstream_collector_backlog_files`:                       3,
		`ecomstream_collector_backlog_bytes`:                       123,
		`ecomstream_collector_backlog_oldest_age_seconds`:          now.Sub(first).Seconds(),
		`ecomstream_collector_backlog_errors_total`:                0,
		`ecomstream_collector_scrape_success{collector="backlog"}`: 1,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}

	// The whole bucket as the prefix: the archive and failed prefixes are still not backlog.
	whole := collect(t, &Backlog{Bucket: c, Location: objstore.Location{Bucket: "bkt"}, Now: func() time.Time { return now }})
	// in/a, in/sub/b, in/c, other/i, and in/archive/a.1, in/failed/g.2, which an ingester
	// of the whole bucket takes too (its archive and failed prefixes are archive/, failed/).
	if got := whole[`ecomstream_collector_backlog_files`]; got != 6 {
		t.Errorf("whole bucket: %v pending objects, want 6", got)
	}
}

// The collector counts what the ingesters take, by their rule (s3.Source.accept): every
// input name under the prefix that is not under INGESTER_S3_ARCHIVE_PREFIX or
// _FAILED_PREFIX, whatever those are set to, and nothing else. An archive prefix set
// inside the input prefix (or a whole-bucket source with archive prefix done/) holds
// objects already committed: counted, the backlog would only grow and the stale-backlog
// alert fire forever. And a folder named archive/ under the input prefix, which the
// ingesters do take with their default prefixes, is backlog.
func TestBucketBacklogCountsWhatTheIngestersTakeWithTheirArchiveAndFailedPrefixes(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "bkt")
	c := g.Client(t)
	ctx := context.Background()
	// Each object's size is a power of two of its own, so the bytes say which were counted.
	keys := []string{"in/a.csv", "in/archive/b.csv", "in/failed/c.csv", "in/done/d.1.csv", "in/rejected/e.2.csv",
		"done/f.3.csv", "rejected/g.4.csv", "archive/h.5.csv", "failed/i.6.csv", "j.csv"}
	size := map[string]int{}
	for i, key := range keys {
		size[key] = 1 << i
		if _, err := c.PutObject(ctx, "bkt", key, strings.NewReader(strings.Repeat("x", size[key])), int64(size[key]), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	for _, tc := range []struct {
		prefix, archive, failed string
		want                    []string
	}{
		{"in/", "archive/", "failed/", []string{"in/a.csv", "in/archive/b.csv", "in/failed/c.csv", "in/done/d.1.csv", "in/rejected/e.2.csv"}},
		{"in/", "in/done/", "in/rejected/", []string{"in/a.csv", "in/archive/b.csv", "in/failed/c.csv"}},
		{"in/", "in/archive/", "in/failed/", []string{"in/a.csv", "in/done/d.1.csv", "in/rejected/e.2.csv"}},
		{"", "done/", "rejected/", []string{"in/a.csv", "in/archive/b.csv", "in/failed/c.csv", "in/done/d.1.csv", "in/rejected/e.2.csv",
			"archive/h.5.csv", "failed/i.6.csv", "j.csv"}},
		{"", "archive/", "failed/", []string{"in/a.csv", "in/archive/b.csv", "in/failed/c.csv", "in/done/d.1.csv", "in/rejected/e.2.csv",
			"done/f.3.csv", "rejected/g.4.csv", "j.csv"}},
	} {
		b := &Backlog{Bucket: c, Location: objstore.Location{Bucket: "bkt", Prefix: tc.prefix},
			ArchivePrefix: tc.archive, FailedPrefix: tc.failed}
		var bytes int
		for _, k := range tc.want {
			bytes += size[k]
		}
		m := collect(t, b)
		if m[`ecomstream_collector_backlog_files`] != float64(len(tc.want)) || m[`ecomstream_collector_backlog_bytes`] != float64(bytes) {
			t.Errorf("prefix %q, archive %q, failed %q: %v objects of %v bytes pending, want %v (%d objects of %d bytes)", tc.prefix, tc.archive, tc.failed,
				m[`ecomstream_collector_backlog_files`], m[`ecomstream_collector_backlog_bytes`], tc.want, len(tc.want), bytes)
		}
	}
}

// A listing that fails (the server down) is counted, logged and said in scrape_success,
// and the backlog series are left out rather than served stale or as zero, as the
// directory mode does with an unreadable directory; the next listing that works brings
// them back.
func TestBucketBacklogListingErrorsAreCountedAndTheSeriesLeftOut(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "bkt")
	c := g.Client(t)
	if _, err := c.PutObject(context.Background(), "bkt", "in/a.csv", strings.NewReader("x\n"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	col := New(zerolog.New(&log), 30*time.Second, &Backlog{Bucket: c, Location: objstore.Location{Bucket: "bkt", Prefix: "in/"}})
	measure := func() map[string]float64 {
		col.MeasureAll(context.Background())
		return flatten(t, col)
	}
	if m := measure(); m[`ecomstream_collector_backlog_files`] != 1 {
		t.Fatalf("before the failure: %v", m)
	}
	g.Kill()
	m := measure()
	if _, ok := m[`ecomstream_collector_backlog_files`]; ok {
		t.Error("backlog_files served while the bucket cannot be listed")
	}
	if m[`ecomstream_collector_scrape_success{collector="backlog"}`] != 0 || m[`ecomstream_collector_backlog_errors_total`] != 1 {
		t.Errorf("after a failed listing: %v", m)
	}
	if !strings.Contains(log.String(), "measurement failed") || !strings.Contains(log.String(), "s3://bkt/in/") {
		t.Errorf("the failure is not logged with the location: %s", log.String())
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	m = measure()
	if m[`ecomstream_collector_backlog_files`] != 1 || m[`ecomstream_collector_scrape_success{collector="backlog"}`] != 1 ||
		m[`ecomstream_collector_backlog_errors_total`] != 1 {
		t.Errorf("after the server came back: %v", m)
	}
}

// A listing slower than the measurement (a large backlog on a slow server; here every
// LIST request is held at a proxy until the test lets it through) is not cut off with
// the measurement: the last listing's values stay served meanwhile, and the slow listing
// runs on to its end, one at a time, and is what the next measurement serves.
func TestABucketListingSlowerThanTheMeasurementKeepsTheBacklogSeries(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "bkt")
	direct := g.Client(t)
	ctx := context.Background()
	put := func(key string) {
		if _, err := direct.PutObject(ctx, "bkt", key, strings.NewReader("x\n"), 2, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	var (
		mu    sync.Mutex
		gate  chan struct{} // nil: LIST requests pass
		lists int
	)
	held := make(chan struct{}, 16) // one per LIST request held
	target, _ := url.Parse(g.Endpoint())
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("list-type") {
			mu.Lock()
			lists++
			wait := gate
			mu.Unlock()
			if wait != nil {
				held <- struct{}{}
				<-wait
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	slow, err := objstore.New(objstore.Settings{Endpoint: srv.URL, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	b := &Backlog{Bucket: slow, Location: objstore.Location{Bucket: "bkt", Prefix: "in/"}, ListTimeout: time.Hour}
	// Two collectors of the same measurement: a patient one, and one whose measurements
	// end long before a held listing does.
	patient, hasty := New(zerolog.Nop(), time.Hour, b), New(zerolog.Nop(), 50*time.Millisecond, b)
	measure := func(c *Collector) map[string]float64 { c.MeasureAll(ctx); return flatten(t, c) }

	put("in/a.csv")
	put("in/b.csv")
	if m := measure(patient); m[`ecomstream_collector_backlog_files`] != 2 {
		t.Fatalf("before the slow listing: %v", m)
	}

	release := make(chan struct{})
	mu.Lock()
	gate = release
	mu.Unlock()
	put("in/c.csv")
	m := measure(hasty)
	<-held // the listing it started is at the server, and stays there
	if got, ok := m[`ecomstream_collector_backlog_files`]; !ok || got != 2 {
		t.Errorf("while a listing runs past the measurement: backlog_files %v (present %v), want the last listing's 2", got, ok)
	}
	if m[`ecomstream_collector_scrape_success{collector="backlog"}`] != 1 || m[`ecomstream_collector_backlog_errors_total`] != 0 {
		t.Errorf("while a listing runs past the measurement: %v", m)
	}
	// A second measurement while it is held starts no second listing.
	if m := measure(hasty); m[`ecomstream_collector_backlog_files`] != 2 {
		t.Errorf("a second measurement meanwhile: %v", m)
	}

	mu.Lock()
	gate = nil
	mu.Unlock()
	close(release)
	if m := measure(patient); m[`ecomstream_collector_backlog_files`] != 3 || m[`ecomstream_collector_backlog_errors_total`] != 0 {
		t.Errorf("after the slow listing: %v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	// The first listing, the held one (not cut off and started again), and at most the
	// patient measurement's own.
	if lists > 3 {
		t.Errorf("%d LIST requests; the held listing was started again", lists)
	}
}
