// Package s3 is a bucket as a source: the objects under s3://BUCKET/PREFIX, found by a
// full listing every interval (the backstop) and, when a NATS server is named, at once
// from the bucket's event notifications; read only while their key holds the version
// that was listed; archived, deleted, kept or moved to a failed prefix once committed.
//
// Identity. An object's ledger name is s3://bucket/key; its identity is that name plus
// the sha256 of the bytes streamed (the ledger's rule for every source), not its ETag. An
// ETag is not a checksum of the bytes everywhere (a multipart upload's is a hash of part
// hashes; encrypted objects' are opaque), so the same bytes uploaded again another way
// get another ETag and would be ingested twice; the sha256 makes them a no-op, and new
// bytes under an old key a new version, exactly as for files. The ETag is the version
// guard instead: Open reads with If-Match on the listed ETag (an overwrite between the
// listing and the read is ErrChanged, never a mix of two versions), and Finish copies
// and deletes with If-Match on the ETag that was read, so a newer version written over
// the key is never archived or deleted in its place.
//
// Crash windows. Finish copies first and deletes after: a crash between leaves the
// object in the input and its copy in the archive; the next attempt finds the object
// committed in the ledger (a no-op) and finishes it again, the copy landing on the same
// archive key (the key carries the ETag, so it is the same bytes, and an archive never
// overwrites another version). Fail writes the copy and its reason before the delete,
// for the same reason.
//
// Keep. Kept objects stay in the input. The source remembers, in memory, the ETag of
// every object it finished with Keep and does not hand that version out again; the cost
// is about 100 bytes per kept object while it stays in the bucket (a listing forgets
// the objects it no longer finds, so a lifecycle rule bounds it), and after a restart
// (or on a replica that did not finish it) one GET and full read of every kept object
// once, which the ledger then finds a no-op. A bucket kept this way should have a
// lifecycle rule that expires old objects.
//
// Listing. A listing reads every key under the input prefix (1000 a request) and holds
// the input objects of one listing in memory to hand them out oldest first (about 200
// bytes each; with paced listings, Options.ListMinInterval, the last listing's keys and
// ETags too). Give the input a prefix of its own: with an empty one the listing also
// walks the archive and failed prefixes, only to skip them.
//
// Errors. S3's verdicts about a key (NoSuchKey: ErrGone; PreconditionFailed: ErrChanged)
// are the only ones turned into control flow; everything else (5xx, timeouts, refused
// connections, throttling) is retried, first by the client (minio-go retries transient
// failures with backoff), then by the runner. None becomes a rejection. The store's own
// trouble (no answer, 500/502/503/504, throttling; see unavailable) is wrapped in
// source.ErrUnavailable: it counts against no object's attempts, so an outage longer
// than they allow moves nothing to the failed prefix.
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// Options configure a bucket source.
type Options struct {
	Location      objstore.Location
	ArchivePrefix string // archived objects' keys start with it ("archive/")
	FailedPrefix  string // rejected objects' keys, and their .reason.txt, start with it ("failed/")
	ListInterval  time.Duration
	// ListMinInterval, when > 0, paces the listings with backoff (ClickHouse S3Queue's
	// polling_min/max_timeout) while the listing is what finds objects: after a listing
	// that found objects the previous one did not, with no notification received since
	// that one, the next begins ListMinInterval after it ends; each listing that finds
	// none, or follows notifications, doubles the wait, up to ListInterval. Any
	// notification counts, not only those of the objects found: the replicas of a
	// bucket share the notifications, each getting some, and each listing finds the
	// others' too. A listing never follows the last one sooner than that one took, so a
	// long prefix is not listed without a pause. 0: a listing every ListInterval.
	ListMinInterval time.Duration
	// NATSURL names the NATS server the bucket's notifications are published to, on
	// NATSSubject; empty: listing only.
	NATSURL, NATSSubject string
	Log                  zerolog.Logger
	Metrics              *Metrics // nil: not measured

	// NATSStream and NATSConsumer name the JetStream stream that stores the subject and
	// the durable consumer all ingesters of the bucket share (jetstream.go); an empty
	// stream: a plain subscription, notifications published while none runs are lost.
	NATSStream, NATSConsumer string

	// Ticks, when set, starts each listing after the first instead of a ticker of
	// ListInterval: tests count listings rather than wait for them.
	Ticks <-chan time.Time
	// After, when set, is the timer of the paced listings (ListMinInterval): tests see
	// the waits asked for and start each listing by hand (time.After when nil).
	After func(time.Duration) <-chan time.Time
	// Now is the clock of the notification lag (time.Now when nil).
	Now func() time.Time

	// Turn, when set, is asked before each periodic listing (not the first: a replica
	// fills its own queue at start) whether this replica should make it: false when
	// another replica of the same source began one within the given time (package
	// listturn). The listing is the notifications' backstop and any replica that finds an
	// object loads it, so one listing per interval across the replicas is enough. Asked
	// within 0 (ownListingEvery), it records this replica's listing as the turn.
	Turn func(ctx context.Context, within time.Duration) bool
	// TurnFailed, when set, hands back a turn whose listing failed: the next replica to
	// ask lists. Held, the others left their listings to it for most of every interval,
	// and a replica that cannot list (its own credentials, its own route to the store)
	// held every turn its tick came first to.
	TurnFailed func(ctx context.Context)
}

// Source is a bucket prefix.
type Source struct {
	c   *minio.Client
	o   Options
	log zerolog.Logger
	m   *Metrics

	mu      sync.Mutex
	kept    map[string]kept // by name: the version finished with Keep
	listing uint64          // listings begun, for kept.listing

	// What the paced listings count as news (Discover's goroutine only): an object whose
	// key and ETag the previous listing did not find, no notification received since.
	previous map[string]string // key -> ETag, of the last complete listing
	heard    bool              // a notification received since the last listing
}

// kept is an object finished with Keep: its ETag, and the last listing that found it
// there (or that was under way when it was kept).
type kept struct {
	etag    string
	listing uint64
}

var _ source.Source = (*Source)(nil)

// New returns the source of o.Location read through c.
func New(c *minio.Client, o Options) (*Source, error) {
	if o.ListInterval <= 0 && o.Ticks == nil {
		return nil, errors.New("s3 source: the listing interval must be > 0")
	}
	for _, p := range []string{o.ArchivePrefix, o.FailedPrefix} {
		if p == "" || !strings.HasSuffix(p, "/") {
			return nil, fmt.Errorf("s3 source: archive and failed prefixes must be non-empty and end in '/', got %q", p)
		}
		if o.Location.Prefix != "" && strings.HasPrefix(o.Location.Prefix, p) {
			return nil, fmt.Errorf("s3 source: input prefix %q lies inside %q", o.Location.Prefix, p)
		}
	}
	if o.NATSURL != "" && o.NATSSubject == "" {
		return nil, errors.New("s3 source: a NATS subject is required with a NATS URL")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := o.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Source{c: c, o: o, log: o.Log.With().Str("source", o.Location.String()).Logger(), m: m, kept: map[string]kept{}}, nil
}

func (s *Source) String() string { return s.o.Location.String() }

// Ready tells whether the bucket answers and exists (the ingester's /readyz).
func (s *Source) Ready(ctx context.Context) error {
	ok, err := s.c.BucketExists(ctx, s.o.Location.Bucket)
	switch {
	case err != nil:
		return fmt.Errorf("bucket %s: %w", s.o.Location.Bucket, err)
	case !ok:
		return fmt.Errorf("bucket %s does not exist", s.o.Location.Bucket)
	}
	return nil
}

// accept tells whether key is an input object of this source: under the prefix, not in
// the archive or failed prefix (which may lie inside an empty input prefix), named as the
// CSV contract says (not a dotfile, a .reason.txt is not an input).
func (s *Source) accept(key string) bool {
	return s.o.Location.Takes(s.o.ArchivePrefix, s.o.FailedPrefix, key)
}

func (s *Source) item(key string, v source.Version) source.Item {
	name := s.o.Location.URL(key)
	return source.Item{Name: name, Version: v, Path: name}
}

// key returns the key of an item of this source's bucket.
func (s *Source) key(name string) (string, error) {
	k, ok := strings.CutPrefix(name, s.o.Location.URL(""))
	if !ok || k == "" {
		return "", fmt.Errorf("%s is not an object of %s", name, s.o.Location)
	}
	return k, nil
}

func (s *Source) isKept(name, etag string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kept[name]
	return ok && e.etag == etag
}

// stillKept is isKept for a listing (the n-th): a kept object it finds is remembered as
// still there.
func (s *Source) stillKept(name, etag string, n uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.kept[name]
	if !ok || e.etag != etag {
		return false
	}
	e.listing = n
	s.kept[name] = e
	return true
}

// forgetKept drops what the n-th listing, complete, no longer found: objects expired or
// deleted since they were kept (or overwritten: their new version is an input). Those
// kept while it was under way stay; it may have listed their key before their PUT.
func (s *Source) forgetKept(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.kept {
		if e.listing < n {
			delete(s.kept, name)
		}
	}
}

// Discover lists the prefix now and every interval, and follows notifications between.
func (s *Source) Discover(ctx context.Context, sink source.Sink) error {
	// Subscribe first, list second: an object put after the listing began is notified.
	var hints <-chan hint
	if s.o.NATSURL != "" {
		h, stop, err := s.subscribe(ctx)
		if err != nil {
			return err
		}
		defer stop()
		hints = h
	}
	// Paced, the waits start at the minimum, as S3Queue's do: objects may be arriving
	// when an ingester starts (a rollout, a scale-up under load).
	p := pacer{min: s.o.ListMinInterval, max: s.o.ListInterval, cur: s.o.ListMinInterval}
	ticks := s.o.Ticks
	paced := ticks == nil && p.min > 0
	if ticks == nil && !paced {
		t := time.NewTicker(s.o.ListInterval)
		defer t.Stop()
		ticks = t.C
	}
	// wait is what led to the next listing: the interval, or the paced wait.
	wait := s.o.ListInterval
	if paced {
		wait = p.cur
	}
	// list lists once and, paced, sets when the next listing begins. Past the first, a
	// listing another replica began within most of the wait is left to it (turnMargin),
	// but never more than ownListingEvery-1 in a row: that one is asked within 0, which
	// records this replica's listing as the turn.
	skipped := 0 // ticks in a row left to another replica
	list := func(first bool) error {
		turn := !first && s.o.Turn != nil
		if turn {
			within := wait - wait/turnMargin
			if skipped+1 >= ownListingEvery {
				within = 0
			}
			if !s.o.Turn(ctx, within) {
				skipped++
				s.m.turnsLeft.Inc()
				if paced {
					ticks = s.after(wait)
				}
				return nil
			}
		}
		skipped = 0
		began := time.Now()
		news, err := s.list(ctx, sink)
		if err != nil && turn && s.o.TurnFailed != nil && ctx.Err() == nil {
			s.o.TurnFailed(ctx)
		}
		if paced {
			wait = p.next(news, time.Since(began))
			ticks = s.after(wait)
		}
		return err
	}
	if err := list(true); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			if err := list(false); err != nil && ctx.Err() == nil {
				// The next listing is the retry; the objects wait in the bucket.
				s.log.Warn().Err(err).Msg("listing failed; trying again at the next interval")
			}
		case h := <-hints:
			s.look(ctx, sink, h)
		}
	}
}

// turnMargin: a listing another replica began within all but 1/turnMargin of this
// replica's wait counts as this one's. A replica alone always finds its own last listing
// older than its wait (the wait runs from that listing's end, or a ticker's period from
// its start, give or take the ticker's jitter), so it keeps listing every interval.
const turnMargin = 8

// ownListingEvery bounds the listings a replica leaves to others: at least every
// ownListingEvery-th tick it lists itself. Its own listings are what end its queue's
// memory of the items it finished (queue.Listed drops those done before a listing
// began), its kept objects no longer in the bucket (forgetKept), the items another
// replica took while NATS was down, and its backlog gauge (source_listed_items): a
// replica whose ticks always follow another's listing was never given the turn, and
// kept an entry for every object it ever loaded. Three replicas list about 1 + 2/8
// times an interval rather than 1 (3 without turns).
const ownListingEvery = 8

// after is the timer of the paced listings: Options.After, else time.After.
func (s *Source) after(d time.Duration) <-chan time.Time {
	if s.o.After != nil {
		return s.o.After(d)
	}
	return time.After(d)
}

// pacer is the backoff of the paced listings (Options.ListMinInterval).
type pacer struct{ min, max, cur time.Duration }

// next is the wait before the next listing, after one that took took and found news
// (new objects, no notification received) or not. Off (min 0): the interval.
func (p *pacer) next(news bool, took time.Duration) time.Duration {
	switch {
	case p.min <= 0:
		return p.max
	case news:
		p.cur = p.min
	default:
		p.cur = min(2*p.cur, p.max)
	}
	return max(p.cur, min(took, p.max))
}

// list is one full listing, fed to sink oldest first. news tells whether it found an
// object (a key, or a new ETag under one) that the previous listing did not, with no
// notification received since: what the paced listings speed up for.
func (s *Source) list(ctx context.Context, sink source.Sink) (news bool, err error) {
	began := time.Now()
	s.mu.Lock()
	s.listing++
	n := s.listing
	s.mu.Unlock()
	var objs []minio.ObjectInfo
	// minio-go pages through ListObjectsV2 (1000 keys a page) behind this channel.
	for o := range s.c.ListObjects(ctx, s.o.Location.Bucket, minio.ListObjectsOptions{Prefix: s.o.Location.Prefix, Recursive: true}) {
		if o.Err != nil {
			s.m.errors.WithLabelValues(opList).Inc()
			return false, fmt.Errorf("list %s: %w", s.o.Location, o.Err)
		}
		if s.accept(o.Key) && !s.stillKept(s.o.Location.URL(o.Key), o.ETag, n) {
			objs = append(objs, o)
		}
	}
	// S3 lists in key order; files are taken oldest first.
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].LastModified.Before(objs[j].LastModified) })
	var found map[string]string
	if s.o.ListMinInterval > 0 {
		found = make(map[string]string, len(objs))
	}
	for _, o := range objs {
		sink.Found(s.item(o.Key, source.Version{Size: o.Size, ModTime: o.LastModified, ETag: o.ETag}), true)
		if found == nil {
			continue
		}
		found[o.Key] = o.ETag
		if !s.heard && s.previous[o.Key] != o.ETag {
			news = true
		}
	}
	s.previous, s.heard = found, false
	s.forgetKept(n)
	sink.Listed(began)
	s.m.listSeconds.Observe(time.Since(began).Seconds())
	s.m.listed.Set(float64(len(objs)))
	return news, nil
}

// look follows one notification. A notification is only a hint: whatever it says, Open
// reads only the version named (If-Match) and the listing is the backstop, so a lost,
// late, duplicated or out-of-order one costs at most a listing interval, never a row.
// A creation that names its ETag is handed out as is (its time is the event's, to the
// second at some servers; Open returns the object's own); one that does not is looked
// at with a HEAD. A removal (mostly another replica's archive) drops the key from the
// queue: if it was late and the key holds a newer object, the next listing finds it.
func (s *Source) look(ctx context.Context, sink source.Sink, h hint) {
	name := s.o.Location.URL(h.key)
	s.heard = true
	if h.removed {
		sink.Removed(name)
		return
	}
	if h.etag != "" {
		if !s.isKept(name, h.etag) {
			sink.Found(s.item(h.key, source.Version{Size: h.size, ModTime: h.at, ETag: h.etag}), true)
		}
		return
	}
	key := h.key
	st, err := s.c.StatObject(ctx, s.o.Location.Bucket, key, minio.StatObjectOptions{})
	switch {
	case err == nil:
		if !s.isKept(s.o.Location.URL(key), st.ETag) {
			sink.Found(s.item(key, source.Version{Size: st.Size, ModTime: st.LastModified, ETag: st.ETag}), true)
		}
	case verdict(err) == source.ErrGone:
		sink.Removed(s.o.Location.URL(key))
	default:
		s.m.errors.WithLabelValues(opGet).Inc()
		s.log.Debug().Err(err).Str("key", key).Msg("notified object not looked at; the listing will find it")
	}
}

// verdict turns S3's answers about a key into the source's errors; others stay as they are.
func verdict(err error) error {
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == "NoSuchKey" || r.StatusCode == 404 && r.Code != "NoSuchBucket":
		return source.ErrGone
	case r.Code == "PreconditionFailed" || r.StatusCode == 412:
		return source.ErrChanged
	}
	return err
}

// Open reads the object, only while its key holds the listed ETag.
func (s *Source) Open(ctx context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	key, err := s.key(it.Name)
	if err != nil {
		return nil, source.Version{}, err
	}
	var o minio.GetObjectOptions
	if it.ETag != "" {
		if err := o.SetMatchETag(it.ETag); err != nil {
			return nil, source.Version{}, err
		}
	}
	// One request, its body read straight from the response (minio.Client.GetObject
	// would relay every Read through a goroutine of its own, which costs more CPU than
	// the read itself for files of a few kB); the verdict comes before a byte is read.
	body, st, _, err := minio.Core{Client: s.c}.GetObject(ctx, s.o.Location.Bucket, key, o)
	if err == nil {
		return &reader{body: body, m: s.m}, source.Version{Size: st.Size, ModTime: modTime(st), ETag: st.ETag}, nil
	}
	if v := verdict(err); v != err {
		return nil, source.Version{}, fmt.Errorf("open %s: %w", it.Name, v)
	}
	s.m.errors.WithLabelValues(opGet).Inc()
	return nil, source.Version{}, fmt.Errorf("open %s: %w", it.Name, unavailable(err))
}

// unavailable wraps err in source.ErrUnavailable when it is the store's trouble rather
// than the object's: no HTTP answer at all (a refused or reset connection, a timeout, no
// answer before the request's deadline: minio-go has already retried the request) or
// an answer that means "later" (500, 502, 503, 504, 429, the throttling codes) or that
// the credentials expired. Any other answer (403 on this key, 400, 501) is about the
// request and counts against the object, so that one that can never be read is moved
// aside with its reason in the end. A cancelled request (shutting down) is left as it is.
// minio.ToErrorResponse does not unwrap: err must be minio-go's own.
func unavailable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	r := minio.ToErrorResponse(err)
	switch {
	case slices.Contains(laterStatus, r.StatusCode), slices.Contains(laterCodes, r.Code):
	case r.StatusCode != 0 || r.Code != "":
		return err // an answer about this request
	}
	return fmt.Errorf("%w: %w", source.ErrUnavailable, err)
}

// laterStatus are the HTTP statuses that say "later".
var laterStatus = []int{500, 502, 503, 504, 429}

// laterCodes are S3 error codes that say "later" or "not with these credentials"
// whatever their HTTP status (AWS answers throttling with 400 or 503).
var laterCodes = []string{"SlowDown", "RequestTimeout", "ServiceUnavailable", "Throttling", "ThrottlingException",
	"RequestLimitExceeded", "TooManyRequests", "ExpiredToken"}

// MtimeKey is the user metadata (x-amz-meta-mtime, Unix seconds with a fraction, the
// convention of rclone) in which a producer records when it wrote an object. S3 servers
// give Last-Modified in whole seconds (in headers, and in versitygw's listings), which
// would put up to a second of noise into the latency the ledger measures from it.
const MtimeKey = "Mtime"

// modTime is the object's time as finely as it is known: the producer's mtime when it
// is plausible (not after Last-Modified's second by more than coarseSlack, not an hour
// before it: a clock far off is ignored), else Last-Modified.
func modTime(st minio.ObjectInfo) time.Time {
	v := st.UserMetadata[MtimeKey]
	if v == "" {
		return st.LastModified
	}
	sec, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return st.LastModified
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return st.LastModified
		}
	}
	t := time.Unix(n, ns)
	if t.After(st.LastModified.Add(time.Second+coarseSlack)) || t.Before(st.LastModified.Add(-time.Hour)) {
		return st.LastModified
	}
	return t
}

// coarseSlack is how far past Last-Modified's second a producer's mtime may be and still
// be taken. A server stamps an object with the file system's time, which Linux keeps
// coarse (a clock tick, 1-10 ms, behind the clock a producer reads): an object begun
// 2 ms after a whole second was stamped in the second before, its mtime was refused, and
// the ledger measured its latency from that earlier whole second, a second too long
// (BenchmarkBucketPipeline: 0-18 objects a 20 s run, each "~1 s" with a real 8-230 ms: a
// generator's 40 ms pace repeats every second, so one whose files begin in a second's
// first milliseconds does so nearly every second).
const coarseSlack = 100 * time.Millisecond

// reader counts a failure in the middle of the body as a get error (it is retried).
type reader struct {
	body io.ReadCloser
	m    *Metrics
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		// Not unavailable(err): a body cut short after its answer began counts against
		// the object. An outage costs the reads in flight one attempt each; the requests
		// after them fail before any answer, which is the store's. A body that breaks
		// every time (a bad sector under the gateway, a proxy cutting long responses) is
		// the object's: moved aside with its reason once its attempts are spent.
		r.m.errors.WithLabelValues(opGet).Inc()
	}
	return n, err
}

func (r *reader) Close() error { return r.body.Close() }

// Settled: an object appears whole (a PUT or a completed multipart upload), never half-written.
func (s *Source) Settled(_ context.Context, it source.Item) (source.Item, bool) { return it, true }

// finishers bounds the requests one Finish sends at once.
const finishers = 8

// Finish takes committed objects out of the input, several at once.
func (s *Source) Finish(ctx context.Context, fs []source.Finish) []error {
	errs := make([]error, len(fs))
	sem := make(chan struct{}, finishers)
	var wg sync.WaitGroup
	for i := range fs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = s.finish(ctx, fs[i])
		}()
	}
	wg.Wait()
	return errs
}

func (s *Source) finish(ctx context.Context, f source.Finish) error {
	key, err := s.key(f.Item.Name)
	if err != nil {
		return err
	}
	etag := f.Version.ETag
	if etag == "" {
		etag = f.Item.ETag
	}
	if etag == "" && f.Action != source.Keep {
		// Without the version read, a newer object under the key could be removed in its place.
		return fmt.Errorf("finish %s: no ETag of the version read", f.Item.Name)
	}
	switch f.Action {
	case source.Keep:
		s.mu.Lock()
		s.kept[f.Item.Name] = kept{etag: etag, listing: s.listing}
		s.mu.Unlock()
		return nil
	case source.Delete:
	case source.Archive:
		if err := s.copy(ctx, key, etag, s.aside(s.o.ArchivePrefix, key, etag)); err != nil {
			return err
		}
	case source.Fail:
		dst := s.aside(s.o.FailedPrefix, key, etag)
		if err := s.copy(ctx, key, etag, dst); err != nil {
			return err
		}
		reason := f.Reason + "\n"
		if _, err := s.c.PutObject(ctx, s.o.Location.Bucket, dst+".reason.txt", strings.NewReader(reason), int64(len(reason)),
			minio.PutObjectOptions{ContentType: "text/plain; charset=utf-8"}); err != nil {
			s.m.errors.WithLabelValues(opPut).Inc()
			return fmt.Errorf("write the reason of %s: %w", f.Item.Name, unavailable(err))
		}
	default:
		return fmt.Errorf("finish %s: unknown action %v", f.Item.Name, f.Action)
	}
	err = s.c.RemoveObject(objstore.DeleteIfMatch(ctx, etag), s.o.Location.Bucket, key, minio.RemoveObjectOptions{})
	if err == nil {
		return nil
	}
	if v := verdict(err); v != err {
		return fmt.Errorf("remove %s: %w", f.Item.Name, v)
	}
	s.m.errors.WithLabelValues(opDelete).Inc()
	return fmt.Errorf("remove %s: %w", f.Item.Name, unavailable(err))
}

// copy copies key, only while it holds etag, to dst.
func (s *Source) copy(ctx context.Context, key, etag, dst string) error {
	src := minio.CopySrcOptions{Bucket: s.o.Location.Bucket, Object: key, MatchETag: etag}
	_, err := s.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.o.Location.Bucket, Object: dst}, src)
	if err == nil {
		return nil
	}
	if v := verdict(err); v != err {
		return fmt.Errorf("copy %s to %s: %w", s.o.Location.URL(key), dst, v)
	}
	s.m.errors.WithLabelValues(opCopy).Inc()
	return fmt.Errorf("copy %s to %s: %w", s.o.Location.URL(key), dst, unavailable(err))
}

// Limits of the keys aside writes. S3 takes keys of up to 1024 bytes; a gateway over a
// file system (versitygw's posix backend) takes names of up to 255 bytes between two
// slashes. An input key near either limit, plus the ETag (33 bytes) and ".reason.txt",
// would be refused ("key too long") on every attempt: committed, never archived, retried
// and parked in the input. Its stem is shortened instead (reasonSuffix counted in both).
const (
	maxKey       = 1024
	maxKeyPart   = 255
	reasonSuffix = ".reason.txt"
)

// aside is the key an object goes to under prefix: its key below the input prefix with
// its ETag before the extension (a.csv -> a.<etag>.csv), so two versions of one name
// never overwrite each other's copy and a retried move lands on the same key. A stem
// too long for the limits is cut (at a character) and followed by "~" and 16 hex digits
// of its sha256, so two long names that share a beginning still get keys of their own.
func (s *Source) aside(prefix, key, etag string) string {
	rel := strings.TrimPrefix(key, s.o.Location.Prefix)
	dir, base := path.Split(rel)
	stem, ext := base, ""
	for _, e := range []string{".csv.gz", ".csv.zst", ".csv"} {
		if strings.HasSuffix(base, e) {
			stem, ext = strings.TrimSuffix(base, e), e
			break
		}
	}
	tag := strings.Trim(etag, `"`)
	tag = url.PathEscape(tag) // ETags are hex (and '-' for multipart); keep keys plain anyway
	fixed := len("."+tag+ext) + len(reasonSuffix)
	room := min(maxKeyPart-fixed, maxKey-fixed-len(prefix+dir))
	if len(stem) > room {
		sum := sha256.Sum256([]byte(stem))
		mark := "~" + hex.EncodeToString(sum[:8])
		cut := max(room-len(mark), 0)
		for cut > 0 && !utf8.RuneStart(stem[cut]) {
			cut--
		}
		stem = stem[:cut] + mark
	}
	return prefix + dir + stem + "." + tag + ext
}

// ReadAhead: how many objects of a batch the runner opens ahead of the loader (each a
// GET round trip that then overlaps the parsing and COPY of the one before; each holds a
// connection and what the socket buffers of its body until it is read).
func (s *Source) ReadAhead() int { return 4 }

// FinishBehind: how many committed batches may wait to be finished behind the workers.
// An archive is a server-side copy of every byte (a posix gateway writes the whole file
// again), several times a GET, so it runs off the workers' path.
func (s *Source) FinishBehind() int { return 4 }
