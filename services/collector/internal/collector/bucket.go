package collector

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// asidePrefixes are where the ingesters put objects they are done with (their
// INGESTER_S3_ARCHIVE_PREFIX and _FAILED_PREFIX defaults): under the bucket's root, and,
// should the input prefix hold them (an empty prefix, or one given to both), right under
// it. Objects there are not backlog.
var asidePrefixes = []string{"archive/", "failed/"}

// pendingObjects lists the input objects under b.Location as the ingesters do (every key
// under the prefix, paginated, named as the CSV contract says), their bytes and the age
// of the oldest by Last-Modified. One LIST request per 1,000 keys per interval.
func (b *Backlog) pendingObjects(ctx context.Context) (objects, bytes int64, oldest time.Duration, err error) {
	now := b.now()
	loc := b.Location
	for o := range b.Bucket.ListObjects(ctx, loc.Bucket, minio.ListObjectsOptions{Prefix: loc.Prefix, Recursive: true}) {
		if o.Err != nil {
			return 0, 0, 0, fmt.Errorf("backlog of %s: list: %w", loc, o.Err)
		}
		if aside(o.Key, loc.Prefix) || !event.IsInputFileName(path.Base(o.Key)) {
			continue
		}
		objects++
		bytes += o.Size
		oldest = max(oldest, now.Sub(o.LastModified))
	}
	return objects, bytes, oldest, nil
}

func aside(key, prefix string) bool {
	rel := strings.TrimPrefix(key, prefix)
	for _, p := range asidePrefixes {
		if strings.HasPrefix(key, p) || strings.HasPrefix(rel, p) {
			return true
		}
	}
	return false
}
