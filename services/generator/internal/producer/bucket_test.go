package producer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/generator/internal/place"
)

// The same stream placed in a bucket: every object whole, parseable, counted as in the
// summary, and nothing else under the prefix (no temporary names in a bucket).
func TestFilesPlacedInABucketParseAndCountsMatch(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "out")
	c := g.Client(t)
	cfg := testConfig("")
	cfg.Output = place.Bucket{C: c, Loc: objstore.Location{Bucket: "out", Prefix: "incoming/"}}
	cfg.BadRate, cfg.DuplicateRate, cfg.MaxFiles = 0.05, 0.1, 12
	p, _, _ := newProducer(t, cfg)
	sum, err := p.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	n := 0
	for o := range c.ListObjects(ctx, "out", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if filepath.Dir(o.Key) != "incoming" {
			t.Fatalf("object %q outside the prefix", o.Key)
		}
		if err := c.FGetObject(ctx, "out", o.Key, filepath.Join(dir, filepath.Base(o.Key)), minio.GetObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	files, counts, size := readDir(t, dir)
	if n != 12 || int64(files) != sum.Files || counts != sum.Rows || size != sum.Bytes {
		t.Fatalf("in the bucket %d objects %+v %d bytes; summary %+v", files, counts, size, sum)
	}
}
