package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	s3source "github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

// bucketStore is a bucket source's input prefix and its failed prefix, read and written
// as the ingester's s3 source does (its accept rule, its failed/<stem>.<etag><ext> keys
// and their .reason.txt objects).
type bucketStore struct {
	c               *minio.Client
	loc             objstore.Location
	archive, failed string // key prefixes, ending in "/"
	// afterPut, when set, runs once a retry's PUT has succeeded: tests stop a retry there
	// (by cancelling its context) to prove a second run finishes it.
	afterPut func()
}

// newBucketStore is the store of s3://BUCKET/PREFIX, reached with the AWS SDKs' standard
// variables exactly as the ingester reaches it.
func newBucketStore(s Settings) (*bucketStore, error) {
	loc, err := objstore.Parse(s.Source)
	if err != nil {
		return nil, fmt.Errorf("INGESTER_SOURCE (--source): %w", err)
	}
	c, err := objstore.New(objstore.SettingsFromEnv())
	if err != nil {
		return nil, err
	}
	return &bucketStore{c: c, loc: loc, archive: s.S3ArchivePrefix, failed: s.S3FailedPrefix}, nil
}

func (b *bucketStore) inputPlace() string  { return b.loc.String() }
func (b *bucketStore) failedPlace() string { return b.loc.URL(b.failed) }

// Bounds of what the commands read of an object.
const (
	// maxHeadCompressed is the compressed bytes read for a compressed object's first
	// lines: text compresses 3 to 10 times, so this holds maxHeadRead of text.
	maxHeadCompressed = 256 << 10
)

// bucketErr says what a bucket's error means for the person who ran the command: S3's
// refusals as they are (with what to check), anything else (a refused connection, a
// timeout, a 5xx, throttling; minio-go has already retried it) as "try again later".
// minio-go's errors name the endpoint and the key, never the credentials.
func bucketErr(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: interrupted", what)
	}
	r := minio.ToErrorResponse(err)
	var ne net.Error
	switch {
	case r.Code == "AccessDenied" || r.Code == "InvalidAccessKeyId" || r.Code == "SignatureDoesNotMatch" || r.StatusCode == 403:
		return fmt.Errorf("%s: %w (the bucket refused the request: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the permissions of that key)", what, err)
	case r.Code == "NoSuchBucket":
		return fmt.Errorf("%s: %w (check INGESTER_SOURCE)", what, err)
	// 409: AWS's ConditionalRequestConflict, a conditional PUT racing another write to the key.
	case errors.As(err, &ne) || r.StatusCode == 0 || r.StatusCode >= 500 || r.StatusCode == 429 || r.StatusCode == 409 || r.Code == "SlowDown":
		return fmt.Errorf("%s: %w (the bucket is not reachable or not answering: try again later)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNoSuchKey(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "NoSuchKey" || r.StatusCode == 404 && r.Code != "NoSuchBucket"
}

func isPreconditionFailed(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "PreconditionFailed" || r.StatusCode == 412
}

// list calls each for every object under prefix.
func (b *bucketStore) list(ctx context.Context, prefix string, each func(minio.ObjectInfo)) error {
	for o := range b.c.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return bucketErr("list "+b.loc.URL(prefix), o.Err)
		}
		each(o)
	}
	return nil
}

// pending measures the input prefix's backlog by the source's own rule (objstore.Location.Takes).
func (b *bucketStore) pending(ctx context.Context, now time.Time) (Backlog, error) {
	bl := Backlog{Dir: b.inputPlace()}
	var oldest time.Time
	err := b.list(ctx, b.loc.Prefix, func(o minio.ObjectInfo) {
		if !b.loc.Takes(b.archive, b.failed, o.Key) {
			return
		}
		bl.Files++
		bl.Bytes += o.Size
		if oldest.IsZero() || o.LastModified.Before(oldest) {
			oldest, bl.OldestFile = o.LastModified, strings.TrimPrefix(o.Key, b.loc.Prefix)
		}
	})
	if !oldest.IsZero() {
		bl.OldestAgeSeconds = max(now.Sub(oldest).Seconds(), 0)
	}
	return bl, err
}

// isFailedKey tells a failed object (its name below the failed prefix) from a reason
// and from anything named as a temporary.
func isFailedKey(rel string) bool { return rel != "" && isFailedFile(path.Base(rel)) }

func (b *bucketStore) countFailed(ctx context.Context) (int64, error) {
	var n int64
	err := b.list(ctx, b.failed, func(o minio.ObjectInfo) {
		if isFailedKey(strings.TrimPrefix(o.Key, b.failed)) {
			n++
		}
	})
	return n, err
}

// failedFiles lists the failed prefix: each failed object with its reason object's
// text and time, its checksum (the object is read whole, as the directory's files are)
// and, when its key is one the source wrote, the ledger's name of the input it was.
func (b *bucketStore) failedFiles(ctx context.Context, since time.Time) ([]*dirFile, error) {
	var objs []minio.ObjectInfo
	reasons := map[string]minio.ObjectInfo{}
	err := b.list(ctx, b.failed, func(o minio.ObjectInfo) {
		rel := strings.TrimPrefix(o.Key, b.failed)
		switch {
		case strings.HasSuffix(rel, reasonSuffix):
			reasons[strings.TrimSuffix(o.Key, reasonSuffix)] = o
		case isFailedKey(rel):
			objs = append(objs, o)
		}
	})
	if err != nil {
		return nil, err
	}
	var out []*dirFile
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, b.failed)
		f := &dirFile{name: rel, size: o.Size, at: o.LastModified, original: b.inputOf(rel)}
		if r, ok := reasons[o.Key]; ok {
			f.at = r.LastModified
			if err := b.read(ctx, r.Key, "", 0, maxReasonFile, func(body io.Reader) error {
				f.reason, f.message, _ = parseReason(body, rel)
				return nil
			}); err != nil && !isNoSuchKey(err) {
				return nil, bucketErr("read "+b.loc.URL(r.Key), err)
			}
		}
		if f.at.Before(since) {
			continue
		}
		err := b.read(ctx, o.Key, o.ETag, 0, -1, func(body io.Reader) (err error) {
			f.sha, err = readerSHA256(body)
			return err
		})
		switch {
		case isNoSuchKey(err) || isPreconditionFailed(err):
			continue // retried or replaced since the listing: the next run shows what is there
		case err != nil:
			return nil, bucketErr("read "+b.loc.URL(o.Key), err)
		}
		out = append(out, f)
	}
	return out, nil
}

// read GETs key (only while it holds etag, when given; limit > 0: its first limit bytes
// from offset) and hands the body to use.
func (b *bucketStore) read(ctx context.Context, key, etag string, offset, limit int64, use func(io.Reader) error) error {
	var o minio.GetObjectOptions
	if etag != "" {
		if err := o.SetMatchETag(etag); err != nil {
			return err
		}
	}
	if limit > 0 {
		if err := o.SetRange(offset, offset+limit-1); err != nil {
			return err
		}
	}
	obj, err := b.c.GetObject(ctx, b.loc.Bucket, key, o)
	if err != nil {
		return err
	}
	defer obj.Close()
	// GetObject is lazy: Stat sends the request, so S3's verdict comes before the body.
	if _, err := obj.Stat(); err != nil {
		return err
	}
	return use(obj)
}

// etagName matches the ETag the source puts before a failed object's extension: an MD5
// in hex, "-N" after it for a multipart upload's.
var etagName = regexp.MustCompile(`^[0-9a-f]{32}(-[0-9]+)?$`)

// untag splits a failed object's name (below the failed prefix) into the name the input
// object had and the ETag tag the source added: dir/x.<etag>.csv -> dir/x.csv, <etag>.
// A name without a tag is returned as it is.
func untag(rel string) (orig, tag string) {
	dir, base := path.Split(rel)
	stem, ext := splitExt(base)
	i := strings.LastIndex(stem, ".")
	if i <= 0 || !etagName.MatchString(stem[i+1:]) {
		return rel, ""
	}
	return dir + stem[:i] + ext, stem[i+1:]
}

// splitExt splits the extensions the source knows off a name.
func splitExt(base string) (stem, ext string) {
	for _, e := range []string{".csv.gz", ".csv.zst", ".csv"} {
		if s, ok := strings.CutSuffix(base, e); ok {
			return s, e
		}
	}
	return base, ""
}

// inputOf returns the ledger's name of the input object a failed object was moved from,
// when its key is the one the source gives it (s3source.AsideKey); "" when it is not
// (put there by hand, or its stem was shortened to fit a key's limits): then the
// checksum alone pairs it with its ledger row.
func (b *bucketStore) inputOf(rel string) string {
	orig, tag := untag(rel)
	if tag == "" {
		return ""
	}
	key := b.loc.Prefix + orig
	if s3source.AsideKey(b.loc, b.failed, key, tag) != b.failed+rel {
		return ""
	}
	return b.loc.URL(key)
}

// head reads the first lines of a failed object with a ranged GET; a compressed one is
// decompressed as a bounded stream (its first maxHeadCompressed bytes, at most
// maxHeadRead bytes of text out).
func (b *bucketStore) head(ctx context.Context, name string, n int) ([]Line, error) {
	key := b.failed + name
	limit := int64(maxHeadRead)
	if compress.CodecOf(name) != compress.None {
		limit = maxHeadCompressed
	}
	var buf []byte
	err := b.read(ctx, key, "", 0, limit, func(body io.Reader) error {
		z := compress.Reader(name, body)
		defer z.Close()
		var err error
		buf, err = io.ReadAll(io.LimitReader(z, maxHeadRead))
		var ce *compress.CorruptError
		if errors.As(err, &ce) {
			// The range cut the stream short (or it is corrupt, which its reason says):
			// what was decoded before is shown.
			return nil
		}
		return err
	})
	switch {
	case isNoSuchKey(err) || minio.ToErrorResponse(err).Code == "InvalidRange": // gone, or empty
		return []Line{}, nil
	case err != nil:
		return nil, bucketErr("read "+b.loc.URL(key), err)
	}
	return linesOf(buf, n), nil
}

// retry puts failed/NAME's bytes back under the input prefix as NAME's stem with a retry
// suffix, then deletes failed/NAME and its reason.
//
// No overwrite, ever. The new object is written with a PUT conditional on its key being
// free (If-None-Match: *, which AWS S3 and versitygw honour on PutObject), the bytes
// streamed from a GET of failed/NAME conditional on the ETag that was hashed (If-Match).
// A server-side copy would spare that transfer, but versitygw v1.8.0 takes no condition
// on a copy's destination (only the x-amz-copy-source-if-* ones on its source), so a
// copy could replace an object put at that key a moment before; failed objects are
// small (the files a producer writes) and the transfer is the operator's one-off. The
// PUT also gives the retry a fresh Last-Modified and no producer mtime, so its latency
// is measured from the retry, as a directory retry's.
//
// Re-runnable. A retry that stopped after the PUT left the bytes under the input prefix
// (or already committed, in the ledger): a second run finds them by checksum and only
// finishes the deletes. Two retries of one NAME at once race for the same free key; the
// one whose PUT is refused finds its own bytes there and finishes as "already" rather
// than writing a second copy.
func (b *bucketStore) retry(ctx context.Context, name string, ledgerNames ledgerLookup) (newName string, already bool, err error) {
	key := b.failed + name
	st, err := b.c.StatObject(ctx, b.loc.Bucket, key, minio.StatObjectOptions{})
	switch {
	case isNoSuchKey(err):
		return "", false, fmt.Errorf("%s is not a failed file: there is no such object in %s (see `ingester failed`)", printable(name, 200), printable(b.failedPlace(), 256))
	case err != nil:
		return "", false, bucketErr("look at "+b.loc.URL(key), err)
	}
	orig, _ := untag(name)
	stem, ext := splitName(orig)
	if !event.IsInputFileName(stem+".retry1"+ext) || !b.loc.Takes(b.archive, b.failed, b.loc.Prefix+stem+".retry1"+ext) {
		return "", false, fmt.Errorf("%s: the ingester does not take objects named like it (%s), so a retry would never be ingested; rename it in %s first",
			printable(name, 200), printable(ext, 40), printable(b.failedPlace(), 256))
	}
	var sum string
	if err := b.read(ctx, key, st.ETag, 0, -1, func(r io.Reader) (err error) { sum, err = readerSHA256(r); return err }); err != nil {
		if isPreconditionFailed(err) || isNoSuchKey(err) {
			return "", false, fmt.Errorf("%s changed while it was read (another retry, or a new upload): run the retry again", printable(name, 200))
		}
		return "", false, bucketErr("read "+b.loc.URL(key), err)
	}
	taken, done, err := ledgerNames(ctx, b.loc.URL(b.loc.Prefix+stem), sum)
	if err != nil {
		return "", false, err
	}
	if done != "" {
		done = strings.TrimPrefix(done, b.loc.URL(b.loc.Prefix))
	} else if done, err = b.pendingCopy(ctx, stem, ext, sum); err != nil {
		return "", false, err
	}
	if done != "" {
		return done, true, b.removeFailed(ctx, name, st.ETag, done)
	}
	for n := 1; ; n++ {
		if n > 10000 {
			return "", false, fmt.Errorf("%s: no free retry name after 10000 tries", printable(name, 200))
		}
		cand := stem + ".retry" + strconv.Itoa(n) + ext
		if taken[b.loc.URL(b.loc.Prefix+cand)] {
			continue
		}
		if used, err := b.asideUsed(ctx, stem+".retry"+strconv.Itoa(n)+"."); err != nil {
			return "", false, err
		} else if used {
			continue
		}
		err := b.put(ctx, key, st, b.loc.Prefix+cand)
		if errors.Is(err, errTaken) {
			// Taken meanwhile: by another retry of these bytes (finish as it), or by other bytes.
			same, err := b.holds(ctx, b.loc.Prefix+cand, sum)
			if err != nil {
				return "", false, err
			}
			if same {
				return cand, true, b.removeFailed(ctx, name, st.ETag, cand)
			}
			continue
		}
		if err != nil {
			return "", false, err
		}
		newName = cand
		break
	}
	if b.afterPut != nil {
		b.afterPut()
	}
	// Only now, with the bytes under the input prefix, does NAME leave the failed prefix.
	return newName, false, b.removeFailed(ctx, name, st.ETag, newName)
}

// errTaken is a PUT refused because its key holds an object (If-None-Match: *).
var errTaken = errors.New("the key is taken")

// put streams key's version st to dst, only while dst is free (errTaken otherwise).
func (b *bucketStore) put(ctx context.Context, key string, st minio.ObjectInfo, dst string) error {
	var putErr error
	err := b.read(ctx, key, st.ETag, 0, -1, func(body io.Reader) error {
		opts := minio.PutObjectOptions{DisableMultipart: true, ContentType: st.ContentType}
		opts.SetMatchETagExcept("*")
		_, putErr = b.c.PutObject(ctx, b.loc.Bucket, dst, body, st.Size, opts)
		return putErr
	})
	switch {
	case err == nil:
		return nil
	case putErr != nil && isPreconditionFailed(putErr):
		return errTaken
	case putErr == nil && (isPreconditionFailed(err) || isNoSuchKey(err)): // the GET's If-Match
		return fmt.Errorf("%s changed while it was copied (another retry, or a new upload): run the retry again", printable(b.loc.URL(key), 256))
	}
	return bucketErr("put "+b.loc.URL(dst), err)
}

// holds tells whether key holds the bytes of checksum sum, or did and was committed.
func (b *bucketStore) holds(ctx context.Context, key, sum string) (bool, error) {
	var got string
	err := b.read(ctx, key, "", 0, -1, func(r io.Reader) (err error) { got, err = readerSHA256(r); return err })
	switch {
	case isNoSuchKey(err):
		return false, nil
	case err != nil:
		return false, bucketErr("read "+b.loc.URL(key), err)
	}
	return got == sum, nil
}

// pendingCopy returns the name (below the input prefix) of a retried copy of these
// bytes waiting under the input prefix, if any.
func (b *bucketStore) pendingCopy(ctx context.Context, stem, ext, sum string) (string, error) {
	var cands []string
	err := b.list(ctx, b.loc.Prefix+stem+".retry", func(o minio.ObjectInfo) {
		rel := strings.TrimPrefix(o.Key, b.loc.Prefix)
		if s, x := splitName(rel); s == stem && x == ext && !strings.Contains(rel, "/") {
			cands = append(cands, rel)
		}
	})
	if err != nil {
		return "", err
	}
	for _, rel := range cands {
		same, err := b.holds(ctx, b.loc.Prefix+rel, sum)
		if err != nil {
			return "", err
		}
		if same {
			return rel, nil
		}
	}
	return "", nil
}

// asideUsed tells whether the archive or the failed prefix holds an object of the name
// that starts with start (the source's keys there are name.<etag><ext>).
func (b *bucketStore) asideUsed(ctx context.Context, start string) (bool, error) {
	for _, p := range []string{b.archive, b.failed} {
		if used, err := b.anyUnder(ctx, p+start); used || err != nil {
			return used, err
		}
	}
	return false, nil
}

// anyUnder tells whether some object's key starts with prefix. Only the first is read;
// then the listing is cancelled and drained, or minio-go's goroutine would wait forever
// to hand over the next page's keys (or, cancelled, its error).
func (b *bucketStore) anyUnder(ctx context.Context, prefix string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	objs := b.c.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: prefix, MaxKeys: 1})
	defer func() {
		cancel()
		for range objs {
		}
	}()
	o, ok := <-objs
	switch {
	case !ok:
		return false, nil
	case o.Err != nil:
		return false, bucketErr("list "+b.loc.URL(prefix), o.Err)
	}
	return true, nil
}

// removeFailed deletes the reason, then the failed object (only while it holds the
// version retried): a stop between leaves the object, which a second retry finds placed
// and finishes.
func (b *bucketStore) removeFailed(ctx context.Context, name, etag, placed string) error {
	key := b.failed + name
	if err := b.c.RemoveObject(ctx, b.loc.Bucket, key+reasonSuffix, minio.RemoveObjectOptions{}); err != nil && !isNoSuchKey(err) {
		return bucketErr(fmt.Sprintf("%s was placed as %s, but removing its reason %s failed (a retry of it again finishes this)",
			printable(name, 200), printable(placed, 220), b.loc.URL(key+reasonSuffix)), err)
	}
	err := b.c.RemoveObject(objstore.DeleteIfMatch(ctx, etag), b.loc.Bucket, key, minio.RemoveObjectOptions{})
	switch {
	case err == nil || isNoSuchKey(err):
		return nil
	case isPreconditionFailed(err):
		return fmt.Errorf("%s was placed as %s, but new bytes were put at %s meanwhile; they stay (retry them once fixed)",
			printable(name, 200), printable(placed, 220), printable(b.loc.URL(key), 256))
	}
	return bucketErr(fmt.Sprintf("%s was placed as %s, but removing it from %s failed (a retry of it again finishes this)",
		printable(name, 200), printable(placed, 220), printable(b.failedPlace(), 256)), err)
}
