package load

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
	s3source "github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

// A corrupt compressed object is a whole-file rejection, like a corrupt file, though the
// times of its version differ between the listing (Last-Modified, whole seconds) and the
// read (the producer's x-amz-meta-mtime): the read was conditional on the listed ETag, so
// the bytes are the ones claimed, and the stream's fault is theirs, not a rewrite's.
// (Before, the differing times made it ErrChangedWhileRead: retried ten times, then moved
// aside as retries_exhausted instead of rejected as corrupt_compressed.)
func TestACorruptCompressedObjectIsRejectedThoughItsTimesDiffer(t *testing.T) {
	pool := newPool(t)
	g := s3test.StartGateway(t, s3test.Options{}, "input")
	c := g.Client(t)
	loc := objstore.Location{Bucket: "input", Prefix: "in/"}
	src, err := s3source.New(c, s3source.Options{Location: loc, ArchivePrefix: "archive/", FailedPrefix: "failed/",
		ListInterval: time.Hour, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	zst := compressedCSV(t, compress.Zstd, rows(2000)...)
	cut := zst[:len(zst)*2/3]
	// The generator's convention: when it began the object, finer than Last-Modified.
	mtime := fmt.Sprintf("%d.%09d", time.Now().Unix()-1, 123456789)
	if _, err := c.PutObject(context.Background(), "input", "in/cut.csv.zst", bytes.NewReader(cut), int64(len(cut)),
		minio.PutObjectOptions{UserMetadata: map[string]string{s3source.MtimeKey: mtime}}); err != nil {
		t.Fatal(err)
	}
	var it input.Item
	for o := range c.ListObjects(context.Background(), "input", minio.ListObjectsOptions{Prefix: "in/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		it = input.Item{Name: loc.URL(o.Key), Path: loc.URL(o.Key), Version: input.Version{Size: o.Size, ModTime: o.LastModified, ETag: o.ETag}}
	}
	l := &Loader{Pool: pool, Instance: "t", MaxRejected: 100}
	o := l.Load(context.Background(), src, []input.Item{it})
	if o.Verdict != Reject || o.Reason != compress.ReasonCorrupt {
		t.Fatalf("load of a corrupt object: %s %q %v, want reject %s", o.Verdict, o.Reason, o.Err, compress.ReasonCorrupt)
	}
}
