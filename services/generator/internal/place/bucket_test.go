package place

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
)

func keys(t *testing.T, c *minio.Client) []string {
	var ks []string
	for o := range c.ListObjects(context.Background(), "out", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		ks = append(ks, o.Key)
	}
	return ks
}

// An object appears on Commit, whole; an aborted one never appears, small (one PUT) or
// larger than a part (a multipart upload, which is aborted too).
func TestBucketObjectAppearsWholeOnCommitOrNever(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{}, "out")
	c := g.Client(t)
	b := Bucket{C: c, Loc: objstore.Location{Bucket: "out", Prefix: "in/"}}
	ctx := context.Background()
	if err := b.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := (Bucket{C: c, Loc: objstore.Location{Bucket: "missing"}}).Ready(ctx); err == nil {
		t.Fatal("a missing bucket is ready")
	}
	appearsWholeOrNever(t, b, c)
}

// The same with the generator's own account of compose's s3 profile, which may only put
// under the input prefix (and abort its uploads): the multipart upload, its abort and the
// readiness check need nothing more. The checks of what is there use root's keys.
func TestBucketWithTheGeneratorsPutOnlyAccount(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, "out")
	gen := s3test.Accounts["generator"]
	b := Bucket{C: g.ClientAs(t, gen), Loc: objstore.Location{Bucket: "out", Prefix: "incoming/"}}
	ctx := context.Background()
	// Ready needs the right to put under the prefix, not to list it.
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("a put-only key is not ready: %v", err)
	}
	wrong := gen
	wrong.Secret = "not-the-secret"
	if err := (Bucket{C: g.ClientAs(t, wrong), Loc: b.Loc}).Ready(ctx); err == nil {
		t.Error("a wrong secret is ready")
	}
	if err := (Bucket{C: b.C, Loc: objstore.Location{Bucket: "missing", Prefix: "incoming/"}}).Ready(ctx); err == nil {
		t.Error("a missing bucket is ready")
	}
	appearsWholeOrNever(t, b, g.Client(t))
}

// A refused listing is no proof that the generator can put: a key the gateway knows
// but whose account may not put under the prefix (the collector's; the generator's own on
// a prefix outside its policy), or an endpoint that is no S3 server and answers 403 to
// everything (a proxy, a web server; minio-go names a 403 without an S3 body
// AccessDenied), must leave the generator not ready, not ready and failing every upload.
func TestBucketNotReadyWithoutTheRightToPut(t *testing.T) {
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, "out")
	ctx := context.Background()
	loc := objstore.Location{Bucket: "out", Prefix: "incoming/"}
	if err := (Bucket{C: g.ClientAs(t, s3test.Accounts["collector"]), Loc: loc}).Ready(ctx); err == nil {
		t.Error("the collector's list-only key is ready")
	}
	if err := (Bucket{C: g.ClientAs(t, s3test.Accounts["ingester"]), Loc: loc}).Ready(ctx); err != nil {
		t.Errorf("the ingester's key, which may put under the prefix (Helm's generators take it by default), is not ready: %v", err)
	}
	other := objstore.Location{Bucket: "out", Prefix: "elsewhere/"}
	if err := (Bucket{C: g.ClientAs(t, s3test.Accounts["collector"]), Loc: other}).Ready(ctx); err == nil {
		t.Error("a key that may not put under the prefix is ready")
	}
	if err := (Bucket{C: g.ClientAs(t, s3test.Accounts["generator"]), Loc: other}).Ready(ctx); err == nil {
		t.Error("the generator's key is ready for a prefix it may not put under")
	}
	// Not an S3 server: a web server refusing every path with a page of its own.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "<html><body>403 Forbidden</body></html>")
	}))
	t.Cleanup(web.Close)
	wc, err := objstore.New(objstore.Settings{Endpoint: web.URL, Region: "us-east-1",
		Creds: credentials.NewStaticV4("k", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := (Bucket{C: wc, Loc: loc}).Ready(ctx); err == nil {
		t.Error("an endpoint that is no S3 server, answering 403, is ready")
	}
}

// appearsWholeOrNever writes through b, small and larger than a part, aborted and
// committed, and checks with root what appeared in b's bucket.
func appearsWholeOrNever(t *testing.T, b Bucket, c *minio.Client) {
	t.Helper()
	ctx := context.Background()
	key := b.Loc.Prefix + "a.csv"
	big := bytes.Repeat([]byte("0123456789abcdef"), (partSize+partSize/2)/16)
	for _, body := range [][]byte{[]byte("event_id\n"), big} {
		w, err := b.Create(ctx, "a.csv")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		if ks := keys(t, c); len(ks) != 0 {
			t.Fatalf("aborted upload of %d bytes left %v", len(body), ks)
		}
		for u := range c.ListIncompleteUploads(ctx, "out", "", true) {
			if u.Err == nil {
				t.Fatalf("aborted upload left a multipart upload: %+v", u)
			}
		}

		w, err = b.Create(ctx, "a.csv")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(body); i += 1 << 20 {
			if _, err := w.Write(body[i:min(len(body), i+1<<20)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		o, err := c.GetObject(ctx, "out", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := o.Stat(); err != nil || st.UserMetadata["Mtime"] == "" {
			t.Fatalf("no x-amz-meta-mtime: %v %v", st.UserMetadata, err)
		}
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, body) || w.Size() != int64(len(body)) {
			t.Fatalf("committed %d bytes, read %d (%v), size %d", len(body), len(got), err, w.Size())
		}
		if err := c.RemoveObject(ctx, "out", key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
