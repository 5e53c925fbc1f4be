// Package collector measures what only ecomstream's tables and the shared volume know —
// end-to-end latency percentiles in the report's methodology, throughput, error and
// duplicate counts, backlog, the report's timed queries, index effectiveness and sizes of
// the product's tables, PostgreSQL's memory and CPU from /proc — and exposes it as
// Prometheus metrics. What PostgreSQL's own views say database-wide (pg_stat_database,
// pg_settings, database size) is postgres_exporter's (docs/metrics.md).
//
// Each measurement is one file (latency.go, bands.go, ...) implementing Measurement. The
// Collector runs them on an interval, one after another on a small pool, and caches what
// they produced; a scrape only copies the cache. So a scrape never touches the database,
// and scraping faster than the interval costs nothing.
package collector

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// Subsystem is the middle part of every metric name: ecomstream_collector_<name>.
const Subsystem = "collector"

// Desc builds a descriptor named ecomstream_collector_<name>.
func Desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, Subsystem, name), help, labels, nil)
}

// Measurement is one thing the collector measures.
type Measurement interface {
	// Name is the value of the collector label on the self-metrics.
	Name() string
	// Describe sends every descriptor Measure may use.
	Describe(ch chan<- *prometheus.Desc)
	// Measure takes one measurement. Metrics it sent before an error are kept (a partial
	// result is still true); the error turns its scrape_success to 0.
	Measure(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Periodic is implemented by measurements that should run less often than the interval
// (the report's full-table queries): their last result is served until they run again.
type Periodic interface {
	Period() time.Duration
}

// restPerRun bounds the share of PostgreSQL's time a measurement takes as the tables
// grow: one whose last run took d runs again no sooner than restPerRun·d after that run
// began (at most 1/20 of one session's time), whatever its interval or Period; its last
// result is served meanwhile. The report's full-table queries took 2.2–2.4 s each on
// 6.5M rows: run every 30 s, they cost PostgreSQL about as much CPU per ingested row as
// the inserts themselves, and the load test's top rate fell by a third. Runs shorter than
// restFrom are not held back: at the default 5 s interval they take 1/20 at most anyway,
// so on a small table nothing changes. A run that failed rests too: one that failed
// late (a query past its statement timeout, on a table grown further) cost that time,
// and one that failed at once (the server down) is under restFrom anyway.
const (
	restPerRun = 20
	restFrom   = 250 * time.Millisecond
)

// offDatabase is a measurement whose run is not PostgreSQL's time, so the rest, which
// bounds that, does not apply: the backlog (a directory read, or the wait for a bucket
// listing, up to the interval plus the statement timeout) and the host's /proc. The
// backlog is what grows when the pipeline falls behind: rested twenty times a 10 s wait
// for a long listing, it would be served minutes old just when it matters.
type offDatabase interface{ offDatabase() }

// Settings are what the measurements need to know.
type Settings struct {
	// Window is the sliding window of the latency percentiles, bands, throughput, error
	// rate and duplicate checks.
	Window time.Duration
	// WatchDir is the volume's incoming directory (backlog).
	WatchDir string
	// Bucket, when set, is read for the backlog instead of WatchDir: the objects under
	// Location (the ingesters' INGESTER_SOURCE).
	Bucket   *minio.Client
	Location objstore.Location
	// ArchivePrefix and FailedPrefix are the ingesters' (empty: their defaults).
	ArchivePrefix, FailedPrefix string
	// ListTimeout bounds one listing of Bucket (0: DefaultListTimeout).
	ListTimeout time.Duration
	// QueryInterval is how often the report's five queries are timed.
	QueryInterval time.Duration
	// ExporterStandIn adds ExporterStandIn, for where no postgres_exporter runs.
	ExporterStandIn bool
}

// All returns every measurement, in the order they run.
func All(pool *pgxpool.Pool, s Settings) []Measurement {
	ms := []Measurement{
		&Latency{DB: pool, Window: s.Window},
		&Bands{DB: pool, Window: s.Window},
		&Throughput{DB: pool, Window: s.Window},
		&ErrorRate{DB: pool, Window: s.Window},
		&Duplicates{DB: pool, Window: s.Window},
		&Ledger{DB: pool},
		&Backlog{Dir: s.WatchDir, Bucket: s.Bucket, Location: s.Location, ArchivePrefix: s.ArchivePrefix, FailedPrefix: s.FailedPrefix,
			ListTimeout: s.ListTimeout},
		&Queries{DB: pool, Every: s.QueryInterval},
		&Indexes{DB: pool},
		&Sizes{DB: pool},
		&Memory{DB: pool},
		&Host{},
	}
	if s.ExporterStandIn {
		ms = append(ms, &ExporterStandIn{DB: pool})
	}
	return ms
}

var (
	scrapeDuration = Desc("scrape_duration_seconds", "How long the last run of a measurement took.", "collector")
	scrapeSuccess  = Desc("scrape_success", "Whether the last run of a measurement succeeded (1) or failed (0).", "collector")
)

type result struct {
	metrics  []prometheus.Metric
	duration time.Duration
	ok       bool
	at       time.Time
}

// Collector runs measurements on an interval and serves their cached results; it is a
// prometheus.Collector.
type Collector struct {
	log          zerolog.Logger
	measurements []Measurement
	timeout      time.Duration

	now func() time.Time // the clock of due and of runs' durations (tests set it)

	mu      sync.RWMutex
	results map[string]result
}

// New returns a collector of ms; each run of one measurement is cut off after timeout.
func New(log zerolog.Logger, timeout time.Duration, ms ...Measurement) *Collector {
	return &Collector{log: log, measurements: ms, timeout: timeout, now: time.Now, results: map[string]result{}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- scrapeDuration
	ch <- scrapeSuccess
	for _, m := range c.measurements {
		m.Describe(ch)
	}
}

// Collect implements prometheus.Collector: it serves the cache, never the database.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, m := range c.measurements {
		r, ok := c.results[m.Name()]
		if !ok {
			continue // not measured yet
		}
		for _, x := range r.metrics {
			ch <- x
		}
		ch <- prometheus.MustNewConstMetric(scrapeDuration, prometheus.GaugeValue, r.duration.Seconds(), m.Name())
		ch <- prometheus.MustNewConstMetric(scrapeSuccess, prometheus.GaugeValue, b2f(r.ok), m.Name())
	}
}

// Run measures at once and then every interval until ctx ends.
func (c *Collector) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.MeasureAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// MeasureAll runs every measurement that is due, one after another, so the collector
// uses at most one database connection at a time.
func (c *Collector) MeasureAll(ctx context.Context) {
	for _, m := range c.measurements {
		if ctx.Err() != nil {
			return
		}
		if !c.due(m) {
			continue
		}
		c.measure(ctx, m)
	}
}

// due tells whether m is to run now: never run, or its Period (if any) and its rest
// after its last run (restPerRun) are over.
func (c *Collector) due(m Measurement) bool {
	c.mu.RLock()
	r, seen := c.results[m.Name()]
	c.mu.RUnlock()
	if !seen {
		return true
	}
	var wait time.Duration
	if _, off := m.(offDatabase); !off && r.duration >= restFrom { // failed or not: it took that time
		wait = restPerRun * r.duration
	}
	if p, ok := m.(Periodic); ok {
		wait = max(wait, p.Period())
	}
	return c.now().Sub(r.at) >= wait
}

func (c *Collector) measure(ctx context.Context, m Measurement) {
	mctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ch := make(chan prometheus.Metric, 64)
	var got []prometheus.Metric
	done := make(chan struct{})
	go func() {
		for x := range ch {
			got = append(got, x)
		}
		close(done)
	}()
	start := c.now()
	err := m.Measure(mctx, ch)
	d := c.now().Sub(start)
	close(ch)
	<-done
	if err != nil {
		c.log.Warn().Err(err).Str("collector", m.Name()).Dur("duration", d).Msg("measurement failed")
	} else {
		c.log.Debug().Str("collector", m.Name()).Dur("duration", d).Int("metrics", len(got)).Msg("measured")
	}
	c.mu.Lock()
	c.results[m.Name()] = result{metrics: got, duration: d, ok: err == nil, at: start}
	c.mu.Unlock()
}

// Ready tells whether every measurement has run at least once.
func (c *Collector) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.results) == len(c.measurements)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// ApplicationName is the collector's application_name in pg_stat_activity.
const ApplicationName = "ecomstream-collector"
