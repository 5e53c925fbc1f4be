package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

// BenchmarkBucketPipeline measures, in one run and against one PostgreSQL at default
// durability (scripts/pg-local.sh: fsync and synchronous_commit on):
//
//   - drain rate of one ingester over the same files from a directory and from the
//     bucket, and of three ingesters over the bucket (reported as ratios), twice: with
//     every file in place before the ingesters start (placed-*, the headline) and with
//     the bench putting them in place while the ingesters run (see "Two measurements");
//
//   - PUT -> commit latency (committed_at - the object's mtime) at about 10,000 rows/s
//     (four generators of 25 files of 100 rows a second),
//     with notifications and with listing only (1 s interval; with the default backoff,
//     INGESTER_RESCAN_MIN_INTERVAL, and without it), beside the directory's.
//
//     go test -run '^$' -bench BucketPipeline -benchtime 1x ./tests/e2e/
//
// Parts: ECOMSTREAM_BENCH_DRAIN_ONLY (drains only), ECOMSTREAM_BENCH_LATENCY_ONLY
// (latency only), ECOMSTREAM_BENCH_LATENCY=notify (modes of the latency part:
// dir,notify,list,list-fixed), ECOMSTREAM_BENCH_LATENCY_DURATION (the latency runs'
// length, a Go duration, default 20s), ECOMSTREAM_BENCH_DRAINS=placed|upload. Diagnosis:
// ECOMSTREAM_BENCH_WAITS (pg_stat_activity samples), ECOMSTREAM_BENCH_CPU_PROFILE=PATH
// (each bucket ingester's CPU profile, PATH.INSTANCE; a drain's overwrite the round
// before's) and ECOMSTREAM_BENCH_LOG (the latency part's ingesters' logs and each
// object's PUT and commit times, the generators' logs).
func BenchmarkBucketPipeline(b *testing.B) {
	s3test.Require(b, true)
	admin := durablePostgres(b)
	n := s3test.StartNATS(b)
	// The gateway as compose runs it: object-created events only (the ingesters' archive
	// copies and deletes are not published; with them, three messages an object went
	// through NATS and the ingesters' consumer, two of them only to be ignored or to drop
	// a key from one replica's queue).
	filter, err := filepath.Abs("../../deploy/versitygw/event-filter.json")
	if err != nil {
		b.Fatal(err)
	}
	gw := s3test.StartGateway(b, s3test.Options{NATSURL: n.URL(), Subject: subject, EventFilter: filter}, bucketName)
	c := gw.Client(b)
	ctx := context.Background()

	// ECOMSTREAM_BENCH_LATENCY_ONLY skips the drains (and their workload): a run of the
	// latency part alone, with ECOMSTREAM_BENCH_LATENCY=notify of one mode, is short
	// enough to repeat A/B under the benchmark lock.
	latencyOnly := os.Getenv("ECOMSTREAM_BENCH_LATENCY_ONLY") != ""

	// The workload: the same files for every drain. 120 files of 2,000 rows (a few
	// seconds a drain) so that a drain's start and end weigh little beside it;
	// ECOMSTREAM_BENCH_FILES sets another number of files.
	const rows = 2000
	files := positiveEnv(b, "ECOMSTREAM_BENCH_FILES", 120)
	if latencyOnly {
		latencyPart(b, admin, gw, n)
		return
	}
	src := b.TempDir()
	gen := start(b, "generator", nil, "--output-dir", src, "--http-addr", freeAddr(b), "--instance", "bench",
		"--max-files", strconv.Itoa(files), "--seed", "5", "--min-records", strconv.Itoa(rows), "--max-records", strconv.Itoa(rows), "--sleep", "0")
	if err := gen.wait(5 * time.Minute); err != nil {
		b.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(src, "*.csv"))
	if len(names) != files {
		b.Fatalf("%d files generated", len(names))
	}
	bodies := make([][]byte, len(names))
	for i, f := range names {
		body, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}

	// Every drain starts from the same server state: the previous drain's database
	// dropped (its pages leave shared_buffers rather than be written out by the next
	// drain's backends) and a checkpoint (else one falls at a different point of each
	// drain, and the pages first written after it cost a full-page image in the WAL).
	phase := 0
	newDB := func() string {
		if phase > 0 {
			resetServer(b, admin, fmt.Sprintf("bench_%d", phase))
		}
		phase++
		return createDB(b, admin, fmt.Sprintf("bench_%d", phase))
	}
	started := func(p *proc) { awaitStarted(b, p) }
	// startedAt is the time of p's "ingester started" record (its own clock, this host's).
	startedAt := func(p *proc) time.Time {
		started(p)
		for _, l := range p.log.all() {
			var r struct {
				Time    time.Time `json:"time"`
				Message string    `json:"message"`
			}
			if json.Unmarshal([]byte(l), &r) == nil && r.Message == "ingester started" {
				return r.Time
			}
		}
		b.Fatal("no time in the ingester started record")
		return time.Time{}
	}
	// committedRate waits until every file is in the ledger and returns the drain's
	// rates (drainRates).
	committedRate := func(url string, t0 time.Time) (r drainRates) {
		p := pool(b, url)
		defer p.Close()
		stopWaits := sampleWaits(b, url)
		defer stopWaits()
		await(b, "drained", func() bool {
			var n int64
			return p.QueryRow(ctx, "SELECT count(*) FROM ingested_files").Scan(&n) == nil && n == int64(files)
		})
		var first, last time.Time
		var firstFiles int
		if err := p.QueryRow(ctx, `WITH f AS (SELECT xmin, committed_at FROM ingested_files ORDER BY committed_at LIMIT 1)
			SELECT (SELECT committed_at FROM f), max(committed_at), count(*) FILTER (WHERE xmin = (SELECT xmin FROM f))
			FROM ingested_files`).Scan(&first, &last, &firstFiles); err != nil {
			b.Fatal(err)
		}
		var p10, p90 time.Time
		var n10, n90 int
		if err := p.QueryRow(ctx, `WITH c AS (SELECT committed_at, row_number() OVER (ORDER BY committed_at) AS n FROM ingested_files)
			SELECT a.committed_at, a.n, z.committed_at, z.n FROM c a, c z
			WHERE a.n = greatest(1, $1::int / 10) AND z.n = greatest(1, $1::int * 9 / 10)`, files).Scan(&p10, &n10, &p90, &n90); err != nil {
			b.Fatal(err)
		}
		if p90.After(p10) {
			r.steady = float64((n90-n10)*rows) / p90.Sub(p10).Seconds()
		}
		r.rate = float64((files-firstFiles)*rows) / last.Sub(first).Seconds()
		r.fromStart = float64(files*rows) / last.Sub(t0).Seconds()
		return r
	}
	drained := func(url string, t0 time.Time) float64 {
		p := pool(b, url)
		defer p.Close()
		stopWaits := sampleWaits(b, url)
		await(b, "drained", func() bool {
			var n int64
			return p.QueryRow(ctx, "SELECT count(*) FROM ingested_files").Scan(&n) == nil && n == int64(files)
		})
		rate := float64(files*rows) / time.Since(t0).Seconds()
		stopWaits()
		return rate
	}
	upload := func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, f := range names {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := c.FPutObject(ctx, bucketName, "incoming/"+filepath.Base(f), f, minio.PutObjectOptions{}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	// Two measurements of each drain; which is which:
	//
	//   - "upload" (dir-rows/s, bucket-rows/s, bucket3-rows/s, bucket/dir, three/one):
	//     the ingesters run first, then the bench puts the files in place (a directory:
	//     written and renamed; the bucket: 8 PUTs at once), timed from the first put to
	//     the last commit. The producer's work is inside the window, on the same 2 cores:
	//     120 PUTs cost the S3 server far more CPU than 120 renames cost the kernel.
	//
	//   - "placed" (placed-*): every file is in place before the ingesters start (the
	//     three replicas start together); the rows committed after the first transaction,
	//     timed from its commit to the last one (the ledger's committed_at), the same two
	//     events for both sources. Timed from the ingester's start instead (logged beside
	//     it), the directory's figure includes its settle wait (INGESTER_SETTLE, 1 s: files
	//     found by a listing at start are read once still, where a bucket's objects are
	//     whole at once), which is no part of its rate.
	//
	// The headline is placed: the targets compare the ingester's rate reading a
	// bucket with its rate reading a directory, and three ingesters with one. With the
	// producer in the window, bucket/dir also charges the bucket for the uploads (which
	// run on other hosts in production), and three/one is bounded by how fast 120 objects
	// arrive. The ingester's own costs of a bucket (its listings, GETs, archive copies and
	// deletes, the S3 server's CPU for each, here on the same 2 cores) stay in the placed
	// window.
	placeDir := func(dir string) {
		for i, f := range names {
			tmp := filepath.Join(dir, "."+filepath.Base(f)+".tmp")
			if err := os.WriteFile(tmp, bodies[i], 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, filepath.Base(f))); err != nil {
				b.Fatal(err)
			}
		}
	}
	// drainDir is one ingester's rate over the files put into a directory.
	drainDir := func() float64 {
		url := newDB()
		d := newDirs(b)
		ing := startIngester(b, url, d, fmt.Sprintf("bench-dir-%d", phase))
		started(ing)
		t0 := time.Now()
		placeDir(d.In)
		rate := drained(url, t0)
		_ = ing.stop()
		return rate
	}
	// drainPlacedDir is one ingester's rate over the files in a directory before it
	// starts.
	drainPlacedDir := func() drainRates {
		url := newDB()
		d := newDirs(b)
		placeDir(d.In)
		ing := startIngester(b, url, d, fmt.Sprintf("bench-pdir-%d", phase))
		t0 := startedAt(ing)
		r := committedRate(url, t0)
		_ = ing.stop()
		return r
	}
	// bucketIngesters starts replicas ingesters on the bucket at once. For a comparison
	// of settings, ECOMSTREAM_BENCH_ARGS_ONE and ECOMSTREAM_BENCH_ARGS_THREE add
	// arguments (space-separated) to the single ingester's and to each of the three's.
	bucketIngesters := func(url string, replicas int, name string) []*proc {
		var ings []*proc
		extra := strings.Fields(os.Getenv("ECOMSTREAM_BENCH_ARGS_ONE"))
		if replicas > 1 {
			extra = strings.Fields(os.Getenv("ECOMSTREAM_BENCH_ARGS_THREE"))
		}
		for i := range replicas {
			args := append([]string{"--nats-url", n.URL(), "--nats-subject", subject}, extra...)
			ings = append(ings, startBucketIngester(b, gw, url, fmt.Sprintf("%s-%d-%d-%d", name, replicas, phase, i), args...))
		}
		return ings
	}
	stopBucket := func(ings []*proc) {
		for _, p := range ings {
			_ = p.stop()
		}
		if left := keysUnder(b, c, "incoming/"); left != 0 {
			b.Fatalf("%d objects left in incoming/", left)
		}
	}
	// drainBucket is the rate of replicas ingesters over the same files put into the bucket.
	drainBucket := func(replicas int) float64 {
		url := newDB()
		ings := bucketIngesters(url, replicas, "bench-b")
		for _, p := range ings {
			started(p)
		}
		t0 := time.Now()
		upload()
		rate := drained(url, t0)
		stopBucket(ings)
		return rate
	}
	// drainPlacedBucket is the rate of replicas ingesters started together over the
	// objects in the bucket before they start (fromStart from the first replica's start).
	drainPlacedBucket := func(replicas int) drainRates {
		url := newDB()
		upload()
		ingesterURL(b, url) // migrated before the replicas start, not by the first of them
		stats := startDrainStats(b, admin)
		ings := bucketIngesters(url, replicas, "bench-pb")
		var t0 time.Time
		for _, p := range ings {
			if t := startedAt(p); t0.IsZero() || t.Before(t0) {
				t0 = t
			}
		}
		r := committedRate(url, t0)
		m := stats.scrapeAll(ings)
		stopBucket(ings)
		stats.report(fmt.Sprintf("placed bucket, %d replicas, %.0f rows/s (steady %.0f)", replicas, r.rate, r.steady), url, ings, m)
		return r
	}

	// Drain: rounds of directory, bucket and three ingesters on the bucket, alternated so
	// that the machine's noise (2 cores shared with other work) falls on all three alike;
	// each figure is the median of its rounds, each ratio the ratio of the medians.
	// ECOMSTREAM_BENCH_ROUNDS sets another number of rounds; ECOMSTREAM_BENCH_DRAIN_ONLY
	// skips the latency part; ECOMSTREAM_BENCH_DRAINS=placed (or upload) runs only those
	// drains.
	rounds := positiveEnv(b, "ECOMSTREAM_BENCH_ROUNDS", 3)
	which := os.Getenv("ECOMSTREAM_BENCH_DRAINS")
	if which != "" && which != "placed" && which != "upload" {
		b.Fatalf("ECOMSTREAM_BENCH_DRAINS=%q: placed, upload or empty (both)", which)
	}
	var dirRates, bucketRates, threeRates []float64
	// placed: directory, bucket, three on the bucket; from the first commit, and from the
	// (first) ingester's start.
	var placed, fromStart, steady [3][]float64
	placedDrains := []func() drainRates{drainPlacedDir,
		func() drainRates { return drainPlacedBucket(1) }, func() drainRates { return drainPlacedBucket(3) }}
	for range rounds {
		if which != "upload" {
			for i, drain := range placedDrains {
				r := drain()
				placed[i], fromStart[i], steady[i] = append(placed[i], r.rate), append(fromStart[i], r.fromStart), append(steady[i], r.steady)
			}
		}
		if which != "placed" {
			dirRates = append(dirRates, drainDir())
			bucketRates = append(bucketRates, drainBucket(1))
			threeRates = append(threeRates, drainBucket(3))
		}
	}
	if which != "upload" {
		b.Logf("placed drain rows/s by round: directory %.0f, bucket %.0f, three on the bucket %.0f", placed[0], placed[1], placed[2])
		b.Logf("the same from the ingester's start (the directory's include its settle wait): %.0f, %.0f, %.0f", fromStart[0], fromStart[1], fromStart[2])
		dirRate, bucketRate, threeRate := median(placed[0]), median(placed[1]), median(placed[2])
		b.ReportMetric(dirRate, "placed-dir-rows/s")
		b.ReportMetric(bucketRate, "placed-bucket-rows/s")
		b.ReportMetric(threeRate, "placed-bucket3-rows/s")
		b.ReportMetric(bucketRate/dirRate, "placed-bucket/dir")
		b.ReportMetric(threeRate/bucketRate, "placed-three/one")
		// Each round's drains ran back to back: the median of the rounds' own ratios
		// weighs less what changed on the host between rounds.
		b.ReportMetric(medianRatio(placed[2], placed[1]), "placed-three/one-by-round")
		b.ReportMetric(medianRatio(placed[1], placed[0]), "placed-bucket/dir-by-round")
		// Between the 10th and 90th percentile commits: what the replicas sustain, without
		// the drain's start and tail (a drain of 600 objects lasts ~12 s).
		b.Logf("steady rows/s (10th to 90th percentile commit) by round: directory %.0f, bucket %.0f, three on the bucket %.0f", steady[0], steady[1], steady[2])
		b.ReportMetric(medianRatio(steady[2], steady[1]), "placed-three/one-steady-by-round")
	}
	if which != "placed" {
		b.Logf("drain rows/s by round: directory %.0f, bucket %.0f, three on the bucket %.0f", dirRates, bucketRates, threeRates)
		dirRate, bucketRate, threeRate := median(dirRates), median(bucketRates), median(threeRates)
		b.ReportMetric(dirRate, "dir-rows/s")
		b.ReportMetric(bucketRate, "bucket-rows/s")
		b.ReportMetric(threeRate, "bucket3-rows/s")
		b.ReportMetric(bucketRate/dirRate, "bucket/dir")
		b.ReportMetric(threeRate/bucketRate, "three/one")
	}
	if os.Getenv("ECOMSTREAM_BENCH_DRAIN_ONLY") != "" {
		return
	}
	latencyPart(b, admin, gw, n)
}

// drainRates are a placed drain's rows per second: rate from the first transaction's
// commit to the last one, over the rows committed after the first (the ledger's
// committed_at, written by the statement before COMMIT; a transaction's files share its
// xmin); fromStart over all rows from the (first) ingester's start; steady between the
// commits of the 10th and the 90th percentile file, leaving out the drain's start
// (replicas starting, their first listings) and its tail (the last batches, fewer than
// the workers).
type drainRates struct{ rate, fromStart, steady float64 }

// startBucketIngester starts an ingester of the bench's bucket on the database at url,
// run as the ingester's role on a database migrated before it (not by the first of
// several replicas). ECOMSTREAM_BENCH_CPU_PROFILE=PATH: it writes its CPU profile to
// PATH.INSTANCE (flushed at its SIGTERM).
func startBucketIngester(b *testing.B, gw *s3test.Gateway, url, instance string, extra ...string) *proc {
	args := append([]string{"--source", "s3://" + bucketName + "/incoming/", "--http-addr", freeAddr(b),
		"--instance", instance, "--rescan-interval", "1s", "--migrate-at-start=false"}, extra...)
	env := append(gw.Env(), "DATABASE_URL="+ingesterURL(b, url))
	if v := os.Getenv("ECOMSTREAM_BENCH_CPU_PROFILE"); v != "" {
		env = append(env, "INGESTER_CPU_PROFILE="+v+"."+instance)
	}
	return start(b, "ingester", env, args...)
}

// latencyPart is BenchmarkBucketPipeline's PUT -> commit latency at the stress rate, in
// the modes ECOMSTREAM_BENCH_LATENCY names (comma-separated: dir, notify, list,
// list-fixed; empty: all four, in that order), each against a new database.
func latencyPart(b *testing.B, admin string, gw *s3test.Gateway, n *s3test.NATS) {
	ctx := context.Background()
	modes := []string{"dir", "notify", "list", "list-fixed"}
	if v := os.Getenv("ECOMSTREAM_BENCH_LATENCY"); v != "" {
		modes = strings.Split(v, ",")
		for _, m := range modes {
			if !slices.Contains([]string{"dir", "notify", "list", "list-fixed"}, m) {
				b.Fatalf("ECOMSTREAM_BENCH_LATENCY=%q: %q is none of dir, notify, list, list-fixed", v, m)
			}
		}
	}
	phase := 0
	newDB := func() string {
		phase++
		return createDB(b, admin, fmt.Sprintf("latency_%d", phase))
	}
	started := func(p *proc) { awaitStarted(b, p) }

	// Latency at about 10,000 rows/s: 100 files of 100 rows a second, for 20 s by default.
	// ECOMSTREAM_BENCH_GEN_SLEEP sets another rate (0.16: 2,500 rows/s).
	genSleep := "0.04"
	if v := os.Getenv("ECOMSTREAM_BENCH_GEN_SLEEP"); v != "" {
		genSleep = v
	}
	// ECOMSTREAM_BENCH_LATENCY_DURATION sets another length (a Go duration): in 20 s
	// (about 2,000 objects) P99 is the 20 slowest objects, so a start-up second's late
	// objects decide it; the stress scenario of the target runs for minutes.
	genFor := 20 * time.Second
	if v := os.Getenv("ECOMSTREAM_BENCH_LATENCY_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("ECOMSTREAM_BENCH_LATENCY_DURATION=%q: not a positive Go duration", v)
		}
		genFor = d
	}
	latency := func(mode, url string, genOut []string, ing *proc) (p50, p99 float64) {
		started(ing)
		stopWaits := sampleWaits(b, url)
		// Four generators of 25 files a second: one generator's PUTs, one after another,
		// do not reach 100 a second here. They begin their schedules a second after they
		// are started (--start-at), a quarter of the pace apart, so that together they
		// place one file every pace/4 as one producer would: started at once, the four
		// processes' own start-up (about a core of the two for 0.2 s) fell in the
		// measured first second. Every object they place is measured; only the
		// processes' start-up is before the first. ECOMSTREAM_BENCH_GEN_AT_ONCE=1: as before.
		pace, err := strconv.ParseFloat(genSleep, 64)
		if err != nil {
			b.Fatalf("ECOMSTREAM_BENCH_GEN_SLEEP=%q: not a number of seconds", genSleep)
		}
		first := time.Now().Add(time.Second)
		var gens []*proc
		for i := range 4 {
			args := append([]string{}, genOut...)
			if os.Getenv("ECOMSTREAM_BENCH_GEN_AT_ONCE") == "" {
				at := first.Add(time.Duration(float64(i) * pace / 4 * float64(time.Second)))
				args = append(args, "--start-at", at.UTC().Format(time.RFC3339Nano))
			}
			gens = append(gens, start(b, "generator", gw.Env(), append(args, "--http-addr", freeAddr(b), "--instance", fmt.Sprintf("lat%d", i),
				"--min-records", "100", "--max-records", "100", "--sleep", genSleep, "--duration", genFor.String())...))
		}
		var counts genCounts
		for _, g := range gens {
			if err := g.wait(2 * time.Minute); err != nil {
				b.Fatal(err)
			}
			c := generatorCounts(b, g)
			counts.Files += c.Files
			counts.Records += c.Records
		}
		p := pool(b, url)
		defer p.Close()
		await(b, "latency run drained", func() bool {
			var n int64
			return p.QueryRow(ctx, "SELECT count(*) FROM ingested_files").Scan(&n) == nil && n == counts.Files
		})
		stopWaits()
		// The ingester's sessions and when each was opened (Unix seconds), for PATH.MODE.sessions
		// below: one opened after the start was never primed.
		var sessions strings.Builder
		if os.Getenv("ECOMSTREAM_BENCH_LOG") != "" {
			rows, err := p.Query(ctx, `SELECT pid, extract(epoch FROM backend_start)::float8, application_name FROM pg_stat_activity
				WHERE datname = current_database() AND application_name LIKE 'ecomstream-ingester/%' ORDER BY backend_start`)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var pid int
				var started float64
				var app string
				if err := rows.Scan(&pid, &started, &app); err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(&sessions, "%d %.6f %s\n", pid, started, app)
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
		}
		_ = ing.stop()
		// ECOMSTREAM_BENCH_LOG=PATH keeps the ingester's log of each mode in PATH.MODE
		// (with INGESTER_LOG_LEVEL=debug, a line for every object committed).
		if v := os.Getenv("ECOMSTREAM_BENCH_LOG"); v != "" {
			if err := os.WriteFile(v+"."+mode, []byte(strings.Join(ing.log.all(), "\n")+"\n"), 0o644); err != nil {
				b.Error(err)
			}
			// And PATH.MODE.objects: each object's name, PUT and commit (Unix seconds),
			// to set beside the log and other processes' samples.
			rows, err := p.Query(ctx, `SELECT file_name, extract(epoch FROM file_created_at)::float8, extract(epoch FROM committed_at)::float8
				FROM ingested_files ORDER BY file_created_at`)
			if err != nil {
				b.Fatal(err)
			}
			var objs strings.Builder
			for rows.Next() {
				var name string
				var put, committed float64
				if err := rows.Scan(&name, &put, &committed); err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(&objs, "%s %.6f %.6f\n", name, put, committed)
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(v+"."+mode+".objects", []byte(objs.String()), 0o644); err != nil {
				b.Error(err)
			}
			if err := os.WriteFile(v+"."+mode+".sessions", []byte(sessions.String()), 0o644); err != nil {
				b.Error(err)
			}
			// And the generators' logs, PATH.MODE.genN: when each began its schedule.
			for i, g := range gens {
				if err := os.WriteFile(fmt.Sprintf("%s.%s.gen%d", v, mode, i), []byte(strings.Join(g.log.all(), "\n")+"\n"), 0o644); err != nil {
					b.Error(err)
				}
			}
		}
		if err := p.QueryRow(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_created_at)) FROM ingested_files`).Scan(&p50, &p99); err != nil {
			b.Fatal(err)
		}
		b.Logf("latency run (%s): %d files, %d rows in %s", genOut[0], counts.Files, counts.Records, genFor)
		// The tail's shape: how many objects were late, and when (seconds from the first
		// PUT, the 1 s windows with the most late objects): bursts or scattered.
		var over100, over50 int
		var maxMs float64
		var when string
		if err := p.QueryRow(ctx, `WITH l AS (SELECT file_created_at, extract(epoch FROM committed_at - file_created_at) * 1000 AS ms FROM ingested_files),
			t0 AS (SELECT min(file_created_at) AS t FROM l)
			SELECT count(*) FILTER (WHERE ms > 100), count(*) FILTER (WHERE ms > 50), coalesce(max(ms), 0),
				coalesce((SELECT string_agg(s || 's:' || n, ' ' ORDER BY n DESC) FROM (
					SELECT floor(extract(epoch FROM file_created_at - (SELECT t FROM t0)))::int AS s, count(*) AS n
					FROM l WHERE ms > 100 GROUP BY 1 ORDER BY 2 DESC LIMIT 6) w), '')
			FROM l`).Scan(&over100, &over50, &maxMs, &when); err != nil {
			b.Fatal(err)
		}
		b.Logf("latency tail: %d objects > 100 ms, %d > 50 ms, max %.0f ms; late by second of the run: %s", over100, over50, maxMs, when)
		return p50 * 1000, p99 * 1000
	}
	bucketOut := []string{"--output", "s3://" + bucketName + "/incoming"}
	for _, m := range modes {
		url := newDB()
		var p50, p99 float64
		var name string
		switch m {
		case "dir":
			d := newDirs(b)
			p50, p99 = latency(m, url, []string{"--output-dir", d.In}, startIngester(b, url, d, "lat-dir"))
			name = "dir"
		case "notify":
			p50, p99 = latency(m, url, bucketOut, startBucketIngester(b, gw, url, "lat-nats", "--nats-url", n.URL(), "--nats-subject", subject))
			name = "notify"
		case "list":
			p50, p99 = latency(m, url, bucketOut, startBucketIngester(b, gw, url, "lat-list"))
			name = "list1s"
		case "list-fixed":
			// Listing without backoff: every object waits for the next tick of the 1 s interval.
			p50, p99 = latency(m, url, bucketOut, startBucketIngester(b, gw, url, "lat-list-fixed", "--rescan-min-interval", "0"))
			name = "list1s-fixed"
		}
		b.ReportMetric(p50, name+"-p50-ms")
		b.ReportMetric(p99, name+"-p99-ms")
	}
}

// createDB creates the database name in the cluster of admin and returns its URL.
func createDB(tb testing.TB, admin, name string) string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	return db.WithDatabase(admin, name)
}

// resetServer drops the database name (once its drain has been measured) and runs a
// checkpoint, so that the next drain starts from the same server state as any other.
func resetServer(tb testing.TB, admin, name string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		tb.Fatal(err)
	}
}

// awaitStarted waits for p's "ingester started" record.
func awaitStarted(tb testing.TB, p *proc) {
	await(tb, "ingester started", func() bool {
		for _, l := range p.log.all() {
			if strings.Contains(l, `"ingester started"`) {
				return true
			}
		}
		return false
	})
}

func keysUnder(tb testing.TB, c *minio.Client, prefix string) (n int) {
	for o := range c.ListObjects(context.Background(), bucketName, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			tb.Fatal(o.Err)
		}
		n++
	}
	return n
}

// durablePostgres starts a cluster at PostgreSQL's default durability (the benchmarks'
// rule) with scripts/pg-local.sh and returns its admin URL.
func durablePostgres(tb testing.TB) string {
	tb.Helper()
	script, err := filepath.Abs("../../scripts/pg-local.sh")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	port := strings.TrimPrefix(freeAddr(tb), "127.0.0.1:")
	out, err := exec.Command(script, "start", dir, port).Output()
	if err != nil {
		tb.Fatalf("pg-local.sh start: %v", err)
	}
	tb.Cleanup(func() {
		_ = exec.Command(script, "stop", dir).Run()
		// As root, pg-local.sh keeps the cluster under /tmp, linked from dir/cluster: it is
		// this run's too (left behind, every bench run leaked 1-4 GB there).
		if real, err := os.Readlink(filepath.Join(dir, "cluster")); err == nil {
			_ = os.RemoveAll(real)
		}
	})
	return strings.TrimSpace(string(out))
}
