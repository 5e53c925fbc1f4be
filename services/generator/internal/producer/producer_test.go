package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/csvcodec"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/generator/internal/rows"
)

func testConfig(dir string) Config {
	return Config{Dir: dir, Instance: "gen-test", MinRecords: 50, MaxRecords: 200, Seed: 1}
}

func newProducer(t testing.TB, cfg Config) (*Producer, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	p, err := New(cfg, zerolog.New(&logs), reg)
	if err != nil {
		t.Fatal(err)
	}
	return p, reg, &logs
}

// readDir parses every placed file the way the ingester does and classifies its rows:
// accepted with a new event_id (valid), accepted with a seen one (duplicate), rejected.
func readDir(t *testing.T, dir string) (files int, c rows.Counts, bytes int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^gen-test-\d{8}-\d{19}\.csv(\.gz|\.zst)?$`)
	seen := map[[16]byte]bool{}
	now := time.Now()
	for _, e := range ents {
		if !name.MatchString(e.Name()) {
			t.Fatalf("unexpected file %q in the output directory", e.Name())
		}
		files++
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		bytes += st.Size()
		z := compress.Reader(e.Name(), f)
		r := csvcodec.NewReader(z)
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		h, rej := event.ParseHeader(rec.Fields)
		if rej != nil {
			t.Fatal(rej)
		}
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			if rec.Err != nil {
				t.Fatalf("%s line %d is not CSV: %v", e.Name(), rec.Line, rec.Err)
			}
			ev, rej := h.Parse(rec.Fields, now, nil)
			switch {
			case rej != nil:
				c.Invalid++
			case seen[ev.EventID]:
				c.Duplicate++
			default:
				seen[ev.EventID] = true
				c.Valid++
			}
		}
		z.Close()
		f.Close()
	}
	return files, c, bytes
}

// With --compress each file is one whole stream of the codec, named for it, with the
// same rows a plain file has; the byte counts are of the stored (compressed) bytes.
func TestCompressedFilesAreWholeStreamsNamedForTheirCodec(t *testing.T) {
	for _, codec := range []string{compress.Gzip, compress.Zstd} {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.Compress, cfg.BadRate, cfg.MaxFiles = codec, 0.05, 10
			p, _, _ := newProducer(t, cfg)
			sum, err := p.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			files, c, size := readDir(t, dir) // fails on a dotfile left behind or a broken stream
			if files != 10 || c != sum.Rows || size != sum.Bytes {
				t.Fatalf("on disk %d files %+v %d bytes; summary %+v", files, c, size, sum)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if compress.CodecOf(e.Name()) != codec {
					t.Fatalf("%s is not named for %s", e.Name(), codec)
				}
			}
			if size >= c.Total()*100 {
				t.Fatalf("%d stored bytes for %d rows: not compressed", size, c.Total())
			}
		})
	}
}

func TestFilesParseAndCountsMatch(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.BadRate, cfg.DuplicateRate, cfg.MaxFiles = 0.05, 0.1, 40
	p, reg, logs := newProducer(t, cfg)
	sum, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files, c, size := readDir(t, dir)
	if int64(files) != sum.Files || files != 40 || c != sum.Rows || size != sum.Bytes {
		t.Fatalf("on disk %d files %+v %d bytes; summary %+v", files, c, size, sum)
	}
	n := c.Total()
	if d := int64(0.05*float64(n)) - c.Invalid; d < -1 || d > 1 {
		t.Errorf("%d invalid of %d rows, want 5%%", c.Invalid, n)
	}
	if d := int64(0.1*float64(n)) - c.Duplicate; d < -1 || d > 1 {
		t.Errorf("%d duplicates of %d rows, want 10%%", c.Duplicate, n)
	}
	if n < 40*50 || n > 40*200 {
		t.Errorf("%d rows in 40 files of 50-200", n)
	}

	// The metrics and the summary line tell the same story.
	if v := testutil.ToFloat64(p.metrics.Files); v != 40 {
		t.Errorf("files_total %v", v)
	}
	for kind, want := range map[string]int64{"valid": c.Valid, "invalid": c.Invalid, "duplicate": c.Duplicate} {
		if v := testutil.ToFloat64(p.metrics.Records.WithLabelValues(kind)); v != float64(want) {
			t.Errorf("records_total{kind=%q} = %v, want %d", kind, v, want)
		}
	}
	if v := testutil.ToFloat64(p.metrics.Bytes); v != float64(size) {
		t.Errorf("bytes_total %v, want %d", v, size)
	}
	if got := testutil.CollectAndCount(reg, "ecomstream_generator_file_write_duration_seconds"); got != 1 {
		t.Errorf("write duration histogram: %d series", got)
	}
	line := finishedLine(t, logs.String())
	for field, want := range map[string]int64{"files": 40, "records": n, "valid": c.Valid, "invalid": c.Invalid, "duplicate": c.Duplicate, "bytes": size} {
		if got, ok := line[field].(float64); !ok || int64(got) != want {
			t.Errorf("summary field %s = %v, want %d", field, line[field], want)
		}
	}
	if line["reason"] != StopMaxFiles {
		t.Errorf("reason %v", line["reason"])
	}
}

func finishedLine(t *testing.T, logs string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "generator finished" {
			return m
		}
	}
	t.Fatalf("no summary line in logs:\n%s", logs)
	return nil
}

func TestDurationStops(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Sleep, cfg.Duration, cfg.Clock = 20*time.Millisecond, 500*time.Millisecond, newSimClock(0)
	p, _, _ := newProducer(t, cfg)
	sum, err := p.Run(context.Background())
	if err != nil || sum.Reason != StopDuration {
		t.Fatalf("run: %+v %v", sum, err)
	}
	if sum.Elapsed != 500*time.Millisecond {
		t.Errorf("--duration 500ms ended after %v", sum.Elapsed)
	}
	// 500 ms at one file per 20 ms: files at 0, 20, ..., 480 ms.
	if sum.Files != 25 {
		t.Errorf("%d files in 500ms at a 20ms pace, want 25", sum.Files)
	}
	if files, _, _ := readDir(t, dir); int64(files) != sum.Files {
		t.Errorf("%d files on disk, %d in summary", files, sum.Files)
	}
}

func TestSignalStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	clock := newSimClock(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock.onSleep = func(n int) {
		if n == 7 { // the signal arrives while the 8th file waits for its turn
			cancel()
		}
	}
	cfg.Sleep, cfg.Clock = 5*time.Millisecond, clock
	p, _, _ := newProducer(t, cfg)
	sum, err := p.Run(ctx)
	if err != nil || sum.Reason != StopSignal || sum.Files != 7 {
		t.Fatalf("run: %+v %v", sum, err)
	}
	if files, c, _ := readDir(t, dir); int64(files) != sum.Files || c != sum.Rows {
		t.Errorf("on disk %d files %+v, summary %+v", files, c, sum)
	}
}

// TestHugeFileAbandoned checks that a file larger than one write is streamed, and that
// a stop while it is being written leaves nothing behind.
func TestHugeFileAbandoned(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MinRecords, cfg.MaxRecords = 30_000, 30_000 // about 4.5 MB: several writes
	p, _, _ := newProducer(t, cfg)
	if _, err := p.WriteFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, c, _ := readDir(t, dir)
	if files != 1 || c.Total() != 30_000 {
		t.Fatalf("%d files, %+v", files, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.WriteFile(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("write under a cancelled context: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("abandoned file left %d entries", len(ents))
	}
	if p.Summary().Files != 1 || p.Summary().Rows.Total() != 30_000 {
		t.Fatalf("abandoned rows counted: %+v", p.Summary())
	}
}

func TestBehindScheduleIsExposed(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	// 20k rows take a few ms each; asking for one per 100 µs cannot be kept.
	cfg.MinRecords, cfg.MaxRecords, cfg.Sleep, cfg.MaxFiles = 20_000, 20_000, 100*time.Microsecond, 10
	p, _, _ := newProducer(t, cfg)
	sum, err := p.Run(context.Background())
	if err != nil || sum.Files != 10 {
		t.Fatalf("%+v %v", sum, err)
	}
	if v := testutil.ToFloat64(p.metrics.Behind); v <= 0 {
		t.Errorf("behind_schedule_seconds = %v while lagging", v)
	}
}

// simClock is simulated time: SleepUntil jumps to its instant at once, and every reading
// of the clock costs perRead, which stands for the work done between two readings (a
// file write reads the clock two or three times). Schedules are then checked exactly,
// whatever the machine is doing.
type simClock struct {
	mu      sync.Mutex
	now     time.Time
	perRead time.Duration
	sleeps  int
	onSleep func(n int) // called after the n-th sleep (1-based), e.g. to cancel the run
}

func newSimClock(perRead time.Duration) *simClock {
	return &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), perRead: perRead}
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.perRead)
	return t
}

func (c *simClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.sleeps++
	n, hook := c.sleeps, c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return ctx.Err()
}

// fileStarts reads each placed file's start instant from its name (sorted by sequence).
func fileStarts(t *testing.T, dir string) []time.Time {
	t.Helper()
	ents, err := os.ReadDir(dir) // sorted by name, hence by sequence number
	if err != nil {
		t.Fatal(err)
	}
	starts := make([]time.Time, 0, len(ents))
	for k, e := range ents {
		var seq, nanos int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(e.Name(), "gen-test-"), "%d-%d.csv", &seq, &nanos); err != nil || seq != int64(k+1) {
			t.Fatalf("file name %q: %v", e.Name(), err)
		}
		starts = append(starts, time.Unix(0, nanos))
	}
	return starts
}

// TestKeepsPace checks that files follow a fixed schedule (file k starts at k·sleep)
// rather than sleeping after each write, which would drift by the write time of every
// file before: with writes costing a few simulated ms, file 50 would be 100+ ms late.
func TestKeepsPace(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	const sleep, perRead = 10 * time.Millisecond, time.Millisecond
	clock := newSimClock(perRead)
	begin := clock.now // the run's start: its first reading of the clock
	cfg.Sleep, cfg.MaxFiles, cfg.Clock = sleep, 50, clock
	p, _, _ := newProducer(t, cfg)
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	starts := fileStarts(t, dir)
	if len(starts) != 50 {
		t.Fatalf("%d files, want 50", len(starts))
	}
	for k, at := range starts {
		drift := at.Sub(begin) - time.Duration(k)*sleep
		// Waking up and starting the file read the clock a bounded number of times.
		if drift < 0 || drift > 4*perRead {
			t.Errorf("file %d starts %v off its schedule", k+1, drift)
		}
	}
	if v := testutil.ToFloat64(p.metrics.Behind); v != 0 {
		t.Errorf("behind_schedule_seconds = %v while on schedule", v)
	}
}

// TestStartAtBeginsTheScheduleThen: with StartAt, no file begins before it, file k
// begins at StartAt + k·sleep, and --duration counts from it (a run started earlier,
// its start-up behind it, places the same files as one started at StartAt).
func TestStartAtBeginsTheScheduleThen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	clock := newSimClock(0)
	startAt := clock.now.Add(700 * time.Millisecond)
	cfg.Sleep, cfg.Duration, cfg.StartAt, cfg.Clock = 20*time.Millisecond, 100*time.Millisecond, startAt, clock
	p, _, _ := newProducer(t, cfg)
	sum, err := p.Run(context.Background())
	if err != nil || sum.Reason != StopDuration {
		t.Fatalf("run: %+v %v", sum, err)
	}
	starts := fileStarts(t, dir)
	if len(starts) != 5 {
		t.Fatalf("%d files in the 100 ms from StartAt at a 20 ms pace, want 5", len(starts))
	}
	for k, at := range starts {
		if want := startAt.Add(time.Duration(k) * cfg.Sleep); !at.Equal(want) {
			t.Errorf("file %d begins %v after StartAt, want %v", k+1, at.Sub(startAt), want.Sub(startAt))
		}
	}
}

// TestAStopWhileWaitingForStartAtPlacesNothing: a signal before StartAt is a clean stop.
func TestAStopWhileWaitingForStartAtPlacesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	clock := newSimClock(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.Sleep, cfg.StartAt, cfg.Clock = 20*time.Millisecond, clock.now.Add(time.Hour), clock
	p, _, _ := newProducer(t, cfg)
	sum, err := p.Run(ctx)
	if err != nil || sum.Reason != StopSignal || sum.Files != 0 {
		t.Fatalf("run: %+v %v", sum, err)
	}
	if files, _, _ := readDir(t, dir); files != 0 {
		t.Errorf("%d files placed", files)
	}
}

// TestBehindScheduleIsExposed: writes slower than the pace are made back to back, the
// schedule is not reset, and the lag is exposed.
func TestStaleTmpRemovedAndDirCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "incoming")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, ".gen-test-00000007-123.csv.tmp")
	theirs := filepath.Join(dir, ".gen-other-00000007-123.csv.tmp")
	for _, f := range []string{mine, theirs} {
		if err := os.WriteFile(f, []byte("half a row"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newProducer(t, testConfig(dir))
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("stale tmp of this instance survived: %v", err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another instance's tmp was removed: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "new", "dir")
	newProducer(t, testConfig(missing))
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Errorf("output dir not created: %v", err)
	}
}

func TestSeedReproducesFiles(t *testing.T) {
	content := func(instance string) []byte {
		cfg := testConfig(t.TempDir())
		cfg.Instance, cfg.Seed, cfg.BadRate, cfg.DuplicateRate = instance, 42, 0.1, 0.1
		p, _, _ := newProducer(t, cfg)
		name, err := p.WriteFile(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(cfg.Dir, name))
		// event_time follows the clock; the rest follows the seed.
		return regexp.MustCompile(`[^,]*[0-9]{2}:[0-9]{2}:[0-9]{2}[^,]*`).ReplaceAll(b, []byte("T"))
	}
	if !bytes.Equal(content("gen-a"), content("gen-a")) {
		t.Error("the same seed and instance wrote different files")
	}
	if bytes.Equal(content("gen-a"), content("gen-b")) {
		t.Error("two replicas with the same seed wrote the same events")
	}
}

func TestMetricsLint(t *testing.T) {
	p, reg, _ := newProducer(t, testConfig(t.TempDir()))
	if _, err := p.WriteFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := []string{
		"ecomstream_generator_files_total", "ecomstream_generator_records_total",
		"ecomstream_generator_bytes_total", "ecomstream_generator_file_write_duration_seconds",
		"ecomstream_generator_behind_schedule_seconds",
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	if strings.Join(got, " ") != strings.Join(sorted(names), " ") {
		t.Errorf("metric names %v, want %v", got, sorted(names))
	}
	if n := testutil.CollectAndCount(p.metrics.Records); n != 3 {
		t.Errorf("records_total has %d kinds, want valid, invalid, duplicate", n)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	ok := testConfig("/tmp/x")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"min > max", func(c *Config) { c.MinRecords, c.MaxRecords = 10, 5 }, "--min-records 10 is greater than --max-records 5"},
		{"negative min", func(c *Config) { c.MinRecords = -1 }, "--min-records -1 is negative"},
		{"huge max", func(c *Config) { c.MaxRecords = MaxRecordsLimit + 1 }, "above the limit"},
		{"bad rate 1", func(c *Config) { c.BadRate = 1 }, "--bad-rate 1 is outside [0, 1)"},
		{"unknown codec", func(c *Config) { c.Compress = "bzip2" }, `--compress "bzip2": want none, gzip or zstd`},
		{"bad rate negative", func(c *Config) { c.BadRate = -0.1 }, "--bad-rate -0.1 is outside [0, 1)"},
		{"dup rate 1.5", func(c *Config) { c.DuplicateRate = 1.5 }, "--duplicate-rate 1.5 is outside [0, 1)"},
		{"rates sum", func(c *Config) { c.BadRate, c.DuplicateRate = 0.5, 0.5 }, "must be below 1"},
		{"negative sleep", func(c *Config) { c.Sleep = -time.Second }, "--sleep -1s is negative"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "--duration -1s is negative"},
		{"negative max files", func(c *Config) { c.MaxFiles = -1 }, "--max-files -1 is negative"},
		{"empty dir", func(c *Config) { c.Dir = "" }, "--output-dir is empty"},
		{"instance with slash", func(c *Config) { c.Instance = "a/b" }, "--instance"},
	}
	for _, tc := range cases {
		c := ok
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", tc.name, err, tc.want)
		}
		if _, err := New(c, zerolog.Nop(), prometheus.NewRegistry()); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
}

// BenchmarkWriteFile places files of 1000 rows (1% invalid, 1% duplicate) and reports
// the row rate one core sustains, sync and rename included.
func BenchmarkWriteFile(b *testing.B) {
	dir := b.TempDir()
	cfg := testConfig(dir)
	cfg.MinRecords, cfg.MaxRecords, cfg.BadRate, cfg.DuplicateRate = 1000, 1000, 0.01, 0.01
	p, _, _ := newProducer(b, cfg)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		name, err := p.WriteFile(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.Remove(filepath.Join(dir, name))
		b.StartTimer()
	}
	b.ReportMetric(float64(p.Summary().Rows.Total())/b.Elapsed().Seconds(), "rows/s")
}
