package collector

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// The ingesters' INGESTER_S3_ARCHIVE_PREFIX and _FAILED_PREFIX defaults.
const (
	defaultArchivePrefix = "archive/"
	defaultFailedPrefix  = "failed/"
)

// pendingObjects lists the input objects under b.Location as the ingesters do (every key
// under the prefix, paginated, named as the CSV contract says, not under their archive
// or failed prefix), their bytes and the age of the oldest by Last-Modified. One LIST
// request per 1,000 keys per interval; nothing but the sums is held.
func (b *Backlog) pendingObjects(ctx context.Context) (objects, bytes int64, oldest time.Duration, err error) {
	now := b.now()
	loc := b.Location
	archive, failed := cmp.Or(b.ArchivePrefix, defaultArchivePrefix), cmp.Or(b.FailedPrefix, defaultFailedPrefix)
	for o := range b.Bucket.ListObjects(ctx, loc.Bucket, minio.ListObjectsOptions{Prefix: loc.Prefix, Recursive: true}) {
		if o.Err != nil {
			return 0, 0, 0, fmt.Errorf("backlog of %s: list: %w", loc, o.Err)
		}
		if !takes(loc.Prefix, archive, failed, o.Key) {
			continue
		}
		objects++
		bytes += o.Size
		oldest = max(oldest, now.Sub(o.LastModified))
	}
	return objects, bytes, oldest, nil
}

// takes is the ingesters' rule (their s3 source's accept, which this module cannot
// import): an input name under the prefix, not under the archive or failed prefix.
// Those are key prefixes of the bucket, not of the input prefix: with the defaults, a
// folder named archive/ under the input prefix is input.
func takes(prefix, archive, failed, key string) bool {
	return strings.HasPrefix(key, prefix) && !strings.HasPrefix(key, archive) && !strings.HasPrefix(key, failed) &&
		event.IsInputFileName(path.Base(key))
}
