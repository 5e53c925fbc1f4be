package place

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// Writer is a file being written; it appears under its name on Commit, whole, or never.
type Writer interface {
	io.Writer
	Size() int64
	Commit() error
	Abort()
}

// Output is where files are placed: a directory or a bucket prefix.
type Output interface {
	Create(ctx context.Context, name string) (Writer, error)
	String() string
	// Ready tells whether files can be placed now (/readyz).
	Ready(ctx context.Context) error
}

// Dir is a directory as an Output (files renamed into place from a dotfile).
type Dir string

func (d Dir) Create(_ context.Context, name string) (Writer, error) { return Create(string(d), name) }
func (d Dir) String() string                                        { return string(d) }
func (d Dir) Ready(context.Context) error                           { return Writable(string(d)) }

// Bucket places files as objects under a prefix. An upload is atomic by nature: a
// reader lists and reads an object whole or not at all, so no temporary name is needed.
type Bucket struct {
	C   *minio.Client
	Loc objstore.Location
}

// partSize is the upload's part, and the memory one file in flight holds at most: a file
// smaller than a part is one PUT, a larger one a multipart upload, completed on Commit.
const partSize = 8 << 20

func (b Bucket) String() string { return b.Loc.String() }

// Ready checks that the server answers, takes the key and has the bucket: it asks for
// one key of the prefix. A generator's key should only put objects (docs/security.md),
// and then the listing is refused with AccessDenied, which S3 says only once the
// signature checked out (a wrong key is InvalidAccessKeyId or SignatureDoesNotMatch) and,
// at versitygw, the bucket was found (NoSuchBucket otherwise): ready. A HEAD of the
// bucket needs s3:ListBucket too, and its 403 has no body to tell a wrong key apart.
func (b Bucket) Ready(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	objs := b.C.ListObjects(ctx, b.Loc.Bucket, minio.ListObjectsOptions{Prefix: b.Loc.Prefix, MaxKeys: 1})
	defer func() {
		cancel()
		for range objs { // minio-go's goroutine ends once its channel is drained
		}
	}()
	o, ok := <-objs
	if !ok || o.Err == nil {
		return nil
	}
	switch minio.ToErrorResponse(o.Err).Code {
	case "AccessDenied":
		return nil
	case "NoSuchBucket":
		return fmt.Errorf("%s: no such bucket", b.Loc)
	}
	return fmt.Errorf("%s: %w", b.Loc, o.Err)
}

// Create starts name. A file smaller than a part stays in memory and is one PUT of
// known size on Commit (a PUT of unknown size is a multipart upload of three requests,
// ten times slower for the usual small file); a larger one streams to the server as it
// is written, as a multipart upload completed on Commit.
func (b Bucket) Create(ctx context.Context, name string) (Writer, error) {
	// The time the file was begun, finer than Last-Modified's whole seconds: the
	// ingester's latency origin (x-amz-meta-mtime, as rclone writes it).
	now := time.Now()
	mtime := strconv.FormatInt(now.Unix(), 10) + "." + fmt.Sprintf("%09d", now.Nanosecond())
	ctx, cancel := context.WithCancel(ctx)
	return &upload{b: b, ctx: ctx, cancel: cancel, key: b.Loc.Prefix + name,
		opts: minio.PutObjectOptions{ContentType: "text/csv", PartSize: partSize, UserMetadata: map[string]string{"Mtime": mtime}}}, nil
}

type upload struct {
	b      Bucket
	ctx    context.Context
	cancel context.CancelFunc
	key    string
	opts   minio.PutObjectOptions
	buf    bytes.Buffer // until the file outgrows a part
	pw     *io.PipeWriter
	done   chan error // of the streaming upload, once started
	n      int64
}

func (u *upload) url() string { return u.b.Loc.URL(u.key) }

func (u *upload) Write(p []byte) (int, error) {
	if u.pw == nil && u.buf.Len()+len(p) <= partSize {
		u.n += int64(len(p))
		return u.buf.Write(p)
	}
	if u.pw == nil {
		// Outgrown: stream what is buffered, then the rest as it comes.
		pr, pw := io.Pipe()
		u.pw, u.done = pw, make(chan error, 1)
		head := bytes.NewReader(u.buf.Bytes())
		go func() {
			_, err := u.b.C.PutObject(u.ctx, u.b.Loc.Bucket, u.key, io.MultiReader(head, pr), -1, u.opts)
			_ = pr.CloseWithError(err) // unblocks a writer if the upload failed first
			u.done <- err
		}()
	}
	n, err := u.pw.Write(p)
	u.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("upload %s: %w", u.url(), err)
	}
	return n, nil
}

func (u *upload) Size() int64 { return u.n }

// Commit ends the body; the object exists once the server has acknowledged it.
func (u *upload) Commit() error {
	defer u.cancel()
	var err error
	if u.pw == nil {
		_, err = u.b.C.PutObject(u.ctx, u.b.Loc.Bucket, u.key, bytes.NewReader(u.buf.Bytes()), int64(u.buf.Len()), u.opts)
	} else {
		_ = u.pw.Close()
		err = <-u.done
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.url(), err)
	}
	return nil
}

// errAborted ends an upload that must not complete: the object never appears (a single
// PUT is never sent; an unfinished multipart upload is aborted by the client).
var errAborted = errors.New("file abandoned")

func (u *upload) Abort() {
	if u.pw != nil {
		_ = u.pw.CloseWithError(errAborted)
		<-u.done
	}
	u.cancel()
}
