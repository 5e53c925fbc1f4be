// Package stack runs the pipeline for a load test: as local processes against a
// throwaway PostgreSQL (Local), or as the docker compose stack (Compose). Both answer the
// same questions, so the runner and the report have one code path.
package stack

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/measure"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/report"
)

// BulkCopier is a stack that can measure the no-bookkeeping bulk COPY rate on its own
// PostgreSQL (2 parallel streams), the baseline the max preset is compared with.
type BulkCopier interface {
	BulkCopyRate(ctx context.Context) (float64, error)
	// BulkCopyRateRolledBack is the same load into events as the run has left it, rolled
	// back (measure.BulkCopyRolledBack): the bulk rate at the table's size.
	BulkCopyRateRolledBack(ctx context.Context) (float64, error)
	// BulkCopyRateAt is the same load into a scratch copy of events filled first with
	// rows of its rows (measure.BulkCopyAt): the bulk rate at that table size.
	BulkCopyRateAt(ctx context.Context, rows int64) (float64, error)
}

// Stack is a running pipeline under test.
type Stack interface {
	// Start brings up a clean database with the schema, the ingesters and the collector.
	Start(ctx context.Context) error
	// DB reads the run's database.
	DB() measure.Querier
	// Window selects the run's files in the ledger.
	Window() measure.Window
	// Generate starts one phase of generators and returns once they run.
	Generate(ctx context.Context, g Gen) error
	// GeneratorsDone tells whether every generator of the current phase has exited.
	GeneratorsDone(ctx context.Context) bool
	// Generated is the rows the current phase's generators have written so far.
	Generated(ctx context.Context) int64
	// Finals are the current phase's generators' own final counts.
	Finals(ctx context.Context) (report.Produced, error)
	// Backlog is the files waiting in the incoming directory.
	Backlog(ctx context.Context) int64
	// Batches is the ingesters' transactions so far: count, total seconds, total rows.
	Batches(ctx context.Context) (count, seconds, rows float64, err error)
	// Resources is CPU and memory per component over [from, to].
	Resources(ctx context.Context, from, to time.Time) (report.Resources, error)
	// CountFiles counts the rows of every file on the volume, where the stack can see it.
	CountFiles(ctx context.Context) (report.Produced, bool, error)
	// Problems are failures seen so far, such as a service that exited.
	Problems() []string
	// Environment describes the system under test.
	Environment(ctx context.Context) report.Environment
	// Stop ends what Start and Generate started.
	Stop(ctx context.Context) error
}

// Gen is one phase of generators.
type Gen struct {
	Tag        string // names the phase's generators and, in local mode, its files
	Replicas   int
	MinRecords int
	MaxRecords int
	Sleep      time.Duration
	Duration   time.Duration
	BadRate    float64
	DupRate    float64
}

// finished is the generator's final log line.
type finished struct {
	Message   string    `json:"message"`
	Instance  string    `json:"instance"`
	Files     int64     `json:"files"`
	Records   int64     `json:"records"`
	Valid     int64     `json:"valid"`
	Invalid   int64     `json:"invalid"`
	Duplicate int64     `json:"duplicate"`
	Bytes     int64     `json:"bytes"`
	Time      time.Time `json:"time"`
}

// parseFinished sums the "generator finished" lines of r logged at or after since, at most
// one per instance (the last).
func parseFinished(r io.Reader, since time.Time) (report.Produced, int) {
	last := map[string]finished{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '{'); i > 0 {
			line = line[i:] // a compose log prefix
		}
		var f finished
		if json.Unmarshal([]byte(line), &f) != nil || f.Message != "generator finished" {
			continue
		}
		if !since.IsZero() && f.Time.Before(since) {
			continue
		}
		last[f.Instance] = f
	}
	var p report.Produced
	for _, f := range last {
		p.AddCounts(report.Produced{Files: f.Files, Rows: f.Records, Valid: f.Valid,
			Invalid: f.Invalid, Duplicate: f.Duplicate, Bytes: f.Bytes})
	}
	return p, len(last)
}
