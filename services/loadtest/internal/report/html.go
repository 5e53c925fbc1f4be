package report

import (
	"fmt"
	"math"
	"strings"
)

const css = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:980px;color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}th,td{border:1px solid #ddd;padding:.28rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.warn{color:#9a6700;font-weight:600}.fail{color:#cf222e;font-weight:600}
.badge{display:inline-block;padding:.2rem .7rem;border-radius:1rem;color:#fff;font-weight:700}.badge.pass{background:#1a7f37;color:#fff}.badge.fail{background:#cf222e;color:#fff}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;font-size:.85rem}.muted{color:#666;font-size:.9rem}
svg.chart{display:block;margin:.8rem 0;width:100%;height:auto;background:#fff;border:1px solid #eee}
svg .grid{stroke:#eee}svg .axis{stroke:#888}svg .tick{stroke:#888}svg text{font-family:system-ui,sans-serif;fill:#333}
svg .ct{font-size:14px;font-weight:600}svg .yl{font-size:11px;text-anchor:end}svg .xl{font-size:11px;text-anchor:middle}
svg .al{font-size:11px;fill:#666}svg .lg{font-size:12px}svg .bl{font-size:11px;text-anchor:middle}svg .bl.in{fill:#fff;font-weight:600}
svg .hv:hover{fill-opacity:.07}svg .mk .ml{stroke:#555;stroke-dasharray:2 3}svg .mk.fail .ml{stroke:#cf222e}
svg .mk text{font-size:11px;fill:#444;paint-order:stroke;stroke:#fff;stroke-width:3px}svg .mk.fail text{fill:#cf222e}
.grid2{display:grid;grid-template-columns:1fr;gap:.5rem}`

// HTML renders the report as one self-contained page: inline CSS and SVG charts, no
// scripts, fonts or images from elsewhere (the charts' hover values are SVG titles).
func HTML(r *Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	title := fmt.Sprintf("Load test report: %s — ecomstream", r.Scenario)
	p("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">")
	p("<title>%s</title><style>%s</style></head><body>\n", esc(title), css)
	p("<h1>%s</h1>\n", esc(title))
	badge := `<span class="badge pass">PASS</span>`
	if !r.Passed {
		badge = `<span class="badge fail">FAIL</span>`
	}
	p("<p>%s Run <code>%s</code>, %s mode, %s → %s UTC.</p>\n", badge, esc(r.RunID), esc(r.Mode),
		r.StartedAt.Format("2006-01-02 15:04:05"), r.EndedAt.Format("15:04:05"))
	if f := r.Failed(); len(f) > 0 {
		p("<ul>")
		for _, x := range f {
			p("<li class=\"fail\">%s</li>", esc(x))
		}
		p("</ul>\n")
	}
	if r.MaxRate != nil {
		p("<p><strong>Highest sustained rate: %s</strong> (offered %s, P99 %s, zero loss)", esc(Rate(r.MaxRate.RowsPerSec)),
			esc(Rate(r.MaxRate.Offered)), esc(Dur(r.MaxRate.P99)))
		if r.MaxRate.FirstFail > 0 {
			p("; at %s offered: %s", esc(Rate(r.MaxRate.FirstFail)), esc(r.MaxRate.FailReason))
		}
		p(".</p>\n")
	}

	p("<h2>Test configuration</h2>\n<p>%s; %d generator(s), %d ingester(s), %s. Host: %d cores (%s), %.1f GB, %s, PostgreSQL %s.</p>\n",
		esc(configLine(r)), r.Settings.Generators, r.Settings.Ingesters, esc(triggerText(r)), r.Env.CPUs, esc(orDash(r.Env.CPUModel)),
		r.Env.MemoryGB, esc(orDash(r.Env.Kernel)), esc(orDash(r.Env.PostgreSQL)))
	if len(r.Env.Notes) > 0 {
		p("<ul class=\"muted\">")
		for _, n := range r.Env.Notes {
			p("<li>%s</li>", esc(n))
		}
		p("</ul>\n")
	}

	p("<h2>Results</h2>\n")
	table(&b, []string{"Metric", "Value", "Status"}, rows3(resultRows(r)), 2)
	p("<h3>Against the Key Metrics targets</h3>\n")
	table(&b, []string{"Metric", "Target", "Value", "Status"}, checkRows(r, true), 3)
	p("<h3>ecomstream's invariants and targets</h3>\n")
	table(&b, []string{"Check", "Target", "Value", "Status"}, checkRows(r, false), 3)
	if len(r.Problems) > 0 {
		p("<p class=\"fail\">Problems during the run:</p><ul>")
		for _, x := range r.Problems {
			p("<li>%s</li>", esc(x))
		}
		p("</ul>\n")
	}
	if sp, ok := SparkFor(r.Scenario); ok {
		p("<h2>Side by side: Spark (seed report) vs ecomstream</h2>\n<p class=\"muted\">Spark: %s, on 4 cores / 8 GB. ecomstream: %s, on %d cores.</p>\n",
			esc(sp.Config), esc(configLine(r)), r.Env.CPUs)
		var rows [][]string
		for _, x := range sparkRows(r, sp) {
			rows = append(rows, x[:])
		}
		table(&b, []string{"Metric", "Spark", "ecomstream", "Ratio"}, rows, -1)
	}
	if len(r.Steps) > 0 {
		p("<h2>Max rate: the ramp</h2>\n")
		var rows [][]string
		for _, st := range r.Steps {
			res := Pass
			if !st.Passed {
				res = Fail + " " + st.Why
			}
			rows = append(rows, []string{fmt.Sprint(st.Index), Int(int64(st.RowsPerFile)), Rate(st.Offered), Rate(st.GeneratedRate),
				Rate(st.Throughput), Int(st.Lost), Dur(st.P50), Dur(st.P99), Dur(st.DrainSeconds), Percent(st.PeakCPU / 100), res})
		}
		table(&b, []string{"Step", "Rows/file", "Offered", "Generated", "Throughput", "Lost", "P50", "P99", "Drain", "Peak CPU", "Result"}, rows, 10)
	}

	p("<h2>Charts</h2>\n<p class=\"muted\">Hover over a chart for the values at a moment.</p>\n<div class=\"grid2\">\n")
	p("%s\n", BarChart("Latency distribution (sub-second bands)", r.Latency.Fine))
	for _, c := range timeCharts(r) {
		p("%s\n", c.SVG())
	}
	p("</div>\n")

	p("<h2>Latency distribution</h2>\n<p class=\"muted\">Latency of a row = its file's commit time − the file's creation time, weighted by the file's rows.</p>\n")
	table(&b, []string{"Latency Range", "Count", "Percentage", "Cumulative"}, bandRows(r.Latency.Bands), -1)
	table(&b, []string{"Latency Range (sub-second)", "Count", "Percentage", "Cumulative"}, bandRows(r.Latency.Fine), -1)
	l := r.Latency
	table(&b, []string{"P50", "P75", "P90", "P95", "P99", "max", "mean"},
		[][]string{{Dur(l.P50), Dur(l.P75), Dur(l.P90), Dur(l.P95), Dur(l.P99), Dur(l.Max), Dur(l.Mean)}}, -1)
	if sp, ok := SparkFor(r.Scenario); ok && len(sp.Bands) > 0 && r.Scenario != "max" {
		p("<p class=\"muted\">Spark's distribution in the seed report for this scenario:</p>\n")
		table(&b, []string{"Latency Range", "Count", "Percentage", "Cumulative"}, bandRows(sp.Bands), -1)
	}

	p("<h2>Resources</h2>\n<p class=\"muted\">%s; peak = highest 10 s average, CPU in %% of one core.</p>\n", esc(orDash(r.Resources.Source)))
	var rrows [][]string
	for _, c := range r.Resources.Components {
		pk, av, pm, am := componentStats(r.Resources.Samples, c)
		rrows = append(rrows, []string{c, fmt.Sprintf("%.0f %%", pk), fmt.Sprintf("%.0f %%", av), Bytes(pm), Bytes(am)})
	}
	rrows = append(rrows, []string{"pipeline, % of the machine", Percent(r.Results.PeakCPUPercent / 100), "", "", ""},
		[]string{"host, % of the machine", Percent(r.Results.PeakHostCPUPercent / 100), "", "", ""})
	table(&b, []string{"Component", "Peak CPU", "Average CPU", "Peak memory", "Average memory"}, rrows, -1)

	p("<h2>Database performance</h2>\n<h3>Query performance</h3>\n<p class=\"muted\">Timed %s with EXPLAIN (ANALYZE, BUFFERS) after the run on %s rows.</p>\n",
		esc(runsText(r.Queries)), esc(Int(r.Accounted.EventsRows)))
	var qrows [][]string
	for _, q := range r.Queries {
		qrows = append(qrows, []string{q.Label, ms(q.MedianMs), ms(q.MinMs) + " – " + ms(q.MaxMs), Int(q.Rows), q.Plan, orDash(q.Spark)})
	}
	table(&b, []string{"Query Type", "Time (median)", "min – max", "Rows", "Plan", "Spark (typical)"}, qrows, -1)
	res := r.Results
	p("<h3>Insert performance</h3>\n<p>%s micro-batches (one transaction each), %s per batch on average, %s rows per batch.</p>\n",
		esc(Int(int64(res.Batches))), esc(Dur(res.AvgBatchSeconds)), esc(Int(int64(res.AvgBatchRows+0.5))))
	p("<h3>Index effectiveness</h3>\n")
	var irows [][]string
	for _, ix := range r.Indexes {
		if ix.Table != "events" {
			continue
		}
		sp := "—"
		if s, ok := SparkIndexes[ix.Name]; ok {
			sp = fmt.Sprintf("%s / %s / %.0f %%", s.Size, Int(s.Usage), s.HitRate)
		}
		irows = append(irows, []string{ix.Name, Bytes(float64(ix.SizeBytes)), Int(ix.Scans), Int(ix.TupRead), hit(ix.HitRate), sp})
	}
	table(&b, []string{"Index", "Size", "Usage Count (scans)", "Tuples read", "Hit Rate", "Spark: size / usage / hit"}, irows, -1)
	p("<p>Cache hit ratio: %s (Spark's report: %.1f %%). Events table %s, its indexes %s.</p>\n", esc(Percent(r.Database.CacheHitRatio)),
		SparkCacheHitRatio, esc(Bytes(float64(r.Database.EventsTableBytes))), esc(Bytes(float64(r.Database.EventsIndexBytes))))

	pr, a := r.Produced, r.Accounted
	p("<h2>Loss accounting</h2>\n")
	lrows := [][]string{{"Produced (generators)", Int(pr.Files), Int(pr.Rows)}}
	if pr.CountedFromFiles {
		lrows = append(lrows, []string{"On the volume (archive + failed + incoming)", Int(pr.FilesOnDisk), Int(pr.RowsOnDisk)})
	}
	lrows = append(lrows, []string{"Accounted in the database (inserted + rejected + duplicate)", Int(a.Files), Int(a.Rows)},
		[]string{"Lost", "", Int(a.Lost)})
	table(&b, []string{"", "Files", "Rows"}, lrows, -1)
	p("<p class=\"muted\">Generated by <code>make loadtest</code> (services/loadtest). Same data: <code>%s.json</code>.</p>\n", esc(r.BaseName()))
	p("</body></html>\n")
	return b.String()
}

func triggerText(r *Report) string {
	if r.Settings.TriggerInterval > 0 {
		return "trigger " + r.Settings.TriggerInterval.String()
	}
	return "continuous ingestion"
}

func rows3(in [][3]string) [][]string {
	out := make([][]string, len(in))
	for i := range in {
		out[i] = in[i][:]
	}
	return out
}

func checkRows(r *Report, sla bool) [][]string {
	var out [][]string
	for _, c := range r.Checks {
		if (c.Group == "sla") == sla {
			out = append(out, []string{c.Metric, c.Target, c.Value, c.Status})
		}
	}
	return out
}

func bandRows(bands []Band) [][]string {
	var out [][]string
	for _, x := range bands {
		out = append(out, []string{x.Label, Int(x.Count), fmt.Sprintf("%.1f %%", x.Percent), fmt.Sprintf("%.1f %%", x.Cumulative)})
	}
	return out
}

// table writes an HTML table; statusCol (if >= 0) is coloured by its ✓/⚠/✗.
func table(b *strings.Builder, head []string, rows [][]string, statusCol int) {
	b.WriteString("<table><thead><tr>")
	for _, h := range head {
		fmt.Fprintf(b, "<th>%s</th>", esc(h))
	}
	b.WriteString("</tr></thead><tbody>\n")
	for _, row := range rows {
		b.WriteString("<tr>")
		for i, c := range row {
			cls := ""
			if i == statusCol {
				switch {
				case strings.HasPrefix(c, Pass):
					cls = ` class="pass"`
				case strings.HasPrefix(c, Warn):
					cls = ` class="warn"`
				case strings.HasPrefix(c, Fail):
					cls = ` class="fail"`
				}
			}
			fmt.Fprintf(b, "<td%s>%s</td>", cls, esc(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table>\n")
}

// resourceSeries turns the samples into CPU and memory lines per component.
func resourceSeries(r *Report) (cpu, mem []Series) {
	comps := r.Resources.Components
	if len(comps) == 0 {
		comps = sortedComponents(r.Resources.Samples)
	}
	for i, c := range comps {
		cs := Series{Name: c, Color: palette[i%len(palette)]}
		ms := Series{Name: c, Color: palette[i%len(palette)]}
		for _, s := range r.Resources.Samples {
			cs.Points = append(cs.Points, [2]float64{s.T, s.CPU[c]})
			ms.Points = append(ms.Points, [2]float64{s.T, s.Mem[c] / (1 << 20)})
		}
		cpu, mem = append(cpu, cs), append(mem, ms)
	}
	host := Series{Name: "host (all cores)", Color: "#999999"}
	for _, s := range r.Resources.Samples {
		host.Points = append(host.Points, [2]float64{s.T, s.HostCPU * float64(max(r.Env.CPUs, 1))})
	}
	return append(cpu, host), mem
}

// timeCharts are the report's charts over time. They share one time axis (TimeRange) and
// the max ramp's steps, so a moment sits at the same place on each.
func timeCharts(r *Report) []TimeChart {
	var gen, com, p50, p95, p99, backlog Series
	gen.Name, com.Name = "generated rows/s", "committed rows/s"
	com.Dash = true
	// P99 first and P95 dashed over it: within a bucket of a few files the two are often
	// the same file, and a solid P95 would hide the P99 under it (or the other way round).
	p99.Name, p95.Name, p50.Name, backlog.Name = "P99", "P95", "P50", "backlog (files)"
	p99.Color, p95.Color, p50.Color = palette[2], palette[1], palette[0]
	p95.Dash = true
	for _, pt := range r.Timeline {
		gen.Points = append(gen.Points, [2]float64{pt.T, pt.Offered})
		com.Points = append(com.Points, [2]float64{pt.T, pt.Throughput})
		if pt.Throughput > 0 {
			p50.Points = append(p50.Points, [2]float64{pt.T, pt.P50})
			p95.Points = append(p95.Points, [2]float64{pt.T, pt.P95})
			p99.Points = append(p99.Points, [2]float64{pt.T, pt.P99})
		}
		backlog.Points = append(backlog.Points, [2]float64{pt.T, float64(pt.BacklogFiles)})
	}
	end, marks := TimeRange(r), stepMarks(r.Steps)
	cpu, mem := resourceSeries(r)
	// Rates below a few rows/s get ticks of 0.5 or 0.2: print them as they are, and whole
	// ones with thousands separators.
	num := func(v float64) string {
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return Int(int64(v))
		}
		return tickLabel(v)
	}
	charts := []TimeChart{
		{Title: "Throughput over time", YLabel: "rows per second", Tick: num, Value: Rate, Series: []Series{gen, com}},
		{Title: "End-to-end latency over time (rows committed in each interval)", YLabel: "latency", Tick: LatencyTick, Value: Dur,
			Series: []Series{p99, p95, p50}},
		{Title: "Backlog on the volume", YLabel: "files waiting", Tick: num, Counts: true, Series: []Series{backlog}},
		{Title: "CPU (% of one core; the machine has " + fmt.Sprint(r.Env.CPUs) + ")", YLabel: "CPU %",
			Tick: func(v float64) string { return tickLabel(v) + " %" }, Value: func(v float64) string { return fmt.Sprintf("%.1f %%", v) }, Series: cpu},
		{Title: "Memory (PSS)", YLabel: "MB", Tick: func(v float64) string { return tickLabel(v) + " MB" },
			Value: func(v float64) string { return fmt.Sprintf("%.1f MB", v) }, Series: mem},
	}
	for i := range charts {
		charts[i].End, charts[i].Marks = end, marks
	}
	return charts
}

// stepMarks marks where each step of the max ramp began; a report written before steps
// carried their start has none to mark.
func stepMarks(steps []Step) []Mark {
	var marks []Mark
	for _, st := range steps {
		if st.Start <= 0 && st.Index != 1 {
			return nil
		}
		result := "pass"
		if !st.Passed {
			result = "FAIL: " + st.Why
		}
		m := Mark{T: st.Start, Label: fmt.Sprintf("step %d", st.Index), Fail: !st.Passed}
		m.Title = fmt.Sprintf("step %d from %s: offered %s, generated %s, P99 %s — %s", st.Index, clock(st.Start),
			Rate(st.Offered), Rate(st.GeneratedRate), Dur(st.P99), result)
		marks = append(marks, m)
	}
	return marks
}
