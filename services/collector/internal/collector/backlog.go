package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Backlog is what waits on the volume: the files the ingester would consider (*.csv,
// not dotfiles, regular files) in the watched directory, their bytes, and the age of the
// oldest by modification time, the latency origin. Files still being written under a
// dotfile name are not backlog yet.
type Backlog struct {
	Dir string
	Now func() time.Time // for tests; time.Now when nil
}

var (
	backlogFilesDesc  = Desc("backlog_files", "Pending *.csv files (not dotfiles) in the watched directory.")
	backlogBytesDesc  = Desc("backlog_bytes", "Bytes of the pending files in the watched directory.")
	backlogOldestDesc = Desc("backlog_oldest_age_seconds", "Age (now - modification time) of the oldest pending file; 0 when none is pending.")
)

// Name implements Measurement.
func (*Backlog) Name() string { return "backlog" }

// Describe implements Measurement.
func (*Backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogFilesDesc
	ch <- backlogBytesDesc
	ch <- backlogOldestDesc
}

// Pending counts the pending files.
func (b *Backlog) Pending() (files, bytes int64, oldest time.Duration, err error) {
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("backlog of %s: %w", b.Dir, err)
	}
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
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

// Measure implements Measurement.
func (b *Backlog) Measure(_ context.Context, ch chan<- prometheus.Metric) error {
	files, bytes, oldest, err := b.Pending()
	if err != nil {
		return err
	}
	gauge(ch, backlogFilesDesc, float64(files))
	gauge(ch, backlogBytesDesc, float64(bytes))
	gauge(ch, backlogOldestDesc, oldest.Seconds())
	return nil
}
