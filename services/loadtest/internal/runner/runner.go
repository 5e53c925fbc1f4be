// Package runner drives one load test: start the stack, run the generators for the
// scenario (or the max preset's ramp), show progress, drain until every produced file is
// committed, then measure everything the report needs — the same way for every stack.
package runner

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/measure"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/stack"
)

// Options tune a run.
type Options struct {
	RunID        string
	Mode         string
	DrainTimeout time.Duration // after the generators stop; 0 = 2 min + the duration / 5
	Progress     io.Writer     // the live progress line; nil = none
	Interactive  bool          // rewrite the progress line in place (a terminal)
	Tick         time.Duration // progress period; 0 = 1 s
	QueryRuns    int           // EXPLAIN ANALYZE runs per report query; 0 = 5
	Thresholds   report.Thresholds
	P99Target    time.Duration // ecomstream's own latency target; 0 = 1 s
	Bucket       time.Duration // timeline bucket; 0 = chosen from the duration
}

// Run performs the load test and returns its report (also when a check failed); an error
// means the run could not be carried out or measured.
func Run(ctx context.Context, st stack.Stack, set scenario.Settings, o Options) (*report.Report, error) {
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.QueryRuns <= 0 {
		o.QueryRuns = 5
	}
	if o.P99Target <= 0 {
		o.P99Target = time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 2*time.Minute + set.Duration/5
	}
	r := &report.Report{RunID: o.RunID, Scenario: set.Name, Mode: o.Mode, Settings: set}
	ru := &run{st: st, o: o, r: r, set: set}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := st.Stop(stopCtx); err != nil {
			ru.logf("stop: %v", err)
		}
	}()
	ru.logf("starting the %s stack (%d ingester(s))", o.Mode, set.Ingesters)
	if err := st.Start(ctx); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	r.StartedAt = time.Now().UTC()
	r.Env = st.Environment(ctx)
	ru.start = time.Now()
	if set.Ramp != nil {
		if err := ru.ramp(ctx); err != nil {
			return nil, err
		}
	} else {
		g := stack.Gen{Tag: "run", Replicas: set.Generators, MinRecords: set.MinRecords, MaxRecords: set.MaxRecords,
			Sleep: set.Sleep, Duration: set.Duration, BadRate: set.BadRate, DupRate: set.DupRate}
		ph, err := ru.phase(ctx, g, o.DrainTimeout, set.Name)
		if err != nil {
			return nil, err
		}
		r.Produced = ph.produced
		r.GenerationSeconds, r.DrainSeconds, r.DrainTimedOut = ph.genSeconds, ph.drainSeconds, ph.timedOut
	}
	ru.loadEnd = time.Now()
	if err := ru.measure(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

type run struct {
	st      stack.Stack
	o       Options
	r       *report.Report
	set     scenario.Settings
	start   time.Time
	backlog []backlogAt
	lastLen int
	// scheduled is the generators' total --duration over the phases.
	scheduled time.Duration
	// loadEnd is when the last drain ended: resources are judged up to it, before the
	// report's own queries load the database.
	loadEnd time.Time
}

type backlogAt struct {
	t float64
	n int64
}

func (ru *run) logf(format string, args ...any) {
	if ru.o.Progress == nil {
		return
	}
	if ru.o.Interactive && ru.lastLen > 0 {
		fmt.Fprint(ru.o.Progress, "\n")
		ru.lastLen = 0
	}
	fmt.Fprintf(ru.o.Progress, "loadtest: "+format+"\n", args...)
}

type phaseResult struct {
	produced     report.Produced
	genSeconds   float64
	drainSeconds float64
	timedOut     bool
	genStart     time.Time
	genEnd       time.Time
}

// phase runs one set of generators for g.Duration with a progress line, then drains.
func (ru *run) phase(ctx context.Context, g stack.Gen, drainTimeout time.Duration, label string) (phaseResult, error) {
	var ph phaseResult
	w := ru.st.Window()
	before, err := measure.Live(ctx, ru.st.DB(), w, 10*time.Second)
	if err != nil {
		return ph, fmt.Errorf("ledger: %w", err)
	}
	ph.genStart = time.Now()
	if err := ru.st.Generate(ctx, g); err != nil {
		return ph, fmt.Errorf("generators: %w", err)
	}
	ru.logf("%s: %d generator(s), %d-%d rows per file every %s for %s (offered %s)", label, g.Replicas,
		g.MinRecords, g.MaxRecords, g.Sleep, g.Duration,
		report.Rate(float64(g.MinRecords+g.MaxRecords)/2/g.Sleep.Seconds()*float64(g.Replicas)))
	t := time.NewTicker(ru.o.Tick)
	defer t.Stop()
	// Generation: until every generator has exited (they stop on --duration); a
	// generator that outlives its duration by far is a failure.
	for !ru.st.GeneratorsDone(ctx) {
		if time.Since(ph.genStart) > g.Duration+time.Minute {
			return ph, fmt.Errorf("generators still running %s after their duration", time.Minute)
		}
		select {
		case <-ctx.Done():
			return ph, ctx.Err()
		case <-t.C:
			ru.progress(ctx, label, "run", ph.genStart, g.Duration, w, before.Rows)
		}
	}
	ph.genEnd = time.Now()
	ph.genSeconds = ph.genEnd.Sub(ph.genStart).Seconds()
	ru.scheduled += g.Duration
	if ph.produced, err = ru.st.Finals(ctx); err != nil {
		return ph, err
	}
	// Drain: until the ledger holds every produced file and the volume is empty.
	ru.endProgress()
	ru.logf("%s: generators done: %s files, %s rows; draining (timeout %s)", label,
		report.Int(ph.produced.Files), report.Int(ph.produced.Rows), drainTimeout)
	drainStart := time.Now()
	for {
		live, err := measure.Live(ctx, ru.st.DB(), w, 10*time.Second)
		if err == nil && live.Files-before.Files >= ph.produced.Files && ru.st.Backlog(ctx) == 0 {
			break
		}
		if time.Since(drainStart) > drainTimeout {
			ph.timedOut = true
			break
		}
		select {
		case <-ctx.Done():
			return ph, ctx.Err()
		case <-t.C:
			ru.progress(ctx, label, "drain", drainStart, drainTimeout, w, before.Rows)
		}
	}
	ph.drainSeconds = time.Since(drainStart).Seconds()
	ru.endProgress()
	if ph.timedOut {
		ru.logf("%s: drain timed out after %s", label, drainTimeout)
	} else {
		ru.logf("%s: drained in %s", label, report.Dur(ph.drainSeconds))
	}
	return ph, nil
}

// progress prints the live line: elapsed / total, rows generated and committed, the P95
// of the last 10 s of commits, the backlog on the volume.
func (ru *run) progress(ctx context.Context, label, stage string, since time.Time, total time.Duration, w measure.Window, base int64) {
	live, err := measure.Live(ctx, ru.st.DB(), w, 10*time.Second)
	backlog := ru.st.Backlog(ctx)
	ru.backlog = append(ru.backlog, backlogAt{time.Since(ru.start).Seconds(), backlog})
	if ru.o.Progress == nil {
		return
	}
	gen := ru.st.Generated(ctx)
	p95 := "—"
	if err == nil && live.RecentRows > 0 {
		p95 = report.Dur(live.RecentP95)
	}
	line := fmt.Sprintf("[%s %s] %s / %s  generated %s  committed %s  P95(10s) %s  backlog %d files",
		label, stage, clock(time.Since(since)), clock(total), report.Int(gen), report.Int(live.Rows-base), p95, backlog)
	if ps := ru.st.Problems(); len(ps) > 0 {
		line += "  ! " + ps[len(ps)-1]
	}
	if ru.o.Interactive {
		pad := max(ru.lastLen-len(line), 0)
		fmt.Fprintf(ru.o.Progress, "\r%s%s", line, strings.Repeat(" ", pad))
		ru.lastLen = len(line)
		return
	}
	// Not a terminal (nohup, CI): a line every 10 ticks keeps the log readable.
	if n := int(time.Since(since) / ru.o.Tick); n == 1 || n%10 == 0 {
		fmt.Fprintln(ru.o.Progress, line)
	}
}

func (ru *run) endProgress() {
	if ru.o.Interactive && ru.lastLen > 0 && ru.o.Progress != nil {
		fmt.Fprint(ru.o.Progress, "\n")
		ru.lastLen = 0
	}
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// ramp runs the max preset: steps at the offered rates scenario.Ramp.Next chooses (a
// climb until a step misses the target — P99 under the ramp's target with zero loss and
// a complete drain — then a bisection of the gap between the last pass and that miss).
func (ru *run) ramp(ctx context.Context) error {
	rp := ru.set.Ramp
	// The bulk baseline first, on the empty database, as make bench measures it.
	var bulk float64
	if bc, ok := ru.st.(stack.BulkCopier); ok {
		ru.logf("measuring the 2-stream COPY bulk rate on the same PostgreSQL")
		var err error
		if bulk, err = bc.BulkCopyRate(ctx); err != nil {
			ru.logf("bulk rate not measured: %v", err)
		} else if bulk > 0 {
			ru.logf("2-stream COPY bulk rate: %s", report.Rate(bulk))
		}
	}
	var done []scenario.Result
	for i := 1; ; i++ {
		rate, more := rp.Next(done)
		if !more {
			break
		}
		step := rp.StepFor(i, rate, ru.set.Generators)
		g := stack.Gen{Tag: fmt.Sprintf("s%02d", i), Replicas: ru.set.Generators, MinRecords: step.RowsPerFile,
			MaxRecords: step.RowsPerFile, Sleep: step.Sleep, Duration: rp.StepDuration}
		ph, err := ru.phase(ctx, g, rp.DrainTimeout, fmt.Sprintf("max step %d", i))
		if err != nil {
			return err
		}
		st, err := ru.measureStep(ctx, step, g, ph)
		if err != nil {
			return err
		}
		ru.r.Steps = append(ru.r.Steps, st)
		ru.r.GenerationSeconds += ph.genSeconds
		ru.r.DrainSeconds += ph.drainSeconds
		ru.r.DrainTimedOut = ru.r.DrainTimedOut || ph.timedOut
		ru.r.Produced.AddCounts(ph.produced)
		ru.logf("max step %d: offered %s, generated %s, P99 %s, lost %d: %s %s", i, report.Rate(st.Offered),
			report.Rate(st.GeneratedRate), report.Dur(st.P99), st.Lost, passWord(st.Passed), st.Why)
		done = append(done, scenario.Result{Offered: st.Offered, Passed: st.Passed})
	}
	best := report.MaxRate{BulkCopy: bulk}
	var eventsAtBest int64
	for _, s := range ru.r.Steps {
		if s.Passed && s.GeneratedRate > best.RowsPerSec {
			best.RowsPerSec, best.Offered, best.P99, eventsAtBest = s.GeneratedRate, s.Offered, s.P99, s.EventsBefore
		}
	}
	// The lowest miss above the best pass: the bracket the ramp ended with.
	for _, s := range ru.r.Steps {
		if !s.Passed && (best.FirstFail == 0 || s.Offered < best.FirstFail) && s.Offered > best.Offered {
			best.FirstFail, best.FailReason = s.Offered, s.Why
		}
	}
	ru.r.MaxRate = &best
	// A failed step may have stopped at its drain timeout: wait for the rest before the
	// loss is counted.
	if err := ru.finalDrain(ctx, 2*rp.DrainTimeout); err != nil {
		return err
	}
	// The bulk rate again at the table size the best step started from: into a scratch
	// copy of events holding as many of its rows (before the rolled-back load below
	// leaves dead rows in events). The empty table flatters the bulk loader; the best
	// step ran on this one.
	if bc, ok := ru.st.(stack.BulkCopier); ok && bulk > 0 && eventsAtBest > 0 {
		ru.logf("measuring the 2-stream COPY bulk rate into a copy of events with %s of its rows", report.Int(eventsAtBest))
		if at, err := bc.BulkCopyRateAt(ctx, eventsAtBest); err != nil {
			ru.logf("bulk rate at the best step's table size not measured: %v", err)
		} else {
			best.BulkCopyAtBest, best.EventsAtBest = at, eventsAtBest
			ru.logf("2-stream COPY bulk rate at %s rows: %s", report.Int(eventsAtBest), report.Rate(at))
		}
	}
	// The bulk rate again, into events as the ramp left it (rolled back): the last steps
	// ran against indexes many times larger than the empty table of the first measurement.
	if bc, ok := ru.st.(stack.BulkCopier); ok && bulk > 0 {
		ru.logf("measuring the 2-stream COPY bulk rate into events at its size (%s rows), rolled back", report.Int(ru.r.Produced.Rows))
		if end, err := bc.BulkCopyRateRolledBack(ctx); err != nil {
			ru.logf("bulk rate at the end not measured: %v", err)
		} else {
			best.BulkCopyAtEnd, best.EventsAtEnd = end, ru.r.Produced.Rows
			ru.logf("2-stream COPY bulk rate at the end: %s", report.Rate(end))
		}
	}
	return nil
}

// finalDrain waits until the ledger holds every produced file and the volume is empty.
func (ru *run) finalDrain(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	for {
		live, err := measure.Live(ctx, ru.st.DB(), ru.st.Window(), time.Second)
		if err == nil && live.Files >= ru.r.Produced.Files && ru.st.Backlog(ctx) == 0 {
			ru.r.DrainTimedOut = false
			return nil
		}
		if time.Since(start) > timeout {
			ru.r.DrainTimedOut = true
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func passWord(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// measureStep judges one ramp step by the files its generators created.
func (ru *run) measureStep(ctx context.Context, step scenario.Step, g stack.Gen, ph phaseResult) (report.Step, error) {
	w := ru.st.Window()
	w.Since, w.Until = ph.genStart.Add(-time.Second), ph.genEnd.Add(time.Second)
	if w.Prefix == "" && ru.o.Mode == "local" {
		w = measure.Window{Prefix: g.Tag + "-"}
	}
	files, err := measure.Files(ctx, ru.st.DB(), w)
	if err != nil {
		return report.Step{}, err
	}
	acc, err := measure.Account(ctx, ru.st.DB(), w)
	if err != nil {
		return report.Step{}, err
	}
	lat := report.Summarize(files)
	s := report.Step{Index: step.Index, Start: ph.genStart.Sub(ru.start).Seconds(), RowsPerFile: step.RowsPerFile, FilesPerSec: ru.set.Ramp.FilesPerSec,
		Offered: step.Offered, Generated: ph.produced.Rows, Accounted: acc.Rows, Lost: ph.produced.Rows - acc.Rows,
		P50: lat.P50, P95: lat.P95, P99: lat.P99, DrainSeconds: ph.drainSeconds}
	s.GeneratedRate = float64(ph.produced.Rows) / g.Duration.Seconds()
	if first, last := span(files); last > first {
		s.Throughput = float64(acc.Rows) / (last - first)
	}
	s.EventsBefore = ru.r.Produced.Rows // every earlier step was drained (or waited for) before this one
	// One read of the samples, to the end of the drain: the peak is the generation's, the
	// CPU per row the whole step's.
	if res, err := ru.st.Resources(ctx, ru.start, ph.genEnd.Add(secondsDur(ph.drainSeconds))); err == nil {
		from := ph.genStart.Sub(ru.start).Seconds()
		s.PeakCPU = ru.peakCPU(res.Samples, from, ph.genEnd.Sub(ru.start).Seconds())
		s.CPUPerRow = cpuPerRow(res.Samples, from, from+ph.genSeconds+ph.drainSeconds, acc.Rows)
	}
	var why []string
	if s.Lost != 0 {
		why = append(why, fmt.Sprintf("%d rows not accounted", s.Lost))
	}
	if ph.timedOut {
		why = append(why, "drain timed out")
	}
	if s.P99 >= ru.set.Ramp.P99Target.Seconds() {
		why = append(why, "P99 "+report.Dur(s.P99)+" ≥ "+report.Dur(ru.set.Ramp.P99Target.Seconds()))
	}
	if s.GeneratedRate < 0.9*s.Offered {
		why = append(why, "generator could not offer the rate ("+report.Rate(s.GeneratedRate)+")")
	}
	s.Passed = len(why) == 0
	s.Why = strings.Join(why, "; ")
	return s, nil
}

// span is the first file creation and the last commit.
func span(files []report.FileLatency) (first, last float64) {
	first = math.Inf(1)
	for _, f := range files {
		first = math.Min(first, f.Created)
		last = math.Max(last, f.Committed)
	}
	if math.IsInf(first, 1) {
		return 0, 0
	}
	return first, last
}

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// cpuPerRow is each component's CPU-seconds over (from, to] (seconds since the run's
// start; each sample's percent of a core held since the sample before it) in
// microseconds per row of rows.
func cpuPerRow(samples []report.ResourceSample, from, to float64, rows int64) map[string]float64 {
	if rows <= 0 {
		return nil
	}
	out := map[string]float64{}
	for i := 1; i < len(samples); i++ {
		s := samples[i]
		if s.T <= from || s.T > to {
			continue
		}
		dt := s.T - samples[i-1].T
		for c, pct := range s.CPU {
			out[c] += pct / 100 * dt
		}
	}
	for c, secs := range out {
		out[c] = 1e6 * secs / float64(rows)
	}
	return out
}

func (ru *run) peakCPU(samples []report.ResourceSample, from, to float64) float64 {
	var filtered []report.ResourceSample
	for _, s := range samples {
		if s.T >= from && s.T <= to {
			filtered = append(filtered, s)
		}
	}
	cpu, _ := peakAvg(filtered, 10, ru.r.Env.CPUs)
	return cpu
}

// measure fills the report after the last phase.
func (ru *run) measure(ctx context.Context) error {
	r, st, q := ru.r, ru.st, ru.st.DB()
	r.EndedAt = time.Now().UTC()
	r.Env.Notes = append(r.Env.Notes, "everything on one host: generator, ingester(s), collector and PostgreSQL share its cores")
	w := st.Window()
	files, err := measure.Files(ctx, q, w)
	if err != nil {
		return err
	}
	if r.Accounted, err = measure.Account(ctx, q, w); err != nil {
		return err
	}
	r.Latency = report.Summarize(files)
	res := &r.Results
	first, last := span(files)
	if last > first {
		res.ThroughputRowsPerSec = float64(r.Accounted.Rows) / (last - first)
	}
	// The generators keep a fixed schedule and stop at their --duration, so that is the
	// time the rows were generated in (the wall clock adds process start and exit).
	if gen := ru.scheduled.Seconds(); gen > 0 {
		res.GeneratedRowsPerSec = float64(r.Produced.Rows) / gen
	}
	if r.Settings.Ramp == nil {
		res.OfferedRowsPerSec = r.Settings.OfferedRate()
	}
	if r.Accounted.Rows > 0 {
		res.ErrorRate = float64(r.Accounted.Rejected) / float64(r.Accounted.Rows)
	}
	if n, secs, rows, err := st.Batches(ctx); err == nil && n > 0 {
		res.Batches, res.AvgBatchSeconds, res.AvgBatchRows = n, secs/n, rows/n
	} else if err != nil {
		r.Problems = append(r.Problems, "batch statistics: "+err.Error())
	}
	// Timeline from the ledger (exact), with the sampled backlog beside it.
	startUnix := float64(ru.start.UnixNano()) / 1e9
	endUnix := math.Max(last, float64(ru.loadEnd.UnixNano())/1e9)
	bucket := ru.o.Bucket
	if bucket <= 0 {
		bucket = max(time.Second, (time.Duration(endUnix-startUnix)*time.Second)/150)
		bucket = bucket.Round(time.Second)
	}
	r.Timeline = report.Timeline(files, startUnix, endUnix, bucket.Seconds())
	for i := range r.Timeline {
		r.Timeline[i].BacklogFiles = ru.backlogAt(r.Timeline[i].T)
	}
	if r.Resources, err = st.Resources(ctx, ru.start, ru.loadEnd); err != nil {
		r.Problems = append(r.Problems, "resources: "+err.Error())
	}
	res.PeakCPUPercent, res.PeakHostCPUPercent = peakAvg(r.Resources.Samples, 10, r.Env.CPUs)
	for _, s := range r.Resources.Samples {
		res.PeakIngesterBytes = math.Max(res.PeakIngesterBytes, s.Mem["ingester"])
		res.PeakPostgresBytes = math.Max(res.PeakPostgresBytes, s.Mem["postgres"])
		res.PeakGeneratorBytes = math.Max(res.PeakGeneratorBytes, s.Mem["generator"])
		res.PeakCollectorBytes = math.Max(res.PeakCollectorBytes, s.Mem["collector"])
	}
	ru.logf("timing the report's five queries (EXPLAIN ANALYZE, %d runs each)", ru.o.QueryRuns)
	if r.Queries, err = measure.Queries(ctx, q, ru.o.QueryRuns); err != nil {
		return err
	}
	if r.Indexes, err = measure.Indexes(ctx, q); err != nil {
		return err
	}
	if r.Database, _, err = measure.DatabaseStats(ctx, q); err != nil {
		return err
	}
	// Loss: the generators' counts against the database; where the volume is visible,
	// the rows of the files themselves too.
	r.Accounted.Lost = r.Produced.Rows - r.Accounted.Rows
	if disk, ok, err := st.CountFiles(ctx); err != nil {
		r.Problems = append(r.Problems, err.Error())
	} else if ok {
		r.Produced.CountedFromFiles = true
		r.Produced.FilesOnDisk, r.Produced.RowsOnDisk = disk.FilesOnDisk, disk.RowsOnDisk
		r.Produced.ArchiveFiles, r.Produced.FailedFiles, r.Produced.IncomingFiles = disk.ArchiveFiles, disk.FailedFiles, disk.IncomingFiles
		if disk.RowsOnDisk != r.Produced.Rows || disk.FilesOnDisk != r.Produced.Files {
			r.Problems = append(r.Problems, fmt.Sprintf("the volume holds %s files with %s rows; the generators reported %s files, %s rows",
				report.Int(disk.FilesOnDisk), report.Int(disk.RowsOnDisk), report.Int(r.Produced.Files), report.Int(r.Produced.Rows)))
		}
		if d := disk.RowsOnDisk - r.Accounted.Rows; abs(d) > abs(r.Accounted.Lost) {
			r.Accounted.Lost = d
		}
	}
	r.Problems = append(r.Problems, st.Problems()...)
	report.Evaluate(r, ru.o.Thresholds, ru.o.P99Target.Seconds())
	return nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func (ru *run) backlogAt(t float64) int64 {
	i := sort.Search(len(ru.backlog), func(i int) bool { return ru.backlog[i].t >= t })
	if i == len(ru.backlog) {
		if i == 0 {
			return 0
		}
		i--
	}
	return ru.backlog[i].n
}

// peakAvg is the highest average over window seconds of the pipeline's CPU (sum of its
// components, as % of all cores) and of the host's CPU; a peak of single 1 s samples
// would report scheduling noise rather than load.
func peakAvg(samples []report.ResourceSample, window float64, cpus int) (pipeline, host float64) {
	cpus = max(cpus, 1)
	for i := range samples {
		var sp, sh float64
		n := 0
		for j := i; j < len(samples) && samples[j].T-samples[i].T < window; j++ {
			for _, v := range samples[j].CPU {
				sp += v
			}
			sh += samples[j].HostCPU
			n++
		}
		if n == 0 {
			continue
		}
		pipeline = math.Max(pipeline, sp/float64(n)/float64(cpus))
		host = math.Max(host, sh/float64(n))
	}
	return pipeline, host
}
