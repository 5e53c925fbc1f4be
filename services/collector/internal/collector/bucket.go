package collector

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
)

// The ingesters' INGESTER_S3_ARCHIVE_PREFIX and _FAILED_PREFIX defaults.
const (
	defaultArchivePrefix = "archive/"
	defaultFailedPrefix  = "failed/"
)

// DefaultListTimeout bounds one listing of the bucket (COLLECTOR_S3_LIST_TIMEOUT's default).
const DefaultListTimeout = 2 * time.Minute

// Listing a bucket is not a query: a backlog of a million objects is a thousand LIST
// requests, tens of seconds on a slow server, and it is then that the backlog matters.
// So a listing is not cut off with the measurement (the interval plus the statement
// timeout): it runs on under its own bound (ListTimeout) while the measurement serves the
// last listing that finished, and the measurement after it serves its result. One
// listing at a time; the next starts when a measurement finds none running.

// listing is one bucket listing's outcome.
type listing struct {
	objects, bytes int64
	oldest         time.Time // Last-Modified of the oldest; zero when there is none
	err            error
}

// bucketState is a Backlog's listing in progress and its last outcome.
type bucketState struct {
	mu      sync.Mutex
	running chan struct{} // closed when the listing in progress ends; nil: none runs
	last    *listing      // the last that finished; nil: none has
}

// startListing starts a listing unless one runs, and returns the channel closed when the
// one running ends. The listing outlives ctx (not its values), up to ListTimeout.
func (b *Backlog) startListing(ctx context.Context) <-chan struct{} {
	b.bucket.mu.Lock()
	defer b.bucket.mu.Unlock()
	if b.bucket.running != nil {
		return b.bucket.running
	}
	done := make(chan struct{})
	b.bucket.running = done
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(b.ListTimeout, DefaultListTimeout))
	go func() {
		defer close(done)
		defer cancel()
		var l listing
		l.objects, l.bytes, l.oldest, l.err = b.pendingObjects(lctx)
		b.bucket.mu.Lock()
		defer b.bucket.mu.Unlock()
		if l.err != nil {
			b.errors++
		}
		b.bucket.last, b.bucket.running = &l, nil
	}()
	return done
}

// measureBucket waits for a listing until ctx ends and serves the last one that finished
// (this one, or the one before while this one runs on); no series while none has, or
// when the last failed.
func (b *Backlog) measureBucket(ctx context.Context, ch chan<- prometheus.Metric) error {
	select {
	case <-b.startListing(ctx):
	case <-ctx.Done():
	}
	b.bucket.mu.Lock()
	last, errors := b.bucket.last, b.errors
	b.bucket.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(backlogErrorsDesc, prometheus.CounterValue, float64(errors))
	switch {
	case last == nil:
		return fmt.Errorf("backlog of %s: the first listing still runs", b.Location)
	case last.err != nil:
		return last.err
	}
	var age time.Duration
	if !last.oldest.IsZero() {
		age = max(0, b.now().Sub(last.oldest))
	}
	gauge(ch, backlogFilesDesc, float64(last.objects))
	gauge(ch, backlogBytesDesc, float64(last.bytes))
	gauge(ch, backlogOldestDesc, age.Seconds())
	return nil
}

// pendingObjects lists the input objects under b.Location as the ingesters do (every key
// under the prefix, paginated, named as the CSV contract says, not under their archive
// or failed prefix), their bytes and the age of the oldest by Last-Modified. One LIST
// request per 1,000 keys per interval; nothing but the sums is held. oldest is the
// Last-Modified of the oldest (zero: none).
func (b *Backlog) pendingObjects(ctx context.Context) (objects, bytes int64, oldest time.Time, err error) {
	loc := b.Location
	archive, failed := cmp.Or(b.ArchivePrefix, defaultArchivePrefix), cmp.Or(b.FailedPrefix, defaultFailedPrefix)
	for o := range b.Bucket.ListObjects(ctx, loc.Bucket, minio.ListObjectsOptions{Prefix: loc.Prefix, Recursive: true}) {
		if o.Err != nil {
			return 0, 0, time.Time{}, fmt.Errorf("backlog of %s: list: %w", loc, o.Err)
		}
		if !loc.Takes(archive, failed, o.Key) {
			continue
		}
		objects++
		bytes += o.Size
		if oldest.IsZero() || o.LastModified.Before(oldest) {
			oldest = o.LastModified
		}
	}
	return objects, bytes, oldest, nil
}
