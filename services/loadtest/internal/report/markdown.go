package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
)

// Markdown renders the report in the seed report's shape: configuration, results with
// ✓/⚠/✗, Spark side by side, latency distribution, database performance, resources.
func Markdown(r *Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	title := strings.ToUpper(r.Scenario[:1]) + r.Scenario[1:]
	p("# Load test report: %s — ecomstream\n\n", title)
	verdict := "**PASS** — every SLA target and invariant holds."
	if !r.Passed {
		verdict = "**FAIL** — " + strings.Join(r.Failed(), "; ") + "."
	}
	p("Run `%s`, %s mode, %s → %s (UTC). %s\n\n", r.RunID, r.Mode, r.StartedAt.Format("2006-01-02 15:04:05"),
		r.EndedAt.Format("15:04:05"), verdict)
	if r.MaxRate != nil {
		p("**Highest sustained rate: %s** (offered %s, P99 %s, zero loss)", Rate(r.MaxRate.RowsPerSec), Rate(r.MaxRate.Offered), Dur(r.MaxRate.P99))
		if r.MaxRate.FirstFail > 0 {
			p("; at %s offered: %s", Rate(r.MaxRate.FirstFail), r.MaxRate.FailReason)
		}
		p(".\n\n")
		if r.MaxRate.BulkCopy > 0 {
			p("**2-stream `\\copy` bulk rate, same PostgreSQL, same run: %s**; highest sustained rate / bulk rate = %.2f.\n\n",
				Rate(r.MaxRate.BulkCopy), r.MaxRate.RowsPerSec/r.MaxRate.BulkCopy)
		}
		if r.MaxRate.BulkCopyAtBest > 0 {
			p("The same 2-stream `\\copy` into a copy of events holding %s of its rows (the table the highest passing step started from; dropped afterwards): %s; highest sustained rate / that rate = %.2f.\n\n",
				Int(r.MaxRate.EventsAtBest), Rate(r.MaxRate.BulkCopyAtBest), r.MaxRate.RowsPerSec/r.MaxRate.BulkCopyAtBest)
		}
		if r.MaxRate.BulkCopyAtEnd > 0 {
			p("The same 2-stream `\\copy` into events at the end of the ramp (%s rows in it; rolled back): %s; highest sustained rate / that rate = %.2f.\n\n",
				Int(r.MaxRate.EventsAtEnd), Rate(r.MaxRate.BulkCopyAtEnd), r.MaxRate.RowsPerSec/r.MaxRate.BulkCopyAtEnd)
		}
	}
	p("---\n\n## Test Configuration\n\n```\n")
	s := r.Settings
	p("Data Generator Settings:\n")
	if s.Ramp != nil {
		p("  • Ramp: %s per step, %g files/s, %s\n", s.Ramp.StepDuration, s.Ramp.FilesPerSec, rampText(s.Ramp))
		p("  • Step passes: P99 < %s, zero loss, drained within %s\n", Dur(s.Ramp.P99Target.Seconds()), s.Ramp.DrainTimeout)
	} else {
		p("  • Records per file: %s\n", rangeText(s.MinRecords, s.MaxRecords))
		p("  • Generation interval: %s\n", secondsText(s.Sleep))
		p("  • Test duration: %s\n", durText(s.Duration))
	}
	p("  • Generators: %d (offered %s)\n", s.Generators, offered(r))
	if s.BadRate > 0 || s.DupRate > 0 {
		p("  • Invalid rows: %s, duplicate rows: %s\n", Percent(s.BadRate), Percent(s.DupRate))
	}
	p("\necomstream Settings:\n")
	p("  • Ingesters: %d\n", s.Ingesters)
	trig := "continuous (0)"
	if s.TriggerInterval > 0 {
		trig = s.TriggerInterval.String()
	}
	p("  • Trigger interval: %s", trig)
	if s.SparkTrigger != "" {
		p(" (Spark: %s)", s.SparkTrigger)
	}
	p("\n  • One transaction per micro-batch: COPY events + ledger row per file\n")
	p("\nSystem Resources:\n")
	e := r.Env
	p("  • CPU: %d cores (%s)\n  • RAM: %.1f GB total\n", e.CPUs, orDash(e.CPUModel), e.MemoryGB)
	p("  • OS: %s\n  • PostgreSQL: %s\n", orDash(e.Kernel), orDash(e.PostgreSQL))
	for _, n := range e.Notes {
		p("  • %s\n", n)
	}
	p("```\n\n")

	p("## Results\n\n| Metric | Value | Status |\n|--------|-------|--------|\n")
	for _, row := range resultRows(r) {
		p("| %s | %s | %s |\n", row[0], row[1], row[2])
	}
	p("\n### Against the Key Metrics targets\n\n| Metric | Target | Value | Status |\n|--------|--------|-------|--------|\n")
	for _, c := range r.Checks {
		if c.Group == "sla" {
			p("| %s | %s | %s | %s |\n", c.Metric, c.Target, c.Value, c.Status)
		}
	}
	p("\n### ecomstream's invariants and targets\n\n| Check | Target | Value | Status |\n|-------|--------|-------|--------|\n")
	for _, c := range r.Checks {
		if c.Group != "sla" {
			p("| %s | %s | %s | %s |\n", c.Metric, c.Target, c.Value, c.Status)
		}
	}
	p("\n✓ meets the target; ⚠ meets it within the warning margin (%s) or is informational; ✗ misses it (the command exits non-zero).\n",
		"10 %")
	if len(r.Problems) > 0 {
		p("\nProblems during the run:\n\n")
		for _, pr := range r.Problems {
			p("- %s\n", pr)
		}
	}

	if sp, ok := SparkFor(r.Scenario); ok {
		p("\n## Side by side: Spark (seed report) vs ecomstream\n\n")
		if r.Scenario == "max" {
			p("The max preset is compared with Spark's stress run, its highest rate.\n\n")
		}
		p("Spark: %s, on 4 cores / 8 GB. ecomstream: %s, on %d cores.\n\n", sp.Config, configLine(r), e.CPUs)
		p("| Metric | Spark | ecomstream | Ratio |\n|--------|-------|------------|-------|\n")
		for _, row := range sparkRows(r, sp) {
			p("| %s | %s | %s | %s |\n", row[0], row[1], row[2], row[3])
		}
	}

	if len(r.Steps) > 0 {
		p("\n## Max rate: the ramp\n\nCPU µs/row: each component's CPU over the step (generation and drain) per row the step committed; ")
		p("events before: the rows the earlier steps left in the table.\n\n")
		p("| Step | Rows/file | Files/s | Offered | Generated | Throughput | Lost | P50 | P95 | P99 | Drain | Peak CPU | Events before | CPU µs/row: PostgreSQL / ingester / generator | Result |\n")
		p("|------|-----------|---------|---------|-----------|------------|------|-----|-----|-----|-------|----------|---------------|------|--------|\n")
		for _, st := range r.Steps {
			res := Pass
			if !st.Passed {
				res = Fail + " " + st.Why
			}
			cpu := "—"
			if st.CPUPerRow != nil {
				cpu = fmt.Sprintf("%.1f / %.2f / %.2f", st.CPUPerRow["postgres"], st.CPUPerRow["ingester"], st.CPUPerRow["generator"])
			}
			p("| %d | %s | %g | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", st.Index, Int(int64(st.RowsPerFile)),
				st.FilesPerSec, Rate(st.Offered), Rate(st.GeneratedRate), Rate(st.Throughput), Int(st.Lost),
				Dur(st.P50), Dur(st.P95), Dur(st.P99), Dur(st.DrainSeconds), Percent(st.PeakCPU/100), Int(st.EventsBefore), cpu, res)
		}
	}

	p("\n---\n\n## Latency Distribution Analysis\n\n")
	p("Latency of a row = its file's commit time − the file's creation time (modification time), ")
	p("weighted by the file's rows (all rows of a file share it).\n\n")
	bandTable(&b, "Latency Range", r.Latency.Bands)
	p("\nAt sub-second resolution:\n\n")
	bandTable(&b, "Latency Range", r.Latency.Fine)
	l := r.Latency
	p("\nPercentiles:\n\n| Percentile | Latency |\n|------------|---------|\n")
	for _, x := range []struct {
		n string
		v float64
	}{{"P50 (median)", l.P50}, {"P75", l.P75}, {"P90", l.P90}, {"P95", l.P95}, {"P99", l.P99}, {"max", l.Max}, {"mean", l.Mean}} {
		p("| %s | %s |\n", x.n, Dur(x.v))
	}
	if sp, ok := SparkFor(r.Scenario); ok && len(sp.Bands) > 0 && r.Scenario != "max" {
		p("\nSpark's distribution in the seed report for this scenario:\n\n")
		bandTable(&b, "Latency Range", sp.Bands)
	}

	if len(r.Timeline) > 0 {
		p("\n## Throughput and latency over time\n\n")
		p("| Time | Generated rows/s | Committed rows/s | P50 | P95 | P99 | Backlog (files) |\n|------|------|------|-----|-----|-----|------|\n")
		step := max(1, len(r.Timeline)/15)
		for i := 0; i < len(r.Timeline); i += step {
			pt := r.Timeline[i]
			lat := func(v float64) string {
				if pt.Throughput == 0 {
					return "—"
				}
				return Dur(v)
			}
			p("| %s | %s | %s | %s | %s | %s | %d |\n", clock(pt.T), Int(int64(pt.Offered+0.5)), Int(int64(pt.Throughput+0.5)),
				lat(pt.P50), lat(pt.P95), lat(pt.P99), pt.BacklogFiles)
		}
		p("\nThe HTML report charts every bucket (%s each).\n", Dur(bucketWidth(r.Timeline)))
	}

	p("\n## Resources\n\nSampled every second from %s. CPU in %% of one core (the machine has %d); peak = the highest 10 s average.\n\n",
		orDash(r.Resources.Source), e.CPUs)
	p("| Component | Peak CPU | Average CPU | Peak memory | Average memory |\n|-----------|----------|-------------|-------------|----------------|\n")
	for _, c := range r.Resources.Components {
		pk, av, pm, am := componentStats(r.Resources.Samples, c)
		p("| %s | %.0f %% | %.0f %% | %s | %s |\n", c, pk, av, Bytes(pm), Bytes(am))
	}
	p("| pipeline (all of the above) | %s of the machine | | | |\n", Percent(r.Results.PeakCPUPercent/100))
	p("| host (everything on the machine) | %s of the machine | | | |\n", Percent(r.Results.PeakHostCPUPercent/100))

	p("\n---\n\n## Database Performance Analysis\n\n### Query Performance\n\n")
	p("Each query timed %s with `EXPLAIN (ANALYZE, BUFFERS)` after the run, on the run's %s rows (planning + execution).\n\n",
		runsText(r.Queries), Int(r.Accounted.EventsRows))
	p("| Query Type | Time (median) | min – max | Rows | Plan | Spark (typical) |\n|-----------|---------------|-----------|------|------|-----------------|\n")
	for _, q := range r.Queries {
		p("| %s | %s | %s – %s | %s | %s | %s |\n", q.Label, ms(q.MedianMs), ms(q.MinMs), ms(q.MaxMs), Int(q.Rows), q.Plan, orDash(q.Spark))
	}
	p("\n### Insert Performance\n\n```\n")
	res := r.Results
	p("Micro-batches (one transaction each): %s\n", Int(int64(res.Batches)))
	p("  Average: %s per batch, %s rows per batch\n", Dur(res.AvgBatchSeconds), Int(int64(res.AvgBatchRows+0.5)))
	if res.AvgBatchSeconds > 0 {
		p("  Rows per second within a batch: %s\n", Rate(res.AvgBatchRows/res.AvgBatchSeconds))
	}
	p("```\n\n### Index Effectiveness\n\n")
	p("| Index | Size | Usage Count (scans) | Tuples read | Hit Rate | Spark: size / usage / hit |\n|-------|------|------|------|------|------|\n")
	var total int64
	for _, ix := range r.Indexes {
		if ix.Table != "events" {
			continue
		}
		total += ix.SizeBytes
		sp := "—"
		if s, ok := SparkIndexes[ix.Name]; ok {
			sp = fmt.Sprintf("%s / %s / %.0f %%", s.Size, Int(s.Usage), s.HitRate)
		}
		p("| %s | %s | %s | %s | %s | %s |\n", ix.Name, Bytes(float64(ix.SizeBytes)), Int(ix.Scans), Int(ix.TupRead), hit(ix.HitRate), sp)
	}
	p("\nTotal index size of events: %s (table %s). Cache hit ratio of the database: %s (Spark's report: %.1f %%).\n",
		Bytes(float64(total)), Bytes(float64(r.Database.EventsTableBytes)), Percent(r.Database.CacheHitRatio), SparkCacheHitRatio)
	p("Usage counts are PostgreSQL's own (`pg_stat_user_indexes.idx_scan`) since the run's database was created; the ingester only inserts, ")
	p("so the scans are the collector's measurements (it runs the report's queries every 30 s) and the timing runs above. ")
	p("Hit rate = `idx_blks_hit / (idx_blks_hit + idx_blks_read)`, inserts included.\n")

	p("\n---\n\n## Loss accounting\n\n```\n")
	pr, a := r.Produced, r.Accounted
	p("Produced (the generators' final counts): %s files, %s rows (%s valid, %s invalid, %s duplicate), %s\n",
		Int(pr.Files), Int(pr.Rows), Int(pr.Valid), Int(pr.Invalid), Int(pr.Duplicate), Bytes(float64(pr.Bytes)))
	if pr.CountedFromFiles {
		p("On the volume afterwards:                %s files, %s rows (archive %s, failed %s, still incoming %s)\n",
			Int(pr.FilesOnDisk), Int(pr.RowsOnDisk), Int(pr.ArchiveFiles), Int(pr.FailedFiles), Int(pr.IncomingFiles))
	}
	p("Accounted in the database:               %s files (%s failed whole), %s rows = %s inserted + %s rejected + %s duplicate\n",
		Int(a.Files), Int(a.FailedFiles), Int(a.Rows), Int(a.Inserted), Int(a.Rejected), Int(a.Duplicate))
	p("  events rows of the run: %s; rejected_records rows: %s\n", Int(a.EventsRows), Int(a.RejectedRows))
	p("Lost (produced − accounted):              %s\n", Int(a.Lost))
	p("Duplicates: %s event_ids stored twice, %s files committed twice\n```\n", Int(a.DuplicateInDB), Int(a.FilesCommittedTwice))

	p("\n## Methodology\n\n")
	p("- Latency: `ingested_files.committed_at − file_created_at` per file, weighted by its rows; nearest-rank percentiles over all rows of the run.\n")
	p("- Throughput: rows accounted ÷ (last commit − first file creation). Generated rate: rows produced ÷ generation time.\n")
	p("- Drain: after the generators stop, the run waits until the ledger holds every produced file and the incoming directory is empty%s.\n", drainText(r))
	p("- CPU and memory: %s.\n", orDash(r.Resources.Source))
	p("- Targets: the seed report's Key Metrics (%s), ecomstream's own targets in the second table.\n", "deploy/prometheus/rules/sla-thresholds.rules.yml")
	p("- Same data: `%s`; charts: the `.html` next to this file.\n", r.baseName()+".json")
	return b.String()
}

func (r *Report) baseName() string {
	if r.RunID != "" {
		return r.RunID // <scenario>-<UTC time the run began>
	}
	return fmt.Sprintf("%s-%s", r.Scenario, r.StartedAt.UTC().Format("20060102T150405Z"))
}

// BaseName is the file name (without extension) of the report: <scenario>-<UTC time>.
func (r *Report) BaseName() string { return r.baseName() }

func drainText(r *Report) string {
	if r.DrainTimedOut {
		return fmt.Sprintf(" (it timed out after %s)", Dur(r.DrainSeconds))
	}
	return fmt.Sprintf(" (%s here)", Dur(r.DrainSeconds))
}

func runsText(qs []Query) string {
	if len(qs) == 0 {
		return "—"
	}
	return fmt.Sprintf("%d times", qs[0].Runs)
}

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func hit(h float64) string {
	if h < 0 {
		return "—"
	}
	return Percent(h)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func rangeText(lo, hi int) string {
	if lo == hi {
		return Int(int64(lo))
	}
	return fmt.Sprintf("%s-%s", Int(int64(lo)), Int(int64(hi)))
}

func secondsText(d time.Duration) string {
	s := d.Seconds()
	if s == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%g seconds", s)
}

func durText(d time.Duration) string {
	if d%time.Minute == 0 {
		m := int(d / time.Minute)
		if m == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", m)
	}
	return d.String()
}

func clock(t float64) string {
	s := int(t + 0.5)
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

func offered(r *Report) string {
	if r.Settings.Ramp != nil {
		return "ramped"
	}
	return Rate(r.Settings.OfferedRate())
}

// rampText describes how the ramp chose its offered rates. Reports written before the
// ramp had a climb factor (Climb 0) doubled, then ran one step half-way.
func rampText(rp *scenario.Ramp) string {
	if rp.Climb <= 1 {
		return "offered rate doubling from " + Rate(rp.StartRate) + "; after the first miss, one step half-way"
	}
	return fmt.Sprintf("offered rate from %s, doubling %d times, then ×%g a step until a miss; then bisection between the last pass and the first miss until the gap is ≤ %s of the pass; at most %d steps",
		Rate(rp.StartRate), rp.Doublings, rp.Climb, Percent(rp.Resolution), rp.MaxSteps)
}

func configLine(r *Report) string {
	s := r.Settings
	if s.Ramp != nil {
		return fmt.Sprintf("offered rate ramped from %s, %s steps", Rate(s.Ramp.StartRate), s.Ramp.StepDuration)
	}
	t := "continuous"
	if s.TriggerInterval > 0 {
		t = s.TriggerInterval.String() + " trigger"
	}
	return fmt.Sprintf("%s rows/file every %s, %s, %s", rangeText(s.MinRecords, s.MaxRecords), s.Sleep, durText(s.Duration), t)
}

func bucketWidth(pts []Point) float64 {
	if len(pts) == 0 {
		return 0
	}
	return pts[0].T
}

func bandTable(b *strings.Builder, head string, bands []Band) {
	fmt.Fprintf(b, "| %s | Count | Percentage | Cumulative |\n|---|---:|---:|---:|\n", head)
	for _, x := range bands {
		fmt.Fprintf(b, "| %s | %s | %.1f %% | %.1f %% |\n", x.Label, Int(x.Count), x.Percent, x.Cumulative)
	}
}

func statusOf(r *Report, key string) string {
	for _, c := range r.Checks {
		if c.Key == key {
			return c.Status
		}
	}
	return ""
}

// resultRows is the seed report's results table.
func resultRows(r *Report) [][3]string {
	a, res, l := r.Accounted, r.Results, r.Latency
	lost := statusOf(r, "lost")
	skipped := a.Rejected + a.Duplicate + max(a.Lost, 0)
	skippedPct := 0.0
	if r.Produced.Rows > 0 {
		skippedPct = float64(skipped) / float64(r.Produced.Rows)
	}
	return [][3]string{
		{"Total records generated", Int(r.Produced.Rows), lost},
		{"Total records inserted", Int(a.Inserted), lost},
		{"Skipped/failed records", fmt.Sprintf("%s (%s): %s rejected, %s duplicate, %s lost", Int(skipped), Percent(skippedPct),
			Int(a.Rejected), Int(a.Duplicate), Int(a.Lost)), statusOf(r, "error_rate")},
		{"Average throughput", Rate(res.ThroughputRowsPerSec), statusOf(r, "throughput")},
		{"P50 latency", Dur(l.P50), statusOf(r, "latency_p50")},
		{"P95 latency", Dur(l.P95), statusOf(r, "latency_p95")},
		{"P99 latency", Dur(l.P99), worst(statusOf(r, "latency_p99"), statusOf(r, "p99_target"))},
		{"Avg batch processing time", Dur(res.AvgBatchSeconds), statusOf(r, "batch_duration")},
		{"Peak CPU usage", fmt.Sprintf("%s (pipeline; host %s)", Percent(res.PeakCPUPercent/100), Percent(res.PeakHostCPUPercent/100)), statusOf(r, "cpu")},
		{"Peak memory (ingester)", Bytes(res.PeakIngesterBytes), statusOf(r, "ingester_memory")},
		{"Peak memory (PostgreSQL)", Bytes(res.PeakPostgresBytes), statusOf(r, "postgres_memory")},
		{"Duplicates detected", Int(a.DuplicateInDB + a.FilesCommittedTwice), statusOf(r, "duplicates")},
		{"Rows lost", Int(a.Lost), lost},
	}
}

func worst(a, b string) string {
	rank := map[string]int{"": 0, Pass: 1, Warn: 2, Fail: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func sparkRows(r *Report, sp SparkRun) [][4]string {
	a, res, l := r.Accounted, r.Results, r.Latency
	skipped := a.Rejected + max(a.Lost, 0)
	pct := 0.0
	if r.Produced.Rows > 0 {
		pct = 100 * float64(skipped) / float64(r.Produced.Rows)
	}
	f := func(v float64) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf("%g s", v)
	}
	gb := func(v float64) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f GB", v)
	}
	rows := [][4]string{
		{"Total records generated", Int(sp.Generated), Int(r.Produced.Rows), Times(float64(r.Produced.Rows), float64(sp.Generated))},
		{"Total records inserted", Int(sp.Inserted), Int(a.Inserted), Times(float64(a.Inserted), float64(sp.Inserted))},
		{"Skipped/failed/lost records", fmt.Sprintf("%s (%.1f %%)", Int(sp.Skipped), sp.SkippedPercent),
			fmt.Sprintf("%s (%s)", Int(skipped), Percent(pct/100)), Ratio(pct, sp.SkippedPercent, true)},
		{"Average throughput", Rate(sp.Throughput), Rate(res.ThroughputRowsPerSec), Ratio(res.ThroughputRowsPerSec, sp.Throughput, false)},
		{"P50 latency", f(sp.P50), Dur(l.P50), Ratio(l.P50, sp.P50, true)},
	}
	if sp.P75 > 0 {
		rows = append(rows, [4]string{"P75 latency", f(sp.P75), Dur(l.P75), Ratio(l.P75, sp.P75, true)},
			[4]string{"P90 latency", f(sp.P90), Dur(l.P90), Ratio(l.P90, sp.P90, true)})
	}
	rows = append(rows,
		[4]string{"P95 latency", f(sp.P95), Dur(l.P95), Ratio(l.P95, sp.P95, true)},
		[4]string{"P99 latency", f(sp.P99), Dur(l.P99), Ratio(l.P99, sp.P99, true)},
		[4]string{"Avg batch processing time", f(sp.AvgBatch), Dur(res.AvgBatchSeconds), Ratio(res.AvgBatchSeconds, sp.AvgBatch, true)},
		[4]string{"Peak CPU usage", fmt.Sprintf("%g %% (4 cores)", sp.PeakCPU), fmt.Sprintf("%s (%d cores)", Percent(res.PeakCPUPercent/100), r.Env.CPUs),
			Ratio(res.PeakCPUPercent, sp.PeakCPU, true)},
		[4]string{"Peak memory (Spark driver / ingester)", gb(sp.PeakSparkGB), Bytes(res.PeakIngesterBytes), Ratio(res.PeakIngesterBytes, sp.PeakSparkGB*(1<<30), true)},
		[4]string{"Peak memory (PostgreSQL)", gb(sp.PeakPostgresGB), Bytes(res.PeakPostgresBytes), Ratio(res.PeakPostgresBytes, sp.PeakPostgresGB*(1<<30), true)},
		[4]string{"Duplicates detected", Int(sp.Duplicates), Int(a.DuplicateInDB + a.FilesCommittedTwice), "="},
	)
	return rows
}

// componentStats: peak (10 s average) and average CPU, peak and average memory.
func componentStats(samples []ResourceSample, c string) (peakCPU, avgCPU, peakMem, avgMem float64) {
	if len(samples) == 0 {
		return
	}
	var sc, sm float64
	for i, s := range samples {
		sc += s.CPU[c]
		sm += s.Mem[c]
		peakMem = math.Max(peakMem, s.Mem[c])
		var w float64
		n := 0
		for j := i; j < len(samples) && samples[j].T-s.T < 10; j++ {
			w += samples[j].CPU[c]
			n++
		}
		peakCPU = math.Max(peakCPU, w/float64(n))
	}
	n := float64(len(samples))
	return peakCPU, sc / n, peakMem, sm / n
}

// sortedComponents is the components of a sample set in a stable order.
func sortedComponents(samples []ResourceSample) []string {
	seen := map[string]bool{}
	for _, s := range samples {
		for k := range s.CPU {
			seen[k] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
