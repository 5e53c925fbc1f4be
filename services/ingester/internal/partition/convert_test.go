package partition

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/db"
)

// convertRows is the million; ECOMSTREAM_CONVERT_ROWS lowers it for a quick run.
func convertRows() int {
	if n, err := strconv.Atoi(os.Getenv("ECOMSTREAM_CONVERT_ROWS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// A million rows of the previous version's table are converted by a real child process
// killed with SIGKILL part-way, then by a second run: nothing lost, nothing doubled,
// the same rows byte for byte.
func TestConversionOfAPopulatedTableResumesAfterKill9(t *testing.T) {
	rows := convertRows()
	url, p := legacyDB(t, rows)
	ctx := context.Background()
	before := checksum(t, p, "events")
	if _, err := db.Migrate(ctx, p); err != nil { // 0004: rename, partitioned events
		t.Fatal(err)
	}
	if got := checksum(t, p, Legacy); got != before {
		t.Fatalf("the rename changed the rows: %s, was %s", got, before)
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childURLEnv+"="+url, childChunkEnv+"=small")
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	var blocks, next int64
	for deadline := time.Now().Add(5 * time.Minute); ; {
		err := p.QueryRow(ctx, "SELECT blocks, next_block FROM "+progressTable).Scan(&blocks, &next)
		if err == nil && next >= blocks/10 && next > 0 { // a tenth of the way: well part-way
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the converting child exited (%v) before it could be killed part-way", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the child moved nothing in 5 minutes")
		}
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: no cleanup, no unlock
		t.Fatal(err)
	}
	<-exited

	var moved int64
	if err := p.QueryRow(ctx, "SELECT next_block, rows_moved FROM "+progressTable).Scan(&next, &moved); err != nil {
		t.Fatal(err)
	}
	if next >= blocks {
		t.Fatalf("the child was killed after it finished (block %d of %d): not part-way", next, blocks)
	}
	if n := scalar[int64](t, p, "SELECT count(*) FROM events"); n != moved || moved == 0 {
		t.Fatalf("after the kill events holds %d rows, the committed progress says %d: a chunk was half done", n, moved)
	}
	t.Logf("killed at block %d of %d with %d of %d rows moved", next, blocks, moved, rows)

	m := maintainer(p, t0, nil)
	r, err := m.Convert(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Resumed || r.Rows != int64(rows) {
		t.Fatalf("second run: %+v, want resumed with %d rows in all", r, rows)
	}
	if after := checksum(t, p, "events"); after != before {
		t.Fatalf("events after conversion %s, before %s", after, before)
	}
	if gone := scalar[bool](t, p, "SELECT to_regclass($1) IS NULL AND to_regclass($2) IS NULL", Legacy, progressTable); !gone {
		t.Fatal("the old table or the progress table is left behind")
	}
	// The strays of 2001 and the 30 days each have a partition: nothing in default.
	if n := scalar[int64](t, p, "SELECT count(*) FROM events_default"); n != 0 {
		t.Fatalf("%d rows in the default partition after conversion", n)
	}
	// A second conversion finds nothing to do.
	if r, err := m.Convert(ctx, 0); err != nil || r.Rows != 0 {
		t.Fatalf("again: %+v %v", r, err)
	}
}

// Replicas that start at once all run migrate and convert: each finishes without error
// and the rows are moved once.
func TestConcurrentReplicasConvertOnce(t *testing.T) {
	url, p := legacyDB(t, 20000)
	before := checksum(t, p, "events")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	rows := make([]int64, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rp := pool(t, url)
			if _, err := db.Migrate(context.Background(), rp); err != nil {
				errs[i] = err
				return
			}
			r, err := maintainer(rp, t0, nil).Convert(context.Background(), 20)
			rows[i], errs[i] = r.Rows, err
		}(i)
	}
	wg.Wait()
	var total int64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		total += rows[i]
	}
	if total != 20000 {
		t.Fatalf("replicas report %d rows moved in all, want 20000 once", total)
	}
	if after := checksum(t, p, "events"); after != before {
		t.Fatalf("events after %s, before %s", after, before)
	}
}

// A row of the old table already in the new one (an old-version replica kept writing
// during a rolling upgrade: the same event_id and event_time) is the same event: the
// conversion skips and counts it and completes, instead of failing on the primary key
// at the same block on every run.
func TestConversionSkipsRowsAlreadyInTheNewTable(t *testing.T) {
	_, p := legacyDB(t, 1000)
	ctx := context.Background()
	if _, err := db.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, `INSERT INTO events SELECT * FROM `+Legacy+` LIMIT 3`); err != nil {
		t.Fatal(err)
	}
	r, err := maintainer(p, t0, nil).Convert(ctx, 0)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	if r.Rows != 1000 || r.AlreadyThere != 3 {
		t.Fatalf("report %+v, want 1000 rows taken, 3 already there", r)
	}
	var n int64
	if err := p.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("events holds %d rows (%v), want 1000", n, err)
	}
	var legacy bool
	if err := p.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", Legacy).Scan(&legacy); err != nil || legacy {
		t.Fatalf("old table still there: %v %v", legacy, err)
	}
}
