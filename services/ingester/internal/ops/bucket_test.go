package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/common/s3test"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	s3source "github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

const testBucket = "ecom"

type bucketFixture struct {
	*fixture
	g   *s3test.Gateway
	c   *minio.Client
	loc objstore.Location
}

// newBucketFixture gives a test a migrated database, a real S3 gateway with one bucket,
// and an env whose store is that bucket at src (s3://ecom/PREFIX), built from the AWS
// variables as `ingester` builds it.
func newBucketFixture(t *testing.T, src string) *bucketFixture {
	t.Helper()
	f := newFixture(t)
	g := s3test.StartGateway(t, s3test.Options{}, testBucket)
	g.SetEnv(t)
	f.e.s.Source, f.e.s.S3ArchivePrefix, f.e.s.S3FailedPrefix = src, "archive/", "failed/"
	b, err := newBucketStore(f.e.s)
	if err != nil {
		t.Fatal(err)
	}
	f.e.store = b
	return &bucketFixture{fixture: f, g: g, c: b.c, loc: b.loc}
}

func (f *bucketFixture) put(t *testing.T, key, body string) string {
	t.Helper()
	info, err := f.c.PutObject(context.Background(), testBucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info.ETag
}

// age sets an object's Last-Modified through the gateway's posix backend (the file's mtime).
func (f *bucketFixture) age(t *testing.T, key string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(f.g.Root, testBucket, key), at, at); err != nil {
		t.Fatal(err)
	}
}

// objects is every key of the bucket with its bytes.
func (f *bucketFixture) objects(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for o := range f.c.ListObjects(context.Background(), testBucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		obj, err := f.c.GetObject(context.Background(), testBucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(obj); err != nil {
			t.Fatal(err)
		}
		obj.Close()
		out[o.Key] = b.String()
	}
	return out
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// fail puts key and has the ingester's own s3 source move it aside as rejected (its
// Finish), which writes failed/<stem>.<etag><ext> and its .reason.txt; it returns the
// failed object's name below failed/.
func (f *bucketFixture) fail(t *testing.T, key, body, reason string) string {
	t.Helper()
	etag := f.put(t, key, body)
	src, err := s3source.New(f.c, s3source.Options{Location: f.loc, ArchivePrefix: "archive/", FailedPrefix: "failed/",
		ListInterval: time.Hour, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	it := source.Item{Name: f.loc.URL(key), Version: source.Version{ETag: etag}}
	if err := src.Finish(context.Background(), []source.Finish{{Item: it, Version: it.Version, Action: source.Fail, Reason: reason}})[0]; err != nil {
		t.Fatal(err)
	}
	aside := s3source.AsideKey(f.loc, "failed/", key, etag)
	if _, ok := f.objects(t)[aside+reasonSuffix]; !ok {
		t.Fatalf("Finish wrote no %s%s: %v", aside, reasonSuffix, keysOf(f.objects(t)))
	}
	return strings.TrimPrefix(aside, "failed/")
}

func gzipped(t *testing.T, s string) string { return compressed(t, compress.Gzip, s) }

func compressed(t *testing.T, codec, s string) string {
	t.Helper()
	var b bytes.Buffer
	w, err := compress.Writer(codec, &b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// failedJSON runs `failed --json` with flags and reads what it printed.
func (f *fixture) failedJSON(t *testing.T, flags failedFlags) []FailedFile {
	t.Helper()
	f.out.Reset()
	flags.JSON = true
	if err := runFailed(context.Background(), f.e, &flags, nil); err != nil {
		t.Fatal(err)
	}
	var files []FailedFile
	if err := json.Unmarshal(f.out.Bytes(), &files); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	return files
}

// statusJSON runs `status --json` and reads what it printed.
func (f *fixture) statusJSON(t *testing.T) Status {
	t.Helper()
	f.out.Reset()
	if err := runStatus(context.Background(), f.e, &statusFlags{JSON: true, Replicas: 24 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(f.out.Bytes(), &st); err != nil {
		t.Fatalf("%v\n%s", err, f.out)
	}
	return st
}

func TestBucketStatusCountsWhatTheSourceWouldTakeNotTheArchiveOrFailedPrefixesAndAgesTheOldest(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/") // an empty prefix: the archive and failed prefixes lie inside it
	now := f.e.now()
	f.put(t, "a.csv", "12345")
	f.age(t, "a.csv", now.Add(-90*time.Second))
	f.put(t, "sub/b.csv.gz", "123")
	f.age(t, "sub/b.csv.gz", now.Add(-10*time.Second))
	f.put(t, "c.csv.zst", "12")
	f.age(t, "c.csv.zst", now.Add(-20*time.Second))
	f.put(t, "notes.txt", "not input")
	f.put(t, ".d.csv", "a dotfile")
	f.put(t, "archive/old.0123.csv", "archived")
	f.fail(t, "bad.csv", "bad", "not_csv: no header")
	f.put(t, "failed/.tmp.csv", "not a failed file")
	st := f.statusJSON(t)
	b := st.Backlog
	if b.Dir != "s3://ecom/" || b.Files != 3 || b.Bytes != 10 || b.OldestFile != "a.csv" || b.OldestAgeSeconds != 90 {
		t.Errorf("backlog %+v, want 3 objects of s3://ecom/, 10 bytes, oldest a.csv 90 s old", b)
	}
	if st.FailedDir != "s3://ecom/failed/" || st.FailedDirFiles != 1 {
		t.Errorf("failed %q %d, want s3://ecom/failed/ holding 1 object (not its reason, not a dotfile)", st.FailedDir, st.FailedDirFiles)
	}
	f.out.Reset()
	if err := runStatus(context.Background(), f.e, &statusFlags{Replicas: 24 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	if text := f.out.String(); !strings.Contains(text, "3 files, 10 B waiting in s3://ecom/; oldest 1m30s (a.csv)") ||
		!strings.Contains(text, "1 file in s3://ecom/failed/: see `ingester failed`") {
		t.Errorf("status text:\n%s", text)
	}
}

func TestBucketFailedShowsTheSourcesFailedObjectWithItsReasonItsLedgerRowAndItsFirstLinesDecompressed(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in")
	body := "event_id,event_time\n\x1b[31mred\x1b[0m,2\n3,4\n5,6\n"
	zipped := gzipped(t, body)
	name := f.fail(t, "in/shop-1.csv.gz", zipped, "missing_columns: required columns missing from the header: [price]")
	// The ledger's row of that failure (no line-0 row: the reason comes from the object).
	f.commit(t, "s3://ecom/in/shop-1.csv.gz", sum(zipped), "failed", "ing-a", 0, 0, 0)
	// Another object failed the same way but the ledger holds nothing of it.
	other := f.fail(t, "in/other.csv", "x,y\n", "retries_exhausted: read: connection reset")
	// A large zstd object (its first lines come from a ranged read of its beginning) and
	// a corrupt gzip one (no lines, no error: its reason says why).
	var big strings.Builder
	big.WriteString("a,b\n")
	for i := range 20000 { // hashes: about 1.4 MB that zstd cannot shrink below the range read
		fmt.Fprintf(&big, "%d,%s\n", i, sum(strconv.Itoa(i)))
	}
	zbody := compressed(t, compress.Zstd, big.String())
	if len(zbody) <= maxHeadCompressed {
		t.Fatalf("the zstd object is %d bytes, not more than the range read", len(zbody))
	}
	zst := f.fail(t, "in/big.csv.zst", zbody, "retries_exhausted: x")
	corrupt := f.fail(t, "in/corrupt.csv.gz", "not gzip at all", "corrupt_compressed: gzip: invalid header")
	f.e.now = time.Now // the objects' times are the gateway's

	files := f.failedJSON(t, failedFlags{Since: time.Hour, Limit: 20, Lines: 2})
	got := map[string]FailedFile{}
	for _, ff := range files {
		got[ff.Name] = ff
	}
	ff, ok := got[name]
	if !ok || ff.LedgerName != "s3://ecom/in/shop-1.csv.gz" || ff.Instance != "ing-a" || ff.Reason != "missing_columns" ||
		ff.Message != "required columns missing from the header: [price]" || ff.LinesFrom != "file" || len(ff.Lines) != 2 ||
		ff.Lines[0].Text != "event_id,event_time" || ff.Lines[1].Text != `\x1B[31mred\x1B[0m,2` {
		t.Errorf("%s: %+v; want it paired with its ledger row, its reason from the reason object, its first 2 lines decompressed and escaped (all: %+v)", name, ff, files)
	}
	if z := got[zst]; len(z.Lines) != 2 || z.Lines[0].Text != "a,b" || z.Lines[1].Text != "0,"+sum("0") {
		t.Errorf("%s: lines %+v, want its first 2", zst, z.Lines)
	}
	if c, ok := got[corrupt]; !ok || len(c.Lines) != 0 || c.Reason != "corrupt_compressed" {
		t.Errorf("%s: %+v, want no lines and its reason", corrupt, c)
	}
	if o, ok := got[other]; !ok || o.LedgerName != "" || o.Reason != "retries_exhausted" || o.Lines[0].Text != "x,y" {
		t.Errorf("%s, in the bucket only: %+v", other, o)
	}
	f.out.Reset()
	if err := runFailed(context.Background(), f.e, &failedFlags{Since: time.Hour, Limit: 20, Lines: 2}, nil); err != nil {
		t.Fatal(err)
	}
	text := f.out.String()
	for _, want := range []string{name + "  failed", "ingested as  s3://ecom/in/shop-1.csv.gz", "in s3://ecom/failed/ only (no ledger row)",
		"ingester retry " + name} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestBucketRetryPutsTheFailedBytesBackUnderANewNameAndNeverOverwritesAnObjectThere(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in/")
	name := f.fail(t, "in/x.csv", "fixed bytes\n", "not_csv: x")
	f.commit(t, "s3://ecom/in/x.csv", sum("fixed bytes\n"), "failed", "ing-a", time.Minute, 0, 0)
	// x.retry1.csv is taken by other bytes that no listing of the ledger knows: the
	// conditional PUT must refuse to replace them.
	f.put(t, "in/x.retry1.csv", "someone else's bytes\n")
	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.out.String(), "is back in s3://ecom/in/ as x.retry2.csv") {
		t.Errorf("output: %s", f.out)
	}
	objs := f.objects(t)
	if objs["in/x.retry2.csv"] != "fixed bytes\n" || objs["in/x.retry1.csv"] != "someone else's bytes\n" || len(objs) != 2 {
		t.Errorf("bucket %v: want x.retry2.csv with the failed bytes, x.retry1.csv untouched, the failed object and its reason gone", objs)
	}
	f.out.Reset()
	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err == nil || !strings.Contains(err.Error(), "not a failed file") {
		t.Errorf("a second retry: %v, want not a failed file", err)
	}
}

func TestBucketRetryRefusesAnythingButAFailedObjectAndChangesNothing(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in/")
	name := f.fail(t, "in/ok.csv", "ok\n", "not_csv: ok")
	f.put(t, "failed/sub/deep.csv", "in a sub-folder")
	f.put(t, "failed/data.bin", "not a csv")
	f.put(t, "in/pending.csv", "pending")
	before := f.objects(t)
	for _, tc := range []struct {
		name  string
		usage bool
		want  string
	}{
		{"unknown.csv", false, "not a failed file: there is no such object in s3://ecom/failed/"},
		{"sub/deep.csv", true, "not a path"},
		{"../in/pending.csv", true, "not a path"},
		{"..", true, "NAME must be"},
		{name + reasonSuffix, true, "reason file"},
		{".ok.csv", true, "dotfile"},
		{"pending.csv", false, "not a failed file"},
		{"data.bin", false, "does not take objects named like it"},
	} {
		err := runRetry(context.Background(), f.e, &retryFlags{}, []string{tc.name})
		_, isUsage := err.(*usageError)
		if err == nil || isUsage != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("retry %q: %v (usage error %v); want a refusal saying %q", tc.name, err, isUsage, tc.want)
		}
	}
	if after := f.objects(t); strings.Join(keysOf(after), " ") != strings.Join(keysOf(before), " ") {
		t.Errorf("refused retries changed the bucket:\nbefore %v\nafter  %v", keysOf(before), keysOf(after))
	}
}

func TestBucketRetryInterruptedAfterThePutIsFinishedByASecondRunWithoutASecondCopy(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in/")
	// Placed and still pending: the earlier retry stopped before x left the failed prefix.
	x := f.fail(t, "in/x.csv", "same bytes\n", "not_csv: x")
	f.put(t, "in/x.retry1.csv", "same bytes\n")
	// Placed and already committed (and archived): only the ledger knows.
	y := f.fail(t, "in/y.csv", "y bytes\n", "not_csv: y")
	f.commit(t, "s3://ecom/in/y.retry1.csv", sum("y bytes\n"), "ingested", "ing-a", time.Minute, 1, 0)
	// Placed, then the reason removed, then stopped before the object's delete.
	z := f.fail(t, "in/z.csv", "z bytes\n", "not_csv: z")
	f.put(t, "in/z.retry1.csv", "z bytes\n")
	if err := f.c.RemoveObject(context.Background(), testBucket, "failed/"+z+reasonSuffix, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// A real retry stopped right after its PUT (its context cancelled, as by Ctrl-C).
	w := f.fail(t, "in/w.csv", "w bytes\n", "not_csv: w")
	ctx, cancel := context.WithCancel(context.Background())
	b := f.e.store.(*bucketStore)
	b.afterPut = cancel
	if err := runRetry(ctx, f.e, &retryFlags{}, []string{w}); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("retry stopped after its PUT: %v, want interrupted", err)
	}
	b.afterPut = nil
	if objs := f.objects(t); objs["in/w.retry1.csv"] != "w bytes\n" || objs["failed/"+w] != "w bytes\n" {
		t.Fatalf("after the stop %v: want the copy placed and the failed object still there", keysOf(objs))
	}
	for name, placed := range map[string]string{w: "w.retry1.csv", x: "x.retry1.csv", y: "y.retry1.csv", z: "z.retry1.csv"} {
		f.out.Reset()
		if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.out.String(), "had already been put back as "+placed) {
			t.Errorf("retry %s: %q; want it finished as %s", name, f.out, placed)
		}
	}
	if got := keysOf(f.objects(t)); strings.Join(got, " ") != "in/w.retry1.csv in/x.retry1.csv in/z.retry1.csv" {
		t.Errorf("bucket %v: want only the first retries' copies, no second copy, nothing left in failed/", got)
	}
}

func TestBucketFailedAndRetryTakeKeysWithSpacesPlusPercentAndUnicodeAsTheyAre(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in/")
	for _, key := range []string{"in/a b.csv", "in/a+b.csv", "in/a%20b.csv", "in/été 東京.csv.gz", "in/a%2Fb.csv"} {
		name := f.fail(t, key, "bytes of "+key+"\n", "not_csv: x")
		f.e.now = time.Now
		var listed bool
		for _, ff := range f.failedJSON(t, failedFlags{Since: time.Hour, Limit: 20}) {
			listed = listed || ff.Name == name
		}
		if !listed {
			t.Errorf("%q: failed does not list %q", key, name)
		}
		f.out.Reset()
		if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err != nil {
			t.Fatalf("retry %q: %v", name, err)
		}
		stem, ext := splitName(strings.TrimPrefix(key, "in/"))
		want := "in/" + stem + ".retry1" + ext
		objs := f.objects(t)
		if objs[want] != "bytes of "+key+"\n" {
			t.Errorf("retry of %q: bucket %v, want %q with its bytes", key, keysOf(objs), want)
		}
		if _, ok := objs["failed/"+name]; ok {
			t.Errorf("retry of %q left failed/%s", key, name)
		}
		if !f.loc.Takes("archive/", "failed/", want) {
			t.Errorf("the source would not take %q", want)
		}
	}
}

func TestBucketRetryOfAnObjectWhoseNameTheSourceShortenedPutsItBackUnderAKeyTheSourceTakes(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in/")
	key := "in/" + strings.Repeat("é", 120) + ".csv" // 240 bytes of stem: cut to fit failed/ and .reason.txt
	name := f.fail(t, key, "long bytes\n", "not_csv: x")
	if strings.Contains(name, strings.Repeat("é", 120)) {
		t.Fatalf("the source kept the whole stem: %s", name)
	}
	f.e.now = time.Now
	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err != nil {
		t.Fatalf("retry %q: %v", name, err)
	}
	var placed []string
	for k, v := range f.objects(t) {
		if strings.HasPrefix(k, "failed/") {
			t.Errorf("left in failed/: %s", k)
		}
		if v == "long bytes\n" && f.loc.Takes("archive/", "failed/", k) {
			placed = append(placed, k)
		}
	}
	if len(placed) != 1 || !strings.Contains(placed[0], ".retry1.csv") {
		t.Errorf("placed %v, want one retry1 copy the source takes", placed)
	}
}

// Looking whether a retry name is used aside reads one key of a listing that has more
// pages; the listing's goroutine ends with it instead of waiting forever to hand over
// the next page (one leaked per candidate name, in a command that may try many).
func TestBucketRetryNameLookLeavesNoListingRunning(t *testing.T) {
	f := newBucketFixture(t, "s3://ecom/in/")
	for i := range 4 {
		f.put(t, fmt.Sprintf("archive/x.retry1.%d.csv", i), "archived")
	}
	b := f.e.store.(*bucketStore)
	used, err := b.asideUsed(context.Background(), "x.retry1.")
	if err != nil || !used {
		t.Fatalf("asideUsed: %v, %v; want used", used, err)
	}
	// The bound only ends a test that would otherwise hang; the goroutine ends at once.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "minio-go/v7.(*Client).ListObjects") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a listing is still running:\n%s", stacks)
		}
	}
}

// The operator's commands run in the ingester's container, with its account of compose's
// s3 profile (deploy/versitygw/bucket-policy.json): status, failed and retry need nothing
// that account is not given.
func TestBucketCommandsWorkWithTheIngestersOwnAccount(t *testing.T) {
	f := newFixture(t)
	g := s3test.StartGateway(t, s3test.Options{IAM: true})
	g.Restrict(t, testBucket)
	for _, kv := range g.EnvAs(s3test.Accounts["ingester"]) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	f.e.s.Source, f.e.s.S3ArchivePrefix, f.e.s.S3FailedPrefix = "s3://ecom/incoming/", "archive/", "failed/"
	b, err := newBucketStore(f.e.s)
	if err != nil {
		t.Fatal(err)
	}
	f.e.store = b
	bf := &bucketFixture{fixture: f, g: g, c: b.c, loc: b.loc}
	name := bf.fail(t, "incoming/x.csv", "fixed bytes\n", "not_csv: x")
	bf.commit(t, "s3://ecom/incoming/x.csv", sum("fixed bytes\n"), "failed", "ing-a", time.Minute, 0, 0)
	if st := bf.statusJSON(t); st.FailedDirFiles != 1 {
		t.Errorf("status: %+v", st)
	}
	if files := bf.failedJSON(t, failedFlags{Since: time.Hour, Limit: 20, Lines: 2}); len(files) != 1 || files[0].Reason != "not_csv" {
		t.Errorf("failed: %+v", files)
	}
	if err := runRetry(context.Background(), f.e, &retryFlags{}, []string{name}); err != nil {
		t.Fatal(err)
	}
	if objs := bf.objects(t); objs["incoming/x.retry1.csv"] != "fixed bytes\n" || len(objs) != 1 {
		t.Errorf("bucket %v: want incoming/x.retry1.csv alone", objs)
	}
}
