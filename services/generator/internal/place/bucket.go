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

// Ready checks that the server answers, takes the key, has the bucket and lets the key put
// under the prefix, without writing anything: it sends a part of an upload that does not
// exist, to a key of the prefix. An UploadPart is authorized as s3:PutObject on the key,
// the right the generator needs; an S3 server answers NoSuchUpload only once the
// signature checked out (a wrong key is InvalidAccessKeyId or SignatureDoesNotMatch), the
// bucket was found (NoSuchBucket) and the put allowed (AccessDenied), and minio-go names it
// so only from the server's own XML error (a 404 without one is NoSuchKey). A listing, as
// before, needs s3:ListBucket, which a put-only key has not; and its AccessDenied proves no
// right to put, and comes as well from any non-S3 endpoint answering 403. The part is
// empty and its payload unsigned: over plain HTTP minio-go would otherwise send a
// streaming-signed body, which the gateway's early error leaves unread on the connection.
func (b Bucket) Ready(ctx context.Context) error {
	_, err := minio.Core{Client: b.C}.PutObjectPart(ctx, b.Loc.Bucket, b.Loc.Prefix+readyKey, readyUpload, 1,
		bytes.NewReader(nil), 0, minio.PutObjectPartOptions{DisableContentSha256: true})
	if err == nil {
		return fmt.Errorf("%s: took a part of an upload that does not exist: not an S3 server", b.Loc)
	}
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchUpload":
		return nil
	case "NoSuchBucket":
		return fmt.Errorf("%s: no such bucket", b.Loc)
	}
	return fmt.Errorf("%s: %w", b.Loc, err)
}

// The key and upload of Ready's probe: no upload has this ID, so nothing is ever written.
const (
	readyKey    = ".ecomstream-readyz"
	readyUpload = "ecomstream-readyz-no-such-upload"
)

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
