package ingest

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
)

// dirOptions are a runner's options with the directory source's, for the tests against
// real files and a real PostgreSQL.
type dirOptions struct {
	Options
	InputDir, ArchiveDir, FailedDir string
	DeleteOnSuccess                 bool
	RescanInterval, Settle          time.Duration
	// Wrap, when set, stands between the directory source and the runner.
	Wrap func(source.Source) source.Source
}

// dirRunner is the runner main builds: a directory source, its queue, the real loader.
func dirRunner(opt dirOptions, pool *pgxpool.Pool, instance string, maxRejected int) (*Runner, *queue.Queue, *Metrics, *prometheus.Registry) {
	var m *Metrics
	src := dir.New(dir.Options{Input: opt.InputDir, Archive: opt.ArchiveDir, Failed: opt.FailedDir,
		Settle: opt.Settle, Rescan: opt.RescanInterval, Log: zerolog.Nop(),
		OnError: func(stage string) { m.Errors.WithLabelValues(stage).Inc() }})
	var s source.Source = src
	if opt.Wrap != nil {
		s = opt.Wrap(src)
	}
	q := queue.New(s, opt.Settle)
	reg := metrics.NewRegistry()
	m = NewMetrics(reg, q, pool)
	o := opt.Options
	if opt.DeleteOnSuccess {
		o.OnSuccess = source.Delete
	}
	r := New(o, zerolog.Nop(), s, q, &load.Loader{Pool: pool, Instance: instance, MaxRejected: maxRejected, Retry: o.Retry}, m)
	return r, q, m, reg
}
