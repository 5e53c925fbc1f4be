package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

// The pipeline across machines: generators PUT objects into a bucket, ingesters on
// "other hosts" (processes sharing nothing but the bucket, NATS and PostgreSQL) read it.

const (
	bucketName = "pipe"
	subject    = "s3.events"
)

// bucketRig is one bucket pipeline's servers.
type bucketRig struct {
	pg   *pgtest.Server
	nats *s3test.NATS
	gw   *s3test.Gateway
	c    *minio.Client
	url  string
}

func newBucketRig(t *testing.T) *bucketRig {
	s3test.Require(t, true)
	r := &bucketRig{pg: pgtest.New(t), nats: s3test.StartNATS(t)}
	r.url = r.pg.URL("postgres")
	r.gw = s3test.StartGateway(t, s3test.Options{NATSURL: r.nats.URL(), Subject: subject}, bucketName)
	r.c = r.gw.Client(t)
	return r
}

func (r *bucketRig) startIngester(t *testing.T, instance string, extra ...string) *proc {
	return r.startIngesterAt(t, freeAddr(t), instance, "1s", extra...)
}

// startIngesterAt starts an ingester serving /metrics on addr, listing every interval.
func (r *bucketRig) startIngesterAt(t *testing.T, addr, instance, interval string, extra ...string) *proc {
	args := append([]string{"--source", "s3://" + bucketName + "/incoming/", "--nats-url", r.nats.URL(), "--nats-subject", subject,
		"--http-addr", addr, "--instance", instance, "--rescan-interval", interval, "--db-wait", "120s"}, extra...)
	return start(t, "ingester", append(r.gw.Env(), "DATABASE_URL="+r.url), args...)
}

// listings is the number of full listings an ingester has made (the count of its
// listing-duration histogram), or -1 while its /metrics does not answer.
func listings(addr string) int {
	return counter(addr, "ecomstream_ingester_source_list_duration_seconds_count")
}

// counter is the value of an ingester's unlabelled counter name, or -1 while its
// /metrics does not answer.
func counter(addr, name string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// put writes body under key in the bucket (one PUT: the object appears whole).
func (r *bucketRig) put(t *testing.T, key, body string) {
	t.Helper()
	if _, err := r.c.PutObject(context.Background(), bucketName, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// keys lists the keys under prefix.
func (r *bucketRig) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var ks []string
	for o := range r.c.ListObjects(context.Background(), bucketName, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", prefix, o.Err)
		}
		ks = append(ks, o.Key)
	}
	return ks
}

// waitBucketDrained waits until incoming/ holds no input object and the ledger has files
// rows. The bound only ends a hung test.
func (r *bucketRig) waitBucketDrained(t *testing.T, db *pgxpool.Pool, files int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, k := range r.keys(t, "incoming/") {
			if event.IsInputFileName(path.Base(k)) {
				left = append(left, k)
			}
		}
		var n int64
		err := db.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files").Scan(&n)
		if err == nil && len(left) == 0 && n >= files {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained after %s: %d objects left in incoming/, ledger has %d of %d (last error %v)", timeout, len(left), n, files, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkBucketInvariant: every archived object is in the ledger (by its s3:// name) with
// exactly its rows, nothing else is, and the ledger, events and rejected_records agree
// with each other and with the generator's own counts. A name may be in the ledger more
// than once, each time with other bytes (an object overwritten: a new version), each
// archived copy matching one of them.
func (r *bucketRig) checkBucketInvariant(t *testing.T, db *pgxpool.Pool, gen *genCounts) {
	t.Helper()
	ctx := context.Background()
	type row struct{ total, ins, rej, dup int64 }
	ledger := map[string][]row{} // by name, a row per version
	versions := map[string]bool{}
	rows, err := db.Query(ctx, `SELECT file_name, sha256, records_total, records_inserted, records_rejected, records_duplicate
		FROM ingested_files WHERE outcome = 'ingested'`)
	if err != nil {
		t.Fatal(err)
	}
	var sum row
	for rows.Next() {
		var name, sha string
		var x row
		if err := rows.Scan(&name, &sha, &x.total, &x.ins, &x.rej, &x.dup); err != nil {
			t.Fatal(err)
		}
		if versions[name+" "+sha] {
			t.Errorf("object %s (sha256 %s) committed twice", name, sha)
		}
		versions[name+" "+sha] = true
		ledger[name] = append(ledger[name], x)
		sum.total, sum.ins, sum.rej, sum.dup = sum.total+x.total, sum.ins+x.ins, sum.rej+x.rej, sum.dup+x.dup
	}
	rows.Close()

	dir := t.TempDir()
	archived := r.keys(t, "archive/")
	if len(archived) != len(versions) {
		t.Errorf("archive/ holds %d objects, the ledger %d", len(archived), len(versions))
	}
	var produced int64
	for _, k := range archived {
		local := filepath.Join(dir, path.Base(k))
		if err := r.c.FGetObject(ctx, bucketName, k, local, minio.GetObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		n := countRows(t, local)
		produced += n
		name := "s3://" + bucketName + "/incoming/" + unTag(path.Base(k))
		i := slices.IndexFunc(ledger[name], func(x row) bool { return x.total == n })
		if i < 0 {
			t.Errorf("archived %s (%s, %d rows) is not in the ledger (%+v)", k, name, n, ledger[name])
			continue
		}
		ledger[name] = slices.Delete(ledger[name], i, i+1) // each version matches one archived copy
	}
	var events, rejected int64
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rejected_records WHERE line_number > 0)`).
		Scan(&events, &rejected); err != nil {
		t.Fatal(err)
	}
	if produced != sum.total || sum.total != sum.ins+sum.rej+sum.dup || events != sum.ins || rejected != sum.rej {
		t.Errorf("objects hold %d rows; ledger total %d = %d inserted + %d rejected + %d duplicate; events %d, rejected rows %d",
			produced, sum.total, sum.ins, sum.rej, sum.dup, events, rejected)
	}
	if gen != nil && (gen.Files != int64(len(versions)) || gen.Records != sum.total || gen.Valid != sum.ins || gen.Invalid != sum.rej || gen.Duplicate != sum.dup) {
		t.Errorf("generator counted %+v; the database has %d objects, %+v", *gen, len(versions), sum)
	}
	t.Logf("accounted: %d objects, %d rows = %d inserted + %d rejected + %d duplicate", len(versions), sum.total, sum.ins, sum.rej, sum.dup)
}

// unTag is the input name of an archived object: a.<etag>.csv -> a.csv.
func unTag(base string) string {
	ext := ".csv" + compress.Ext(compress.CodecOf(base)) // .csv, .csv.gz or .csv.zst
	stem := strings.TrimSuffix(base, ext)
	if i := strings.LastIndexByte(stem, '.'); i > 0 {
		stem = stem[:i]
	}
	return stem + ext
}

func randInt(n int) int {
	v, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
	return int(v.Int64())
}

// TestBucketPipelineSurvivesKillsAndRestarts: a generator writes to the bucket while
// three ingesters read it; ingesters are killed with SIGKILL at random and restarted, the
// S3 server and NATS are each killed and restarted once, PostgreSQL once. Every row of
// every object is accounted for exactly once, and an object overwritten with new bytes
// meanwhile is both of its versions, each once.
func TestBucketPipelineSurvivesKillsAndRestarts(t *testing.T) {
	r := newBucketRig(t)
	ings := make([]*proc, 3)
	for i := range ings {
		ings[i] = r.startIngester(t, fmt.Sprintf("ing-b%d", i), "--workers", "2")
	}
	gen := start(t, "generator", r.gw.Env(), "--output", "s3://"+bucketName+"/incoming", "--http-addr", freeAddr(t),
		"--instance", "gen-b", "--max-files", "150", "--seed", "11", "--min-records", "200", "--max-records", "1500",
		"--sleep", "0.03", "--bad-rate", "0.02", "--duplicate-rate", "0.03")
	// Compressed objects among them: two more generators write .csv.gz and .csv.zst.
	var packed []*proc
	for _, codec := range []string{"gzip", "zstd"} {
		packed = append(packed, start(t, "generator", r.gw.Env(), "--output", "s3://"+bucketName+"/incoming", "--http-addr", freeAddr(t),
			"--instance", "gen-"+codec, "--max-files", "25", "--seed", map[string]string{"gzip": "12", "zstd": "13"}[codec],
			"--min-records", "200", "--max-records", "1500", "--sleep", "0.1", "--bad-rate", "0.02", "--duplicate-rate", "0.03",
			"--compress", codec))
	}

	pause := func() { time.Sleep(time.Duration(300+randInt(700)) * time.Millisecond) } // pacing only
	for i := 0; i < 4; i++ {
		pause()
		k := randInt(len(ings))
		ings[k].kill()
		ings[k] = r.startIngester(t, fmt.Sprintf("ing-b%d", k), "--workers", "2")
	}
	// An object overwritten with new bytes once its first version is committed and
	// archived (overwritten before its archive, the first version's bytes would be gone:
	// committed, but nothing left to archive): the second is a new version, loaded
	// through the faults that follow.
	db := pool(t, r.url)
	const over = "incoming/overwritten.csv"
	r.put(t, over, csvBody(40))
	await(t, "the first version committed and archived", func() bool {
		var n int
		err := db.QueryRow(context.Background(), "SELECT count(*) FROM ingested_files WHERE file_name = $1", "s3://"+bucketName+"/"+over).Scan(&n)
		return err == nil && n == 1 && !slices.Contains(r.keys(t, "incoming/"), over) &&
			slices.ContainsFunc(r.keys(t, "archive/"), func(k string) bool { return strings.HasPrefix(path.Base(k), "overwritten.") })
	})
	r.put(t, over, csvBody(60))
	pause()
	r.nats.Kill() // notifications lost: the listing finds what was put meanwhile
	pause()
	if err := r.nats.Start(); err != nil {
		t.Fatal(err)
	}
	pause()
	r.gw.Kill() // the generator's client retries its PUT; ingesters retry their requests
	if err := r.gw.Start(); err != nil {
		t.Fatal(err)
	}
	pause()
	r.pg.Kill()
	// The killed postmaster's backends end a moment later; until then a new one refuses
	// the data directory.
	for attempt := 0; ; attempt++ {
		time.Sleep(time.Second)
		err := r.pg.Start()
		if err == nil {
			break
		}
		if attempt == 20 {
			t.Fatal(err)
		}
	}
	pause()
	k := randInt(len(ings))
	ings[k].kill()
	addr := freeAddr(t)
	ings[k] = r.startIngesterAt(t, addr, fmt.Sprintf("ing-b%d", k), "1s", "--workers", "2")
	// Up (its /metrics answers) before anything may stop it: a SIGTERM in a process's
	// first milliseconds, before it handles the signal, ends it as a kill would.
	await(t, "the last restarted ingester up", func() bool { return listings(addr) >= 0 })

	if err := gen.wait(5 * time.Minute); err != nil {
		t.Fatalf("generator: %v", err)
	}
	counts := generatorCounts(t, gen)
	for _, p := range packed {
		if err := p.wait(5 * time.Minute); err != nil {
			t.Fatalf("generator: %v", err)
		}
		c := generatorCounts(t, p)
		counts.Files, counts.Records, counts.Valid = counts.Files+c.Files, counts.Records+c.Records, counts.Valid+c.Valid
		counts.Invalid, counts.Duplicate = counts.Invalid+c.Invalid, counts.Duplicate+c.Duplicate
	}
	counts.Files, counts.Records, counts.Valid = counts.Files+2, counts.Records+100, counts.Valid+100 // the overwritten object's versions
	r.waitBucketDrained(t, db, counts.Files, 3*time.Minute)
	for _, p := range ings {
		if err := p.stop(); err != nil {
			t.Errorf("ingester did not stop cleanly: %v", err)
		}
	}
	r.checkBucketInvariant(t, db, &counts)
	var compressed int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM ingested_files
		WHERE outcome = 'ingested' AND (file_name LIKE '%.csv.gz' OR file_name LIKE '%.csv.zst')`).Scan(&compressed); err != nil || compressed != 50 {
		t.Errorf("compressed objects ingested: %d, want 50 (%v)", compressed, err)
	}
	var totals []int64
	vs, err := db.Query(context.Background(), `SELECT records_total FROM ingested_files WHERE file_name = $1 ORDER BY records_total`, "s3://"+bucketName+"/"+over)
	if err == nil {
		totals, err = pgx.CollectRows(vs, pgx.RowTo[int64])
	}
	if err != nil || !slices.Equal(totals, []int64{40, 60}) {
		t.Errorf("the overwritten object's versions in the ledger: %v rows, want 40 and 60 (%v)", totals, err)
	}
	if counts.Invalid == 0 || counts.Duplicate == 0 {
		t.Fatalf("the run must exercise rejections and duplicates: %+v", counts)
	}
}

// csvBody is a valid file of n rows with fresh event ids.
func csvBody(n int) string {
	var b strings.Builder
	b.WriteString("event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n")
	now := time.Now().UTC().Format(time.RFC3339)
	for range n {
		fmt.Fprintf(&b, "%s,%s,view,%d,%s,%d,books,%d.50,1\n", uuid(), now, 1+randInt(1000), uuid(), 1+randInt(1000), randInt(100))
	}
	return b.String()
}

func uuid() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// An object overwritten with new bytes is a new version, ingested; the same bytes put
// again are a no-op; with --on-success keep the objects stay where they are.
func TestBucketOverwrittenObjectIsANewVersion(t *testing.T) {
	r := newBucketRig(t)
	db := pool(t, r.url)
	addr := freeAddr(t)
	ing := r.startIngesterAt(t, addr, "ing-v", "1s", "--on-success", "keep")
	ctx := context.Background()
	put := func(body string) { r.put(t, "incoming/same-name.csv", body) }
	ledgerRows := func(want int) {
		deadline := time.Now().Add(2 * time.Minute) // ends a hung test only
		for {
			var n int
			err := db.QueryRow(ctx, `SELECT count(*) FROM ingested_files WHERE file_name = 's3://pipe/incoming/same-name.csv'`).Scan(&n)
			if err == nil && n >= want {
				if n > want {
					t.Fatalf("ledger has %d versions of same-name.csv, want %d", n, want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ledger has %d versions of same-name.csv, want %d (%v)", n, want, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	first, second := csvBody(50), csvBody(70)
	put(first)
	ledgerRows(1)
	put(second)
	ledgerRows(2)
	put(first) // the first bytes again: the ledger knows them
	put(second)
	// Two listings that began after the puts, and nothing left in the queue, before
	// checking that nothing more was committed: the kept object is listed again and
	// again, and must stay a no-op.
	l0 := listings(addr)
	await(t, "two listings after the puts, the queue empty", func() bool {
		return listings(addr) >= l0+2 && counter(addr, "ecomstream_ingester_backlog_files") == 0
	})
	ledgerRows(2)
	if err := ing.stop(); err != nil {
		t.Fatal(err)
	}
	var events, inserted int64
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT sum(records_inserted) FROM ingested_files)`).Scan(&events, &inserted); err != nil {
		t.Fatal(err)
	}
	if events != 120 || inserted != 120 {
		t.Fatalf("events %d, inserted %d; want 50 + 70", events, inserted)
	}
	if ks := r.keys(t, "incoming/"); len(ks) != 1 {
		t.Fatalf("keep: incoming/ holds %v", ks)
	}
}

// Notifications lost on purpose (NATS down): every object put meanwhile is committed by
// the first listing that begins after it was put. Counted in listings (the ingester's
// own listing counter), not in seconds: at most the listing under way when the objects
// were put, and the next one.
func TestBucketLostNotificationsCostOneListing(t *testing.T) {
	r := newBucketRig(t)
	db := pool(t, r.url)
	addr := freeAddr(t)
	// Fixed interval (no listing backoff): the listings counted are the interval's.
	ing := r.startIngesterAt(t, addr, "ing-n", "3s", "--rescan-min-interval", "0")
	ctx := context.Background()
	committed := func() int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM ingested_files`).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	// Running and notified: one object goes through before NATS goes away.
	r.put(t, "incoming/first.csv", csvBody(20))
	await(t, "first.csv committed", func() bool { return committed() == 1 })

	r.nats.Kill()
	const lost = 20
	for i := range lost {
		r.put(t, fmt.Sprintf("incoming/lost-%02d.csv", i), csvBody(20))
	}
	before := listings(addr)
	if before < 1 {
		t.Fatalf("listing counter: %d", before)
	}
	var after int
	await(t, "the lost objects committed", func() bool {
		if committed() < 1+lost {
			return false
		}
		after = listings(addr)
		return true
	})
	if after-before > 2 {
		t.Errorf("the objects put while NATS was down took %d listings after the puts; want at most 2 (the one under way and the next)", after-before)
	}
	t.Logf("listings: %d when the last object was put, %d when all were committed", before, after)
	if err := ing.stop(); err != nil {
		t.Fatal(err)
	}
}

// Three replicas of one prefix take turns at its listing (sql/0007): with NATS down, the
// objects put meanwhile are found and committed by whichever lists next, and of the
// replicas' periodic ticks about one per interval lists, the others are left to it
// (ecomstream_ingester_source_listings_left_total). Counted in ticks, not seconds: each
// replica ticks once an interval, so 24 ticks are about eight intervals, in which three
// replicas that each listed would have made 24 listings; taking turns, about one an
// interval and each replica's own every eighth tick (about 10). The bound (at most two
// thirds listed) leaves room for ticks late on a loaded host and for the counters being
// read one replica after another (the total may pass 24).
func TestBucketReplicasTakeTurnsAtTheListing(t *testing.T) {
	r := newBucketRig(t)
	db := pool(t, r.url)
	ctx := context.Background()
	var addrs []string
	for i := range 3 {
		addr := freeAddr(t)
		addrs = append(addrs, addr)
		r.startIngesterAt(t, addr, fmt.Sprintf("ing-turn-%d", i), "1s", "--rescan-min-interval", "0")
	}
	ticks := func() (listed, left int) {
		for _, a := range addrs {
			n, l := listings(a), counter(a, "ecomstream_ingester_source_listings_left_total")
			if n < 0 || l < 0 {
				return -1, -1
			}
			listed, left = listed+n, left+l
		}
		return listed, left
	}
	await(t, "every replica's first listing", func() bool { l, _ := ticks(); return l >= 3 })

	r.nats.Kill()
	const lost = 20
	for i := range lost {
		r.put(t, fmt.Sprintf("incoming/turn-%02d.csv", i), csvBody(20))
	}
	await(t, "the objects put while NATS was down committed", func() bool {
		var n int
		return db.QueryRow(ctx, `SELECT count(*) FROM ingested_files`).Scan(&n) == nil && n == lost
	})
	l0, s0 := ticks()
	var l1, s1 int
	await(t, "24 more ticks across the replicas", func() bool {
		l1, s1 = ticks()
		return l1 >= 0 && (l1-l0)+(s1-s0) >= 24
	})
	t.Logf("of %d ticks, %d listed and %d were left to another replica", (l1-l0)+(s1-s0), l1-l0, s1-s0)
	if 3*(l1-l0) > 2*((l1-l0)+(s1-s0)) {
		t.Errorf("the replicas listed %d times and left %d listings to another: they do not take turns", l1-l0, s1-s0)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM ecomstream_listing_turns WHERE source = $1`, "s3://"+bucketName+"/incoming/").Scan(&n); err != nil || n != 1 {
		t.Fatalf("listing turns recorded for the prefix: %d, %v", n, err)
	}
}

// await polls cond; the bound only ends a hung test.
func await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An ingester of a bucket opens, before it takes anything, the database sessions its
// workers and the finishes behind them hold at once (2 workers and ClaimsBehind, 6):
// opened on the first batches' path instead, each one held a worker while objects
// queued behind it.
func TestBucketIngesterOpensItsSessionsAtStart(t *testing.T) {
	r := newBucketRig(t)
	db := pool(t, r.url)
	ing := r.startIngester(t, "ing-warm", "--workers", "2")
	await(t, "ingester started", func() bool {
		for _, l := range ing.log.all() {
			if strings.Contains(l, `"ingester started"`) {
				return true
			}
		}
		return false
	})
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'ecomstream-ingester/ing-warm'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 2+6 {
		t.Fatalf("the ingester holds %d database sessions once started, want at least 8 (2 workers, 6 finishes behind)", n)
	}
}
