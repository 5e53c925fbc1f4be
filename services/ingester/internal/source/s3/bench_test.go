package s3

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// Benchmarks for the closing note: reading the bucket against reading a directory of
// the same files on the same disk, in the same run (compare the ns/op of the two
// sub-benchmarks: the ratio is the figure, not either number), and the time from PUT to
// the source handing the object out, with notifications and with listing only.
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/source/s3/

// benchFiles writes n files of rows CSV rows each to dir and to the bucket prefix in/.
func benchFiles(b *testing.B, e *env, dir string, n, rows int) []source.Item {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n")
	for i := range rows {
		fmt.Fprintf(&sb, "6f1c1b9e-3a4d-4d8e-9b1a-%012d,2026-12-01T10:00:00Z,view,%d,1b4e28ba-2fa1-11d2-883f-0016d3cca427,%d,electronics,19.99,1\n", i, i+1, i%500+1)
	}
	body := sb.String()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		name := fmt.Sprintf("f%04d.csv", i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := e.c.PutObject(context.Background(), bucket, "in/"+name, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	k := newSink()
	if _, err := e.source(b, "in/", nil).list(context.Background(), k); err != nil {
		b.Fatal(err)
	}
	return k.found
}

// BenchmarkRead: one pass over every file, each read whole through sha256 as the loader
// does, from the directory and from the bucket.
func BenchmarkRead(b *testing.B) {
	const files, rows = 100, 2000 // about 25 MB, files of the loadtest's larger size
	e := setup(b, false)
	dir := b.TempDir()
	items := benchFiles(b, e, dir, files, rows)
	s := e.source(b, "in/", nil)
	size := items[0].Size * int64(len(items))
	b.Run("directory", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			for _, it := range items {
				f, err := os.Open(filepath.Join(dir, filepath.Base(it.Name)))
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				if _, err := io.Copy(h, f); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		}
	})
	b.Run("bucket", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			for _, it := range items {
				r, _, err := s.Open(context.Background(), it)
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				if _, err := io.Copy(h, r); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		}
	})
}

// BenchmarkList: one full listing of 2000 objects (two pages) against reading the
// directory of the same 2000 files.
func BenchmarkList(b *testing.B) {
	e := setup(b, false)
	dir := b.TempDir()
	benchFiles(b, e, dir, 2000, 1)
	s := e.source(b, "in/", nil)
	b.Run("directory", func(b *testing.B) {
		for b.Loop() {
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) != 2000 {
				b.Fatal(len(ents), err)
			}
			for _, e := range ents {
				if _, err := e.Info(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("bucket", func(b *testing.B) {
		for b.Loop() {
			k := newSink()
			if _, err := s.list(context.Background(), k); err != nil || len(k.found) != 2000 {
				b.Fatal(len(k.found), err)
			}
		}
	})
}

// BenchmarkPutToFound: PUT one object after another, at about 100 objects/s (10,000
// rows/s in 100-row files), and measure the time from the PUT's return to the source's
// Found, by notification and by listing only (interval 1s). Reported: p50 and p99 in ms.
func BenchmarkPutToFound(b *testing.B) {
	for _, mode := range []string{"notifications", "listing-1s"} {
		b.Run(mode, func(b *testing.B) {
			e := setup(b, mode == "notifications")
			o := Options{Location: objstore.Location{Bucket: bucket, Prefix: "in/"}, ArchivePrefix: "archive/", FailedPrefix: "failed/",
				ListInterval: time.Second, Metrics: NewMetrics(nil)}
			if e.n != nil {
				o.NATSURL, o.NATSSubject = e.n.URL(), "s3.events"
			}
			s, err := New(e.c, o)
			if err != nil {
				b.Fatal(err)
			}
			k := &timedSink{at: map[string]time.Time{}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Discover(ctx, k) }()
			defer func() { cancel(); <-done }()
			time.Sleep(500 * time.Millisecond) // the subscription and the first listing
			body := strings.Repeat("x", 10_000)
			put := map[string]time.Time{}
			for i := 0; b.Loop(); i++ {
				key := fmt.Sprintf("in/p%06d.csv", i)
				if _, err := e.c.PutObject(ctx, bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
					b.Fatal(err)
				}
				put["s3://"+bucket+"/"+key] = time.Now()
				time.Sleep(10 * time.Millisecond)
			}
			deadline := time.Now().Add(time.Minute)
			for k.count() < len(put) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			var lat []float64
			k.mu.Lock()
			for name, t0 := range put {
				if t1, ok := k.at[name]; ok {
					lat = append(lat, float64(t1.Sub(t0).Microseconds())/1000)
				}
			}
			k.mu.Unlock()
			if len(lat) != len(put) {
				b.Fatalf("%d of %d objects found", len(lat), len(put))
			}
			sort.Float64s(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[(len(lat)*99)/100], "p99-ms")
		})
	}
}

// timedSink records when each name was first found.
type timedSink struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (k *timedSink) Found(it source.Item, _ bool) {
	k.mu.Lock()
	if _, ok := k.at[it.Name]; !ok {
		k.at[it.Name] = time.Now()
	}
	k.mu.Unlock()
}
func (k *timedSink) Removed(string)       {}
func (k *timedSink) Listed(time.Time)     {}
func (k *timedSink) Aside(string, string) {}
func (k *timedSink) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.at)
}

// BenchmarkFinish: what finishing one committed object costs, by action and size (100
// rows, about 12 kB, the latency runs' files; 2000 rows, about 250 kB, the drain's):
// archive is a conditional server-side copy (the gateway reads, hashes and writes every
// byte) then a conditional delete; delete is the delete alone. Beside them, reading the
// same object whole (a GET), the loader's part. Reported per object.
func BenchmarkFinish(b *testing.B) {
	e := setup(b, false)
	s := e.source(b, "in/", nil)
	for _, rows := range []int{100, 2000} {
		for _, act := range []string{"get", source.Archive.String(), source.Delete.String()} {
			b.Run(fmt.Sprintf("%s-%drows", act, rows), func(b *testing.B) {
				const n = 50
				var objs int
				for b.Loop() {
					b.StopTimer()
					items := benchFiles(b, e, b.TempDir(), n, rows)
					fs := make([]source.Finish, len(items))
					for i, it := range items {
						fs[i] = source.Finish{Item: it, Version: it.Version, Action: source.Delete}
						if act == source.Archive.String() {
							fs[i].Action = source.Archive
						}
					}
					b.StartTimer()
					if act == "get" {
						for _, it := range items {
							r, _, err := s.Open(context.Background(), it)
							if err != nil {
								b.Fatal(err)
							}
							io.Copy(io.Discard, r)
							r.Close()
						}
						b.StopTimer()
					}
					for _, err := range s.Finish(context.Background(), fs) {
						if err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					objs += n
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(objs), "ms/object")
			})
		}
	}
}

// BenchmarkGatewayCPU: the gateway's own CPU per request, by request, over 200 objects
// of 100 rows (about 12 kB): the part of an object's cost this machine's two cores pay
// outside the ingester. PUT is the producer's; GET, copy (the archive) and delete the
// ingester's. Reported: CPU ms of the gateway process per request.
func BenchmarkGatewayCPU(b *testing.B) {
	e := setup(b, false)
	s := e.source(b, "in/", nil)
	pid := gatewayPID(b, e.g.Endpoint())
	var body strings.Builder
	body.WriteString("event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n")
	for i := range 100 {
		fmt.Fprintf(&body, "6f1c1b9e-3a4d-4d8e-9b1a-%012d,2026-12-01T10:00:00Z,view,%d,1b4e28ba-2fa1-11d2-883f-0016d3cca427,%d,electronics,19.99,1\n", i, i+1, i%500+1)
	}
	const n = 200
	ctx := context.Background()
	cpu := map[string]float64{}
	for b.Loop() {
		c0 := procCPU(b, pid)
		for i := range n {
			if _, err := e.c.PutObject(ctx, bucket, fmt.Sprintf("in/g%04d.csv", i), strings.NewReader(body.String()), int64(body.Len()), minio.PutObjectOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		c1 := procCPU(b, pid)
		k := newSink()
		if _, err := s.list(ctx, k); err != nil || len(k.found) != n {
			b.Fatal(len(k.found), err)
		}
		c2 := procCPU(b, pid)
		for _, it := range k.found {
			r, _, err := s.Open(ctx, it)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r)
			r.Close()
		}
		c3 := procCPU(b, pid)
		for _, it := range k.found {
			key, _ := s.key(it.Name)
			if err := s.copy(ctx, key, it.ETag, s.aside("archive/", key, it.ETag)); err != nil {
				b.Fatal(err)
			}
		}
		c4 := procCPU(b, pid)
		fs := make([]source.Finish, len(k.found))
		for i, it := range k.found {
			fs[i] = source.Finish{Item: it, Version: it.Version, Action: source.Delete}
		}
		for _, err := range s.Finish(ctx, fs) {
			if err != nil {
				b.Fatal(err)
			}
		}
		c5 := procCPU(b, pid)
		cpu["put"] += c1 - c0
		cpu["list"] += c2 - c1
		cpu["get"] += c3 - c2
		cpu["copy"] += c4 - c3
		cpu["delete"] += c5 - c4
	}
	for op, sec := range cpu {
		b.ReportMetric(sec*1000/float64(n*b.N), op+"-cpu-ms/obj")
	}
}

// gatewayPID finds the gateway process listening at endpoint.
func gatewayPID(b *testing.B, endpoint string) int {
	port := endpoint[strings.LastIndex(endpoint, ":"):]
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(cmd), "versitygw") && strings.Contains(string(cmd), "127.0.0.1"+port+"\x00") {
			var pid int
			fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
			return pid
		}
	}
	b.Fatal("gateway process not found")
	return 0
}

// procCPU is a process's user and system CPU seconds so far (/proc/PID/stat, in clock
// ticks of 1/100 s).
func procCPU(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	var ut, stime float64
	fmt.Sscanf(f[11], "%g", &ut)
	fmt.Sscanf(f[12], "%g", &stime)
	return (ut + stime) / 100
}
