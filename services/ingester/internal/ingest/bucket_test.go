package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

// The runner over a real bucket (versitygw) and a real PostgreSQL: what finishing
// committed objects behind the workers must keep true.

const testBucket = "input"

type bucketRig struct {
	c      *minio.Client
	pool   *pgxpool.Pool // the test's own
	runner *Runner       // the last one run started
	runs   *pgxpool.Pool // the last one run started's pool
	gw     *s3test.Gateway
	slots  int // the runners' load slots (0: no bound)
}

func newBucketRig(t testing.TB) *bucketRig {
	s3test.Require(t, false)
	gw := s3test.StartGateway(t, s3test.Options{}, testBucket)
	return &bucketRig{c: gw.Client(t), pool: migratedPool(t), gw: gw}
}

func (b *bucketRig) source(t testing.TB) *s3.Source {
	t.Helper()
	return b.sourceOn(t, b.c)
}

// sourceOn is the rig's bucket source read through c.
func (b *bucketRig) sourceOn(t testing.TB, c *minio.Client) *s3.Source {
	t.Helper()
	s, err := s3.New(c, s3.Options{Location: objstore.Location{Bucket: testBucket, Prefix: "in/"},
		ArchivePrefix: "archive/", FailedPrefix: "failed/", ListInterval: time.Hour, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (b *bucketRig) put(t testing.TB, key, body string) {
	t.Helper()
	if _, err := b.c.PutObject(context.Background(), testBucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (b *bucketRig) keys(t testing.TB, prefix string) (n int) {
	t.Helper()
	for o := range b.c.ListObjects(context.Background(), testBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

func (b *bucketRig) count(t testing.TB, query string) (n int) {
	t.Helper()
	if err := b.pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// run starts a runner over src (the first listing finds what is in the bucket); stop
// begins its shutdown and waits for Run to return.
func (b *bucketRig) run(t testing.TB, src source.Source, opt Options) (m *Metrics, stop func()) {
	// The runner's pool is sized as main sizes it (its claims hold connections).
	cfg := b.pool.Config().Copy()
	cfg.MaxConns = int32(opt.Workers + 2 + ClaimsBehind)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.runs = pool
	q := queue.New(src, 0)
	m = NewMetrics(metrics.NewRegistry(), q, pool)
	r := New(opt, zerolog.Nop(), src, q, &load.Loader{Pool: pool, Instance: "t", MaxRejected: 100, Retry: opt.Retry, LoadSlots: b.slots}, m)
	b.runner = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			<-done
			pool.Close()
		}
	}
	t.Cleanup(stop)
	return m, stop
}

// gated is a bucket source whose Finish waits for a token (or its context's end) before
// it finishes: the tests hold finishes back to see what the runner does meanwhile.
type gated struct {
	*s3.Source
	bound          int
	tokens         chan struct{}
	entered, ended atomic.Int64 // Finish calls begun, and returned after finishing
	fail           atomic.Int64 // Finish calls still to fail as the network would (then they finish)
}

func (g *gated) FinishBehind() int { return g.bound }

func (g *gated) Finish(ctx context.Context, fs []source.Finish) []error {
	g.entered.Add(1)
	select {
	case <-g.tokens:
		defer g.ended.Add(1)
		if g.fail.Add(-1) >= 0 {
			errs := make([]error, len(fs))
			for i := range errs {
				errs[i] = fmt.Errorf("finish: %w", syscall.ECONNRESET)
			}
			return errs
		}
		return g.Source.Finish(ctx, fs)
	case <-ctx.Done():
		errs := make([]error, len(fs))
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return errs
	}
}

func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Objects committed but not finished when the shutdown grace runs out stay in the input,
// each committed once; the next start lists them, finds them in the ledger (a no-op,
// nothing loaded twice) and finishes them.
func TestCommittedObjectsLeftUnfinishedAtShutdownAreFinishedByTheNextStart(t *testing.T) {
	b := newBucketRig(t)
	for i := range 5 {
		b.put(t, "in/f"+string(rune('a'+i))+".csv", csvBody("books", "toys", "garden"))
	}
	g := &gated{Source: b.source(t), bound: 4, tokens: make(chan struct{})}
	opt := Options{MaxBatchRecords: 10000, Workers: 2, Grace: 100 * time.Millisecond}
	_, stop := b.run(t, g, opt)
	waitLedger(t, b.pool, 5)
	await(t, "a finish begun", func() bool { return g.entered.Load() > 0 })
	stop() // no token ever comes: the grace runs out with every finish still queued
	if in, arch := b.keys(t, "in/"), b.keys(t, "archive/"); in != 5 || arch != 0 || g.ended.Load() != 0 {
		t.Fatalf("after the first run: %d in the input, %d archived, %d finishes done; want 5, 0, 0", in, arch, g.ended.Load())
	}

	m, _ := b.run(t, b.source(t), opt)
	await(t, "the input emptied by the next start", func() bool { return b.keys(t, "in/") == 0 })
	if arch := b.keys(t, "archive/"); arch != 5 {
		t.Fatalf("%d archived, want 5", arch)
	}
	if n := b.count(t, "SELECT count(*) FROM events"); n != 15 {
		t.Fatalf("%d events, want 15 (every row once)", n)
	}
	if n := b.count(t, "SELECT count(*) FROM ingested_files"); n != 5 {
		t.Fatalf("%d ledger rows, want 5", n)
	}
	if n := testutil.ToFloat64(m.Files.WithLabelValues(load.OutcomeAlreadyCommitted)); n != 5 {
		t.Fatalf("next start: %v files found already committed, want 5", n)
	}
}

// A shutdown lets the finishes queued behind the workers run (within the grace): once Run
// returns, every committed object is archived and counted.
func TestShutdownDrainsTheQueuedFinishes(t *testing.T) {
	b := newBucketRig(t)
	for i := range 5 {
		b.put(t, "in/f"+string(rune('a'+i))+".csv", csvBody("books"))
	}
	g := &gated{Source: b.source(t), bound: 4, tokens: make(chan struct{})}
	m, stop := b.run(t, g, Options{MaxBatchRecords: 10000, Workers: 2, Grace: time.Minute})
	waitLedger(t, b.pool, 5)
	await(t, "a finish begun", func() bool { return g.entered.Load() > 0 })
	stopped := make(chan struct{})
	go func() { defer close(stopped); stop() }()
	close(g.tokens) // only once the shutdown has begun
	<-stopped
	if in, arch := b.keys(t, "in/"), b.keys(t, "archive/"); in != 0 || arch != 5 {
		t.Fatalf("after shutdown: %d in the input, %d archived; want 0, 5", in, arch)
	}
	if n := testutil.ToFloat64(m.Files.WithLabelValues(load.OutcomeIngested)); n != 5 {
		t.Fatalf("%v files counted ingested, want 5", n)
	}
}

// The finishes waiting behind the workers are bounded: with finishes held back, the
// committed but unfinished objects never exceed those being finished (one batch a
// finisher), the queue's bound and the one batch each worker holds while it waits for
// room (and the runner's connections, which their claims hold, bound them too). Every
// object ends archived, each once.
func TestCommittedButUnfinishedObjectsAreBounded(t *testing.T) {
	b := newBucketRig(t)
	const objects, bound, workers = 8, 1, 1
	for i := range objects {
		b.put(t, "in/f"+string(rune('a'+i))+".csv", csvBody("books"))
	}
	g := &gated{Source: b.source(t), bound: bound, tokens: make(chan struct{})}
	b.run(t, g, Options{MaxBatchRecords: 10000, MaxBatchFiles: 1, Workers: workers, Grace: time.Minute})
	const most = finishers + bound + workers
	for finished := 0; finished < objects; finished++ {
		await(t, "a commit", func() bool { return b.count(t, "SELECT count(*) FROM ingested_files") > finished })
		for range 5 { // a queue without a bound would run past it meanwhile
			if n := b.count(t, "SELECT count(*) FROM ingested_files"); n > finished+most {
				t.Fatalf("%d objects committed while %d are finished: more than %d wait to be finished", n, finished, most)
			}
			time.Sleep(20 * time.Millisecond)
		}
		g.tokens <- struct{}{}
		await(t, "a finish", func() bool { return int(g.ended.Load()) > finished })
	}
	await(t, "every object archived", func() bool { return b.keys(t, "archive/") == objects && b.keys(t, "in/") == 0 })
	if in, n := b.keys(t, "in/"), b.count(t, "SELECT count(*) FROM events"); in != 0 || n != objects {
		t.Fatalf("%d objects left in the input, %d events; want 0, %d", in, n, objects)
	}
}

// Batches waiting behind the workers for their finish hold their claims' sessions, and
// however many wait, two of the pool's sessions stay free for the health check's ping,
// the partition maintainer and the reaper (with the pool at Workers + 2, the waiting
// claims took all of them and /readyz reported the database down).
func TestFinishesWaitingBehindTheWorkersLeaveSessionsForTheHealthCheck(t *testing.T) {
	b := newBucketRig(t)
	const objects, workers = 10, 1
	for i := range objects {
		b.put(t, "in/f"+string(rune('a'+i))+".csv", csvBody("books"))
	}
	g := &gated{Source: b.source(t), bound: maxQueued, tokens: make(chan struct{})}
	b.run(t, g, Options{MaxBatchRecords: 10000, MaxBatchFiles: 1, Workers: workers, Grace: time.Minute})
	// Saturated: two batches in the finishers, maxQueued queued, and the worker's last
	// commit waiting for room in the queue.
	const most = finishers + maxQueued + workers
	await(t, "the queue behind the workers full, or the pool exhausted", func() bool {
		st := b.runs.Stat()
		return st.AcquiredConns() == st.MaxConns() ||
			b.count(t, "SELECT count(*) FROM ingested_files") == most && g.entered.Load() == finishers
	})
	st := b.runs.Stat()
	if free := st.MaxConns() - st.AcquiredConns(); free < 2 {
		t.Fatalf("%d of the pool's %d sessions held while finishes wait behind the workers: %d free, want 2 for the health check and maintenance",
			st.AcquiredConns(), st.MaxConns(), free)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.runs.Ping(ctx); err != nil {
		t.Fatalf("the health check's ping: %v", err)
	}
	close(g.tokens)
	await(t, "every object archived", func() bool { return b.keys(t, "archive/") == objects && b.keys(t, "in/") == 0 })
}

// A finish behind the workers that fails is retried as on them (stage archive): the
// object is taken again, the ledger makes its load a no-op, and it is finished; every
// row is committed once.
func TestAFailedFinishBehindTheWorkersIsRetriedAndLoadsNothingTwice(t *testing.T) {
	b := newBucketRig(t)
	for i := range 3 {
		b.put(t, "in/f"+string(rune('a'+i))+".csv", csvBody("books", "toys"))
	}
	g := &gated{Source: b.source(t), bound: 4, tokens: make(chan struct{})}
	close(g.tokens)
	g.fail.Store(1)
	m, _ := b.run(t, g, Options{MaxBatchRecords: 10000, Workers: 1, Grace: time.Minute})
	// Copied to the archive, then deleted: wait for both.
	await(t, "every object archived", func() bool { return b.keys(t, "archive/") == 3 && b.keys(t, "in/") == 0 })
	if in, n, files := b.keys(t, "in/"), b.count(t, "SELECT count(*) FROM events"), b.count(t, "SELECT count(*) FROM ingested_files"); in != 0 || n != 6 || files != 3 {
		t.Fatalf("%d left in the input, %d events, %d ledger rows; want 0, 6, 3", in, n, files)
	}
	if n := testutil.ToFloat64(m.Retries.WithLabelValues("archive")); n != 3 {
		t.Fatalf("%v archive retries, want 3 (one batch of three failed once)", n)
	}
	if n := testutil.ToFloat64(m.Files.WithLabelValues(load.OutcomeAlreadyCommitted)); n != 3 {
		t.Fatalf("%v files found already committed on the retry, want 3", n)
	}
}

// /healthz's check fails while a finish behind the workers has made no progress for
// longer than StuckAfter (a hung archive request): its batch's claim is held meanwhile,
// so no replica finishes the object either, and only a restart releases it. The worker
// that committed the batch is idle by then, so its own clock says nothing.
func TestHealthFailsWhileAFinishBehindTheWorkersIsStuck(t *testing.T) {
	b := newBucketRig(t)
	b.put(t, "in/fa.csv", csvBody("books"))
	c := memory.NewClock()
	g := &gated{Source: b.source(t), bound: 4, tokens: make(chan struct{})}
	b.run(t, g, Options{MaxBatchRecords: 10000, Workers: 1, Grace: time.Second, StuckAfter: time.Minute, Now: c.Now})
	waitLedger(t, b.pool, 1)
	await(t, "the finish begun", func() bool { return g.entered.Load() > 0 })
	if err := b.runner.Healthy(); err != nil {
		t.Fatalf("healthy as the finish begins: %v", err)
	}
	c.Advance(2 * time.Minute)
	if err := b.runner.Healthy(); err == nil || !strings.Contains(err.Error(), "no progress") {
		t.Fatalf("a finish stuck for 2m with a 1m bound: %v", err)
	}
	close(g.tokens)
	await(t, "the object archived", func() bool { return b.keys(t, "archive/") == 1 && b.keys(t, "in/") == 0 })
	await(t, "healthy again", func() bool { return b.runner.Healthy() == nil })
}

// A committed batch's claim lost while its finish waits (its session ended: the idle
// session timeout, a reaper, a failover) lets another replica take the objects: it
// finds them in the ledger and finishes them, and the first replica's finish, let go
// afterwards, finds them gone. Every row is committed once and every object archived once.
func TestAClaimLostWhileItsFinishWaitsLoadsNothingTwice(t *testing.T) {
	b := newBucketRig(t)
	const objects = 3
	for i := range objects {
		b.put(t, "in/f"+string(rune('a'+i))+".csv", csvBody("books", "toys"))
	}
	g := &gated{Source: b.source(t), bound: 4, tokens: make(chan struct{})}
	opt := Options{MaxBatchRecords: 10000, Workers: 1, Grace: time.Minute}
	first, _ := b.run(t, g, opt)
	waitLedger(t, b.pool, objects)
	await(t, "the finish begun", func() bool { return g.entered.Load() > 0 })
	// End the sessions holding the objects' advisory locks: the claims are lost.
	if n := b.count(t, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
		SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()) l`); n == 0 {
		t.Fatal("no session held an advisory lock while the finish waited")
	}
	second, _ := b.run(t, b.source(t), opt)
	await(t, "the second replica finishing the objects", func() bool {
		return b.keys(t, "in/") == 0 && b.keys(t, "archive/") == objects
	})
	close(g.tokens)
	await(t, "the first replica's finish settled", func() bool { return g.ended.Load() > 0 })
	if n := b.count(t, "SELECT count(*) FROM events"); n != 2*objects {
		t.Fatalf("%d events, want %d (every row once)", n, 2*objects)
	}
	if n := b.count(t, "SELECT count(*) FROM ingested_files"); n != objects {
		t.Fatalf("%d ledger rows, want %d", n, objects)
	}
	if arch := b.keys(t, "archive/"); arch != objects {
		t.Fatalf("%d archived, want %d (each once)", arch, objects)
	}
	if n := testutil.ToFloat64(second.Files.WithLabelValues(load.OutcomeAlreadyCommitted)); n != objects {
		t.Fatalf("the second replica found %v files already committed, want %d", n, objects)
	}
	await(t, "the first replica's queue settled", func() bool {
		return testutil.ToFloat64(first.Files.WithLabelValues(load.OutcomeIngested)) == objects
	})
}

// A bucket that stops answering while its objects wait to be read, for longer than the
// objects' attempts allow (12 failed reads of 4 objects: one of them at least failed more
// often than its 2 attempts allow), costs none of them an
// attempt: once the gateway is back every object is loaded once and archived, none is
// in the failed prefix, and none is parked. The objects are listed and claimed with the
// gateway up, then held before their reads by the test holding the one load slot; the
// gateway is killed before the slot is let go.
func TestABucketDownLongerThanTheAttemptsAllowMovesNothingAside(t *testing.T) {
	b := newBucketRig(t)
	for i := range 4 {
		b.put(t, fmt.Sprintf("in/o%d.csv", i), csvBody("books", "toys"))
	}
	ctx := context.Background()
	hold, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	if _, err := hold.Exec(ctx, "SELECT pg_advisory_lock($1::int, 0)", load.SlotKey); err != nil {
		t.Fatal(err)
	}
	// One request a read, no retries inside the client: each failure reaches the runner.
	c, err := minio.New(strings.TrimPrefix(b.gw.Endpoint(), "http://"), &minio.Options{Creds: credentials.NewEnvAWS(),
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	src := b.sourceOn(t, c)
	b.slots = 1
	rules := fastRules()
	rules.File.Attempts = 2
	m, _ := b.run(t, src, Options{MaxBatchRecords: 10000, Workers: 1, Grace: time.Minute, Retry: rules})
	await(t, "a batch waiting for the load slot", func() bool {
		return b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'`) == 1
	})
	b.gw.Kill()
	if _, err := hold.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	await(t, "reads failing more often than the attempts allow", func() bool { return testutil.ToFloat64(m.Retries.WithLabelValues("read")) >= 12 })
	if n := b.count(t, "SELECT count(*) FROM ingested_files"); n != 0 {
		t.Fatalf("%d objects committed with the gateway down", n)
	}
	if err := b.gw.Start(); err != nil {
		t.Fatal(err)
	}
	await(t, "every object archived", func() bool { return b.keys(t, "archive/") == 4 && b.keys(t, "in/") == 0 })
	if failed, n, files := b.keys(t, "failed/"), b.count(t, "SELECT count(*) FROM events"), b.count(t, "SELECT count(*) FROM ingested_files WHERE outcome = 'ingested'"); failed != 0 || n != 8 || files != 4 {
		t.Fatalf("%d objects in failed/, %d events, %d ingested ledger rows; want 0, 8, 4", failed, n, files)
	}
	if n := testutil.ToFloat64(m.Aside.WithLabelValues("retries_exhausted")); n != 0 {
		t.Fatalf("%v objects moved aside as retries_exhausted", n)
	}
}
