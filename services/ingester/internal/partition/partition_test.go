package partition

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	schema "github.com/ecomstream/ecomstream/sql"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(childURLEnv); url != "" {
		os.Exit(convertChild(url)) // the process TestConvert... kills part-way
	}
	os.Exit(pgtest.Main(m))
}

// t0 is the tests' "now": mid-morning, so slots are not all at midnight of now.
var t0 = time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)

func pool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// freshDB is a database at the current schema (events partitioned, default only),
// migrated by the superuser and then used as the ingester's role (sql/0005), as in
// compose: every maintenance test also proves the role is enough for what it does.
func freshDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, admin := freshDBAndAdmin(t)
	admin.Close()
	return p
}

// freshDBAndAdmin is freshDB and the administrator's pool (who sets the retention
// policy, as `ingester migrate` does).
func freshDBAndAdmin(t *testing.T) (ingester, admin *pgxpool.Pool) {
	t.Helper()
	url := pgtest.DB(t)
	admin = pool(t, url)
	if _, err := db.Migrate(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	p := pool(t, pgtest.AsRole(t, url, "ecomstream_ingester"))
	if user := scalar[string](t, p, "SELECT current_user"); user != "ecomstream_ingester" {
		t.Fatalf("connected as %s", user)
	}
	return p, admin
}

func maintainer(p *pgxpool.Pool, now time.Time, mod func(*Options)) *Maintainer {
	o := Defaults
	if mod != nil {
		mod(&o)
	}
	return &Maintainer{Pool: p, Opt: o, Log: zerolog.Nop(), Now: func() time.Time { return now }}
}

func scalar[T any](t *testing.T, p *pgxpool.Pool, q string, args ...any) T {
	t.Helper()
	var v T
	if err := p.QueryRow(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// insertAt stores n rows whose event_time is at, as the ingester's COPY would.
func insertAt(t *testing.T, p *pgxpool.Pool, at time.Time, n int) {
	t.Helper()
	_, err := p.Exec(context.Background(), `INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file)
		SELECT gen_random_uuid(), $1, 'view', 1, gen_random_uuid(), 1, 'c', 1.5, 1, 'f.csv' FROM generate_series(1, $2)`, at, n)
	if err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, p *pgxpool.Pool) []string {
	t.Helper()
	conn, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	parts, err := List(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range parts {
		out = append(out, x.Name)
	}
	return out
}

func TestPartitionsAreCreatedAheadOnceEvenByConcurrentReplicas(t *testing.T) {
	p := freshDB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	reports := make([]Report, 4)
	errs := make([]error, 4)
	for i := range reports {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			reports[i], errs[i] = maintainer(p, t0, nil).Pass(ctx, true)
		}(i)
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		created += len(reports[i].Created)
	}
	got := names(t, p)
	want := []string{"events_p20261130", "events_p20261201", "events_p20261202", "events_p20261203", "events_p20261204",
		"events_p20261205", "events_p20261206", "events_p20261207", "events_p20261208"}
	if strings.Join(got, " ") != strings.Join(want, " ") || created != len(want) {
		t.Fatalf("partitions %v (created %d times), want yesterday, today and 7 ahead: %v", got, created, want)
	}
	// A day later one more partition is made, none twice.
	r, err := maintainer(p, t0.Add(24*time.Hour), nil).Pass(ctx, false)
	if err != nil || strings.Join(r.Created, " ") != "events_p20261209" {
		t.Fatalf("next day created %v (err %v), want events_p20261209", r.Created, err)
	}
	if want := 24*time.Hour*8 - 10*time.Hour - 30*time.Minute; r.Coverage != want {
		t.Fatalf("coverage %s, want %s", r.Coverage, want)
	}
	// Every partition carries the primary key and the report's four indexes.
	if n := scalar[int64](t, p, `SELECT count(*) FROM pg_indexes WHERE tablename = 'events_p20261209'`); n != 5 {
		t.Fatalf("new partition has %d indexes, want 5", n)
	}
}

func TestAPassSkipsWhileAnotherReplicaMaintains(t *testing.T) {
	p := freshDB(t)
	ctx := context.Background()
	conn, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", maintenanceLock); err != nil {
		t.Fatal(err)
	}
	if _, err := maintainer(p, t0, nil).Pass(ctx, false); err != ErrLocked {
		t.Fatalf("pass while another holds the lock: %v, want ErrLocked", err)
	}
	if got := names(t, p); len(got) != 0 {
		t.Fatalf("a skipped pass created %v", got)
	}
}

func TestWidthIsASetting(t *testing.T) {
	p := freshDB(t)
	_, err := maintainer(p, t0, func(o *Options) { o.Width, o.Ahead = time.Hour, 2 }).Pass(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(t, p), " "); got != "events_p20261201_0900 events_p20261201_1000 events_p20261201_1100 events_p20261201_1200" {
		t.Fatalf("hourly partitions: %s", got)
	}
	// Widening later fills only the gaps: no overlap, so no error.
	r, err := maintainer(p, t0, func(o *Options) { o.Ahead = 1 }).Pass(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Created, " "); got != "events_p20261130 events_p20261201 events_p20261201_1300 events_p20261202" {
		t.Fatalf("daily after hourly created %s", got)
	}
}

// A row no partition covers is stored, not refused, and counted; creating the partition
// for its range (which PostgreSQL refuses while the default holds such rows) moves it.
func TestRowsOutsideEveryPartitionLandInDefaultAndMoveWhenTheirPartitionIsMade(t *testing.T) {
	p := freshDB(t)
	ctx := context.Background()
	insertAt(t, p, t0.Add(72*time.Hour), 30)             // ahead: the window's partition will take them
	insertAt(t, p, t0.Add(-100*24*time.Hour), 20)        // long ago: a partition of its own
	insertAt(t, p, t0.Add(30*24*time.Hour+time.Hour), 5) // beyond the window
	if n := scalar[int64](t, p, "SELECT count(*) FROM events_default"); n != 55 {
		t.Fatalf("default partition holds %d, want all 55 rows", n)
	}
	reg := prometheus.NewRegistry()
	met := NewMetrics(reg)
	m := maintainer(p, t0, nil)
	m.Once(ctx, met)
	if n := scalar[int64](t, p, "SELECT count(*) FROM events_default"); n != 0 {
		t.Fatalf("default partition still holds %d rows", n)
	}
	if n := scalar[int64](t, p, "SELECT count(*) FROM events"); n != 55 {
		t.Fatalf("events holds %d rows after the move, want 55", n)
	}
	for part, want := range map[string]int64{"events_p20261204": 30, "events_p20260823": 20, "events_p20261231": 5} {
		if n := scalar[int64](t, p, "SELECT count(*) FROM "+part); n != want {
			t.Errorf("%s holds %d rows, want %d", part, n, want)
		}
	}
	if got := testutil.ToFloat64(met.moved); got != 55 {
		t.Errorf("rows moved counted %v, want 55", got)
	}
	if got := testutil.ToFloat64(met.passes.WithLabelValues("done")); got != 1 {
		t.Errorf("passes done %v", got)
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Fatalf("metric lint: %v %v", probs, err)
	}
	// A pass makes at most maxCreatePerPass partitions for stray rows; the rest wait in
	// the default partition, counted, until the next pass.
	for i := 0; i < maxCreatePerPass+6; i++ {
		insertAt(t, p, t0.Add(-time.Duration(200+i)*24*time.Hour), 1)
	}
	r, err := m.Pass(context.Background(), true)
	if err != nil || r.DefaultRows != 6 || len(r.Created) != maxCreatePerPass {
		t.Fatalf("first pass over %d stray days: created %d, left %d in default (err %v)", maxCreatePerPass+6, len(r.Created), r.DefaultRows, err)
	}
	if r, err = m.Pass(context.Background(), true); err != nil || r.DefaultRows != 0 || len(r.Created) != 6 {
		t.Fatalf("second pass: created %d, left %d (err %v)", len(r.Created), r.DefaultRows, err)
	}
}

// The database bounds retention by its own clock (sql/0006), so this test's "later" is
// now and its start 40 days before (the other tests' t0 is a fixed day).
func TestRetentionDropsWholePartitionsAndPrunesLedgerAndRejects(t *testing.T) {
	p, admin := freshDBAndAdmin(t)
	ctx := context.Background()
	keep := func(o *Options) {
		o.Retention, o.LedgerRetention, o.RejectedRetention = 30*24*time.Hour, 60*24*time.Hour, 10*24*time.Hour
	}
	later := time.Now().UTC()
	start := later.Add(-40 * 24 * time.Hour)
	setPolicy(t, admin, keep)
	if _, err := maintainer(p, start, keep).Pass(ctx, true); err != nil {
		t.Fatal(err)
	}
	insertAt(t, p, start, 100)
	insertAt(t, p, start.Add(-20*time.Hour), 10)
	insertOld(t, p, later, 5, 20, 70)              // ledger and rejected rows, days before later
	insertAt(t, p, later.Add(-45*24*time.Hour), 7) // lands in default (its day has no partition), past retention
	r, err := maintainer(p, later, keep).Pass(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	// start's window reached start+8d; everything ending before later-30d = start+10d goes.
	first, _ := Slot(start.Add(-24*time.Hour), 24*time.Hour)
	last, _ := Slot(start.Add(7*24*time.Hour), 24*time.Hour)
	if len(r.Dropped) != 9 || r.Dropped[0] != Name(first) || r.Dropped[8] != Name(last) {
		t.Fatalf("dropped %v, want start's nine partitions %s ... %s", r.Dropped, Name(first), Name(last))
	}
	if got := left(t, p); got != [3]int64{0, 2, 1} {
		t.Fatalf("rows left (events, ledger, rejected) %v, want [0 2 1]: no event past retention, the ledger rows within 60 days, the rejected line within 10", got)
	}
	if r.Deleted["ingested_files"] != 1 || r.Deleted["rejected_records"] != 2 || r.Deleted["events"] != 117 {
		t.Fatalf("deleted counts %v", r.Deleted)
	}
	// The window around the new now is there, and nothing older than retention.
	got := names(t, p)
	if yesterday, _ := Slot(later.Add(-24*time.Hour), 24*time.Hour); got[0] != Name(yesterday) || len(got) != 9 {
		t.Fatalf("partitions after retention: %v", got)
	}
}

// left is the rows of events, ingested_files and rejected_records.
func left(t *testing.T, p *pgxpool.Pool) [3]int64 {
	t.Helper()
	return [3]int64{scalar[int64](t, p, "SELECT count(*) FROM events"), scalar[int64](t, p, "SELECT count(*) FROM ingested_files"),
		scalar[int64](t, p, "SELECT count(*) FROM rejected_records")}
}

// insertOld stores a ledger row and a rejected line of each age (days before now).
func insertOld(t *testing.T, p *pgxpool.Pool, now time.Time, ages ...int) {
	t.Helper()
	ctx := context.Background()
	for _, age := range ages {
		at := now.Add(-time.Duration(age) * 24 * time.Hour)
		if _, err := p.Exec(ctx, `INSERT INTO ingested_files (file_name, sha256, file_created_at, committed_at, records_total,
			records_inserted, records_rejected, records_duplicate, bytes, ingester_instance) VALUES ($1, 'x', $2, $2, 0, 0, 0, 0, 0, 't')`,
			"f"+at.Format("20060102")+".csv", at); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Exec(ctx, `INSERT INTO rejected_records (source_file, line_number, raw_line, reason, message, rejected_at)
			VALUES ('f.csv', 1, 'x', 'bad_event_id', 'm', $1)`, at); err != nil {
			t.Fatal(err)
		}
	}
}

// setPolicy writes the retention policy of the options mod makes, as `ingester migrate`
// does with the settings.
func setPolicy(t *testing.T, admin *pgxpool.Pool, mod func(*Options)) {
	t.Helper()
	o := Defaults
	mod(&o)
	if err := WritePolicy(context.Background(), admin, PolicyOf(o)); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionParses(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "36h": 36 * time.Hour, "off": 0, "": 0, "0": 0} {
		var r Retention
		if err := r.Set(in); err != nil || time.Duration(r) != want {
			t.Errorf("%q: %v %v, want %v", in, time.Duration(r), err, want)
		}
	}
	for _, bad := range []string{"30x", "-1d", "d", "-5h"} {
		var r Retention
		if err := r.Set(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// legacyDB is a database of the previous version: events unpartitioned, with rows.
func legacyDB(t *testing.T, rows int) (url string, p *pgxpool.Pool) {
	t.Helper()
	url = pgtest.DB(t)
	p = pool(t, url)
	ctx := context.Background()
	old := fstest.MapFS{}
	names, _ := fs.Glob(schema.Files, "*.sql")
	for _, n := range names {
		if n < "0004" {
			b, _ := fs.ReadFile(schema.Files, n)
			old[n] = &fstest.MapFile{Data: b}
		}
	}
	if _, err := db.MigrateFS(ctx, p, old); err != nil {
		t.Fatal(err)
	}
	// 30 days of rows and a few strays from 2001.
	_, err := p.Exec(ctx, `INSERT INTO events (event_id, event_time, event_type, user_id, session_id, product_id, category, price, quantity, source_file, ingested_at)
		SELECT md5(i::text)::uuid,
		       CASE WHEN i % 250000 = 0 THEN timestamptz '2001-02-03 04:05:06Z'
		            ELSE $1::timestamptz - (i % 30) * interval '1 day' - (i % 86400) * interval '1 second' END,
		       (ARRAY['view', 'add_to_cart', 'remove_from_cart', 'purchase'])[i % 4 + 1], i % 10000 + 1,
		       md5('s' || (i / 10))::uuid, i % 5000 + 1, 'cat' || (i % 20), (i % 100000) / 100.0, i % 5 + 1,
		       'file-' || (i / 100) || '.csv', $1
		FROM generate_series(1, $2::int) i`, t0, rows)
	if err != nil {
		t.Fatal(err)
	}
	return url, p
}

// checksum is the table's row count and an order-free sum of its rows' hashes.
func checksum(t *testing.T, p *pgxpool.Pool, table string) string {
	t.Helper()
	return scalar[string](t, p, `SELECT count(*) || '/' || coalesce(sum(('x' || left(md5(e::text), 15))::bit(60)::bigint), 0) FROM `+table+` e`)
}

const (
	childURLEnv   = "PARTITION_TEST_CONVERT_URL"
	childChunkEnv = "PARTITION_TEST_CONVERT_CHUNK"
)

func convertChild(url string) int {
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		return 3
	}
	defer p.Close()
	chunk := 100
	if os.Getenv(childChunkEnv) != "" {
		chunk = 50
	}
	m := &Maintainer{Pool: p, Opt: Defaults, Log: zerolog.New(os.Stderr), Now: func() time.Time { return t0 }}
	if _, err := m.Convert(context.Background(), chunk); err != nil {
		return 1
	}
	return 0
}

// gaps leaves out exactly what existing partitions cover, whatever their widths.
func TestGapsAreWhatNoPartitionCovers(t *testing.T) {
	h := func(n int) time.Time { return t0.Truncate(24 * time.Hour).Add(time.Duration(n) * time.Hour) }
	parts := []Partition{{From: h(-5), To: h(2)}, {From: h(6), To: h(8)}, {From: h(20), To: h(30)}}
	got := gaps(h(0), h(24), parts)
	want := [][2]time.Time{{h(2), h(6)}, {h(8), h(20)}}
	if len(got) != len(want) {
		t.Fatalf("gaps %v, want %v", got, want)
	}
	for i := range want {
		if !got[i][0].Equal(want[i][0]) || !got[i][1].Equal(want[i][1]) {
			t.Fatalf("gap %d: %v, want %v", i, got[i], want[i])
		}
	}
	if g := gaps(h(0), h(2), parts); len(g) != 0 {
		t.Fatalf("a covered range has gaps %v", g)
	}
	if g := gaps(h(40), h(48), parts); len(g) != 1 || !g[0][0].Equal(h(40)) || !g[0][1].Equal(h(48)) {
		t.Fatalf("an uncovered range: %v", g)
	}
}
