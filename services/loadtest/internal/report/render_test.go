package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
)

var update = flag.Bool("update", false, "rewrite testdata/report.json and the golden files")

// fixture is a fixed, synthetic high-load run: every section of the report has data.
func fixture() *Report {
	start := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	set, _ := scenario.Preset("high-load")
	set.Duration = 2 * time.Minute
	var files []FileLatency
	t0 := float64(start.Unix())
	for i := 0; i < 240; i++ {
		created := t0 + 0.5*float64(i)
		lat := 0.004 + 0.002*float64(i%7) + 0.3*math.Pow(float64(i%50)/50, 8)
		files = append(files, FileLatency{Created: created, Committed: created + lat, Rows: int64(200 + (i*37)%301)})
	}
	var rows int64
	for _, f := range files {
		rows += f.Rows
	}
	r := &Report{RunID: "high-load-20260201T120000Z", Scenario: "high-load", Mode: "local",
		StartedAt: start, EndedAt: start.Add(130 * time.Second), Settings: set,
		Env: Environment{Host: "ci", CPUs: 2, CPUModel: "Test CPU", MemoryGB: 8, Kernel: "Linux 6.1", PostgreSQL: "16.4",
			GoVersion: "go1.26", Notes: []string{"fixture"}},
		GenerationSeconds: 120.4, DrainSeconds: 0.05,
		Produced: Produced{Files: 240, Rows: rows, Valid: rows, Bytes: rows * 140, CountedFromFiles: true,
			FilesOnDisk: 240, RowsOnDisk: rows, ArchiveFiles: 240},
		Accounted: Accounted{Files: 240, Rows: rows, Inserted: rows, EventsRows: rows},
		Latency:   Summarize(files),
		Timeline:  Timeline(files, t0, t0+121, 5),
		Resources: Resources{Source: "/proc", Components: []string{"ingester", "postgres", "generator", "collector"}},
		Queries: []Query{
			{Name: "count", Label: "SELECT COUNT(*)", SQL: "SELECT count(*) FROM events", Runs: 5, MinMs: 9.1, MedianMs: 9.5, MaxMs: 12, Rows: rows, Plan: "Aggregate ← Seq Scan on events", Spark: "2-3 ms"},
			{Name: "by_user_id", Label: "SELECT by user_id", Runs: 5, MinMs: 0.02, MedianMs: 0.03, MaxMs: 0.1, Rows: 12, Plan: "Bitmap Heap Scan on events ← Bitmap Index Scan using idx_events_user_id", Spark: "5-10 ms"},
		},
		Indexes: []Index{
			{Table: "events", Name: "idx_events_user_id", SizeBytes: 1 << 20, Scans: 5, TupRead: 60, BlksHit: 990, BlksRead: 10, HitRate: 0.99},
			{Table: "events", Name: "events_pkey", SizeBytes: 3 << 20, HitRate: -1},
		},
		Database: Database{CacheHitRatio: 0.995, EventsTableBytes: 12 << 20, EventsIndexBytes: 6 << 20, TotalBytes: 30 << 20},
	}
	for i := range r.Timeline {
		r.Timeline[i].BacklogFiles = int64(i % 3)
	}
	for i := 0; i <= 125; i++ {
		s := ResourceSample{T: float64(i), HostCPU: 20 + float64(i%10),
			CPU: map[string]float64{"ingester": 10 + float64(i%5), "postgres": 15 + float64(i%7), "generator": 3, "collector": 1},
			Mem: map[string]float64{"ingester": 14e6 + float64(i)*1e4, "postgres": 80e6 + float64(i)*2e5, "generator": 9e6, "collector": 8e6}}
		r.Resources.Samples = append(r.Resources.Samples, s)
	}
	first, last := files[0].Created, files[len(files)-1].Committed
	r.Results = Results{ThroughputRowsPerSec: float64(rows) / (last - first), GeneratedRowsPerSec: float64(rows) / 120,
		OfferedRowsPerSec: set.OfferedRate(), AvgBatchSeconds: 0.012, Batches: 240, AvgBatchRows: float64(rows) / 240,
		PeakIngesterBytes: 15.25e6, PeakPostgresBytes: 105e6, PeakGeneratorBytes: 9e6, PeakCollectorBytes: 8e6}
	r.Results.PeakCPUPercent, r.Results.PeakHostCPUPercent = 16.5, 24.5
	Evaluate(r, DefaultThresholds(), 1)
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (go test ./internal/report -update after a deliberate change); first difference near:\n%s",
			path, firstDiff(string(got), string(want)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "got:  " + al[i] + "\nwant: " + bl[i]
		}
	}
	return "(lengths differ)"
}

func loadFixture(t *testing.T) *Report {
	t.Helper()
	path := filepath.Join("testdata", "report.json")
	if *update {
		b, _ := json.MarshalIndent(fixture(), "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestMarkdownGolden(t *testing.T) {
	r := loadFixture(t)
	md := Markdown(r)
	golden(t, "report.golden.md", []byte(md))
	for _, section := range []string{"## Test Configuration", "## Results", "### Against the Key Metrics targets",
		"## Side by side: Spark (seed report) vs ecomstream", "## Latency Distribution Analysis", "| 0-10 seconds |",
		"| 60+ seconds |", "| P75 |", "| P90 |", "### Query Performance", "### Index Effectiveness", "## Loss accounting"} {
		if !strings.Contains(md, section) {
			t.Errorf("markdown lacks %q", section)
		}
	}
}

func TestHTMLGolden(t *testing.T) {
	r := loadFixture(t)
	page := HTML(r)
	golden(t, "report.golden.html", []byte(page))
	// Self-contained: no scripts and nothing loaded from elsewhere (the SVG namespace is
	// an identifier, not a fetch).
	if strings.Contains(page, "<script") || regexp.MustCompile(`(src|href)=`).MatchString(page) {
		t.Error("the page loads something from elsewhere")
	}
	if n := strings.Count(page, "<svg"); n < 6 {
		t.Errorf("%d charts, want latency distribution, throughput, latency, backlog, CPU, memory", n)
	}
}

func TestFixtureStable(t *testing.T) {
	// The JSON fixture is what the builder produces: a change to the report's shape shows
	// here first (then -update).
	want, err := os.ReadFile(filepath.Join("testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(fixture(), "", "  ")
	if !bytes.Equal(append(got, '\n'), want) && !*update {
		t.Errorf("testdata/report.json is not the fixture's JSON; run with -update after a deliberate change")
	}
}

// TestHTMLInChromium renders the golden page in headless Chromium and checks that a
// screenshot of it comes out with the charts drawn; the PNG is kept as a test artefact
// (in $LOADTEST_ARTIFACTS, default the test's artefact directory) for a person to look at.
// Without Chromium it skips, unless CI=true: CI must have it (apt-get install chromium).
func TestHTMLInChromium(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no headless Chromium on PATH: the screenshot test needs it (apt-get install -y chromium)")
		}
		t.Skip("no headless Chromium on PATH (apt-get install -y chromium); the report's screenshot is not checked")
	}
	page, err := filepath.Abs(filepath.Join("testdata", "report.golden.html"))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("LOADTEST_ARTIFACTS")
	if out == "" {
		out = t.ArtifactDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "report.png")
	_ = os.Remove(shot) // a screenshot of an earlier run must not pass for this one's
	const width, height = 1100, 5200
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// A profile of its own and nothing fetched in the background: the page is all there is.
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(t.TempDir(), "profile"),
		fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", "--screenshot="+shot, "file://"+page)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("screenshot %s is %dx%d, want %dx%d", shot, b.Dx(), b.Dy(), width, height)
	}
	// Non-trivial: many colours (text, tables, lines), and the charts' first palette
	// colour filling at least the latency-distribution bar, so the SVG was drawn.
	colours, chartBlue := map[[3]uint32]bool{}, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 == 0x00 && g>>8 == 0x72 && bl>>8 == 0xB2 {
				chartBlue++
			}
		}
	}
	if len(colours) < 64 || chartBlue < 2000 {
		t.Fatalf("screenshot %s looks empty: %d colours, %d pixels of the charts' #0072B2", shot, len(colours), chartBlue)
	}
	t.Logf("screenshot: %s (%d colours, %d chart-blue pixels)", shot, len(colours), chartBlue)
}
