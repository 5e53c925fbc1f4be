// Package report is the load test's result: one Report value, measured once, written as
// JSON and rendered as Markdown and as a self-contained HTML page. Local and compose
// runs fill the same value, so the report has one code path.
package report

import (
	"time"

	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
)

// Report is everything a run measured. Durations are seconds (float64), sizes bytes.
type Report struct {
	RunID     string            `json:"run_id"`
	Scenario  string            `json:"scenario"`
	Mode      string            `json:"mode"` // local or compose
	StartedAt time.Time         `json:"started_at"`
	EndedAt   time.Time         `json:"ended_at"`
	Settings  scenario.Settings `json:"settings"`
	Env       Environment       `json:"environment"`

	// Generation is the window the generators ran; Drain the wait after it.
	GenerationSeconds float64 `json:"generation_seconds"`
	DrainSeconds      float64 `json:"drain_seconds"`
	DrainTimedOut     bool    `json:"drain_timed_out"`

	Produced  Produced  `json:"produced"`
	Accounted Accounted `json:"accounted"`
	Results   Results   `json:"results"`
	Latency   Latency   `json:"latency"`
	Timeline  []Point   `json:"timeline"`
	Resources Resources `json:"resources"`
	Queries   []Query   `json:"queries"`
	Indexes   []Index   `json:"indexes"`
	Database  Database  `json:"database"`
	Steps     []Step    `json:"steps,omitempty"` // the max preset's ramp
	MaxRate   *MaxRate  `json:"max_rate,omitempty"`

	Checks   []Check  `json:"checks"`
	Problems []string `json:"problems,omitempty"` // run failures outside the checks (a service died, ...)
	Passed   bool     `json:"passed"`
}

// Environment is where the run happened.
type Environment struct {
	Host       string   `json:"host"`
	CPUs       int      `json:"cpus"`
	CPUModel   string   `json:"cpu_model"`
	MemoryGB   float64  `json:"memory_gb"`
	Kernel     string   `json:"kernel"`
	PostgreSQL string   `json:"postgresql"`
	GoVersion  string   `json:"go_version"`
	Commit     string   `json:"commit"`
	Notes      []string `json:"notes,omitempty"`
}

// Produced is what the generators wrote, counted two ways: the generators' own final
// counts and the rows of the files found on the volume afterwards.
type Produced struct {
	Files     int64 `json:"files"`
	Rows      int64 `json:"rows"`
	Valid     int64 `json:"valid"`
	Invalid   int64 `json:"invalid"`
	Duplicate int64 `json:"duplicate"`
	Bytes     int64 `json:"bytes"`
	// From the volume (local mode): files and rows in archive, failed, still incoming.
	CountedFromFiles bool  `json:"counted_from_files"`
	FilesOnDisk      int64 `json:"files_on_disk"`
	RowsOnDisk       int64 `json:"rows_on_disk"`
	ArchiveFiles     int64 `json:"archive_files"`
	FailedFiles      int64 `json:"failed_files"`
	IncomingFiles    int64 `json:"incoming_files"`
}

// AddCounts adds q's generator counts (files, rows, valid, invalid, duplicate, bytes) to p.
func (p *Produced) AddCounts(q Produced) {
	p.Files += q.Files
	p.Rows += q.Rows
	p.Valid += q.Valid
	p.Invalid += q.Invalid
	p.Duplicate += q.Duplicate
	p.Bytes += q.Bytes
}

// Accounted is what the database knows about the run's files.
type Accounted struct {
	Files               int64 `json:"files"`
	FailedFiles         int64 `json:"failed_files"`
	Rows                int64 `json:"rows"` // inserted + rejected + duplicate
	Inserted            int64 `json:"inserted"`
	Rejected            int64 `json:"rejected"`
	Duplicate           int64 `json:"duplicate"`
	EventsRows          int64 `json:"events_rows"`
	RejectedRows        int64 `json:"rejected_rows"`
	DuplicateInDB       int64 `json:"duplicates_in_db"` // event_ids stored more than once
	FilesCommittedTwice int64 `json:"files_committed_twice"`
	Lost                int64 `json:"lost"` // produced rows not accounted for
}

// Results is the report's results table in numbers.
type Results struct {
	ThroughputRowsPerSec float64 `json:"throughput_rows_per_second"`
	GeneratedRowsPerSec  float64 `json:"generated_rows_per_second"`
	OfferedRowsPerSec    float64 `json:"offered_rows_per_second"` // nominal, from the settings
	ErrorRate            float64 `json:"error_rate"`              // rejected / accounted
	AvgBatchSeconds      float64 `json:"avg_batch_seconds"`
	Batches              float64 `json:"batches"`
	AvgBatchRows         float64 `json:"avg_batch_rows"`
	PeakCPUPercent       float64 `json:"peak_cpu_percent"`      // pipeline processes, % of all cores, 10 s average
	PeakHostCPUPercent   float64 `json:"peak_host_cpu_percent"` // whole machine, 10 s average
	PeakIngesterBytes    float64 `json:"peak_ingester_bytes"`
	PeakPostgresBytes    float64 `json:"peak_postgres_bytes"`
	PeakGeneratorBytes   float64 `json:"peak_generator_bytes"`
	PeakCollectorBytes   float64 `json:"peak_collector_bytes"`
}

// Latency is the per-row end-to-end latency (committed_at - file_created_at of its file).
type Latency struct {
	Rows  int64   `json:"rows"`
	Mean  float64 `json:"mean"`
	Min   float64 `json:"min"`
	P50   float64 `json:"p50"`
	P75   float64 `json:"p75"`
	P90   float64 `json:"p90"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Bands []Band  `json:"bands"`      // the report's 0-10-20-30-40-60 s bands
	Fine  []Band  `json:"fine_bands"` // sub-second resolution
}

// Band is one row of a latency distribution table.
type Band struct {
	Label      string  `json:"label"`
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"` // 0 = open-ended
	Count      int64   `json:"count"`
	Percent    float64 `json:"percent"`
	Cumulative float64 `json:"cumulative"`
}

// Point is one moment of the run's timeline (seconds since start).
type Point struct {
	T            float64 `json:"t"`
	Generated    int64   `json:"generated"`  // rows the generators had written
	Committed    int64   `json:"committed"`  // rows accounted in the database
	Throughput   float64 `json:"throughput"` // committed rows/s over the bucket
	Offered      float64 `json:"offered"`    // generated rows/s over the bucket (by file time)
	P50          float64 `json:"p50"`        // latency of rows committed in the bucket
	P95          float64 `json:"p95"`
	P99          float64 `json:"p99"`
	BacklogFiles int64   `json:"backlog_files"`
}

// Resources are the sampled CPU and memory of each component.
type Resources struct {
	Source     string           `json:"source"` // /proc or prometheus
	Components []string         `json:"components"`
	Samples    []ResourceSample `json:"samples"`
}

// ResourceSample is one sample: CPU in % of one core per component, memory in bytes.
type ResourceSample struct {
	T       float64            `json:"t"`
	CPU     map[string]float64 `json:"cpu"`
	Mem     map[string]float64 `json:"mem"`
	HostCPU float64            `json:"host_cpu"` // % of all cores
}

// Query is one of the report's five queries, timed after the run.
type Query struct {
	Name     string  `json:"name"`
	Label    string  `json:"label"`
	SQL      string  `json:"sql"`
	Runs     int     `json:"runs"`
	MinMs    float64 `json:"min_ms"`
	MedianMs float64 `json:"median_ms"`
	MaxMs    float64 `json:"max_ms"`
	Rows     int64   `json:"rows"`
	Plan     string  `json:"plan"` // top plan nodes, e.g. "Index Only Scan using idx_events_user_id"
	Spark    string  `json:"spark"`
}

// Index is one row of the index-effectiveness table.
type Index struct {
	Table     string  `json:"table"`
	Name      string  `json:"name"`
	SizeBytes int64   `json:"size_bytes"`
	Scans     int64   `json:"scans"`
	TupRead   int64   `json:"tuples_read"`
	BlksHit   int64   `json:"blocks_hit"`
	BlksRead  int64   `json:"blocks_read"`
	HitRate   float64 `json:"hit_rate"` // -1 when no block was requested
}

// Database is the rest of the database-side view.
type Database struct {
	CacheHitRatio    float64 `json:"cache_hit_ratio"`
	EventsTableBytes int64   `json:"events_table_bytes"`
	EventsIndexBytes int64   `json:"events_index_bytes"`
	TotalBytes       int64   `json:"database_bytes"`
}

// Step is one rung of the max preset's ramp.
type Step struct {
	Index         int     `json:"index"`
	Start         float64 `json:"start_seconds,omitempty"` // its generators' start, seconds since the run's (where the charts mark it)
	RowsPerFile   int     `json:"rows_per_file"`
	FilesPerSec   float64 `json:"files_per_second"`
	Offered       float64 `json:"offered_rows_per_second"`
	Generated     int64   `json:"generated"`
	Accounted     int64   `json:"accounted"`
	Lost          int64   `json:"lost"`
	GeneratedRate float64 `json:"generated_rows_per_second"`
	Throughput    float64 `json:"throughput_rows_per_second"`
	P50           float64 `json:"p50"`
	P95           float64 `json:"p95"`
	P99           float64 `json:"p99"`
	DrainSeconds  float64 `json:"drain_seconds"`
	PeakCPU       float64 `json:"peak_cpu_percent"`
	// EventsBefore is the rows the earlier steps left in events: PostgreSQL's cost per
	// row grows with its indexes once they outgrow shared_buffers.
	EventsBefore int64 `json:"events_rows_before"`
	// CPUPerRow is each component's CPU over the step (its generation and drain) in
	// microseconds per row the step committed: where the cores went at that rate.
	CPUPerRow map[string]float64 `json:"cpu_us_per_row,omitempty"`
	Passed    bool               `json:"passed"`
	Why       string             `json:"why,omitempty"`
}

// MaxRate is the max preset's answer.
type MaxRate struct {
	RowsPerSec float64 `json:"rows_per_second"` // highest generated rate of a passing step
	Offered    float64 `json:"offered_rows_per_second"`
	P99        float64 `json:"p99"`
	FirstFail  float64 `json:"first_failing_offered_rows_per_second,omitempty"`
	FailReason string  `json:"first_failing_reason,omitempty"`
	// BulkCopy is the no-bookkeeping baseline measured on the same PostgreSQL in the same
	// run: 2 parallel COPY streams (as psql \copy) into a copy of events; 0 = not measured.
	BulkCopy float64 `json:"bulk_copy_2_streams_rows_per_second,omitempty"`
	// BulkCopyAtEnd is the same load into events at the end of the ramp, rolled back:
	// the bulk rate at the table size the last steps ran at (EventsAtEnd rows).
	BulkCopyAtEnd float64 `json:"bulk_copy_2_streams_at_end_rows_per_second,omitempty"`
	EventsAtEnd   int64   `json:"events_rows_at_end,omitempty"`
	// BulkCopyAtBest is the same load into a scratch copy of events holding EventsAtBest
	// of its rows: the bulk rate at the table size the highest passing step started from.
	BulkCopyAtBest float64 `json:"bulk_copy_2_streams_at_best_rows_per_second,omitempty"`
	EventsAtBest   int64   `json:"events_rows_at_best,omitempty"`
}
