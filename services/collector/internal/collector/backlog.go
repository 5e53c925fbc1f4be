package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// Backlog is what waits to be ingested: the files the ingester would consider (*.csv,
// *.csv.gz, *.csv.zst, not dotfiles, regular files) in the watched directory, their
// bytes, and the age of the oldest by modification time, the latency origin. Files still
// being written under a dotfile name are not backlog yet. With Bucket set it is the
// objects under a bucket prefix instead (bucket.go), under the same metric names, so the
// dashboards and alerts read either source.
type Backlog struct {
	Dir string
	// Bucket, when set, is listed instead of Dir: the input objects under Location.
	Bucket   *minio.Client
	Location objstore.Location
	// ArchivePrefix and FailedPrefix are the ingesters' INGESTER_S3_ARCHIVE_PREFIX and
	// _FAILED_PREFIX: objects there are done, not backlog. Empty: their defaults.
	ArchivePrefix, FailedPrefix string
	// ListTimeout bounds one listing of the bucket (0: DefaultListTimeout), which runs on
	// past the measurement that started it (bucket.go).
	ListTimeout time.Duration
	Now         func() time.Time // for tests; time.Now when nil

	bucket bucketState
	errors int // failed measurements (of a bucket: listings) so far; under bucket.mu for a bucket
}

var (
	backlogFilesDesc  = Desc("backlog_files", "Pending input files (*.csv, *.csv.gz, *.csv.zst; not dotfiles) in the watched directory, or objects under the bucket prefix.")
	backlogBytesDesc  = Desc("backlog_bytes", "Bytes of the pending files (or objects).")
	backlogOldestDesc = Desc("backlog_oldest_age_seconds", "Age (now - modification time) of the oldest pending file or object; 0 when none is pending.")
	backlogErrorsDesc = Desc("backlog_errors_total", "Failed backlog measurements (the directory unreadable, or the bucket listing failed); the backlog series are absent until one succeeds.")
)

// Name implements Measurement.
func (*Backlog) Name() string { return "backlog" }

func (*Backlog) offDatabase() {}

// Describe implements Measurement.
func (*Backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogFilesDesc
	ch <- backlogBytesDesc
	ch <- backlogOldestDesc
	ch <- backlogErrorsDesc
}

func (b *Backlog) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Pending counts the pending files (or objects).
func (b *Backlog) Pending(ctx context.Context) (files, bytes int64, oldest time.Duration, err error) {
	if b.Bucket != nil {
		files, bytes, first, err := b.pendingObjects(ctx)
		if err == nil && !first.IsZero() {
			oldest = max(0, b.now().Sub(first))
		}
		return files, bytes, oldest, err
	}
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("backlog of %s: %w", b.Dir, err)
	}
	now := b.now()
	for _, e := range entries {
		name := e.Name()
		if !event.IsInputFileName(name) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // taken by an ingester between ReadDir and Info: no longer pending
		}
		files++
		bytes += info.Size()
		oldest = max(oldest, now.Sub(info.ModTime()))
	}
	return files, bytes, oldest, nil
}

// Measure implements Measurement. On an error the backlog series are left out (a
// number that is not known is not served as if it were) and scrape_success says why.
// A bucket's listing may outlast the measurement: see bucket.go.
func (b *Backlog) Measure(ctx context.Context, ch chan<- prometheus.Metric) error {
	if b.Bucket != nil {
		return b.measureBucket(ctx, ch)
	}
	files, bytes, oldest, err := b.Pending(ctx)
	if err != nil {
		b.errors++
	}
	ch <- prometheus.MustNewConstMetric(backlogErrorsDesc, prometheus.CounterValue, float64(b.errors))
	if err != nil {
		return err
	}
	gauge(ch, backlogFilesDesc, float64(files))
	gauge(ch, backlogBytesDesc, float64(bytes))
	gauge(ch, backlogOldestDesc, oldest.Seconds())
	return nil
}
