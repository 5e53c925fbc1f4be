package ingest

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

// profiled is a bucket source that sums the time spent in Open (a GET's round trip), in
// reading bodies and in Finish; plain hides the source's ReadAhead and FinishBehind, so
// the runner reads and finishes on the workers as it did before them.
type profiled struct {
	s                                  *s3.Source
	openNs, readNs, finishNs, finishes atomic.Int64
	t0                                 time.Time
	listedNs                           atomic.Int64 // from t0 to the end of the first listing
}

type listedSink struct {
	source.Sink
	p *profiled
}

func (k listedSink) Listed(began time.Time) {
	k.p.listedNs.CompareAndSwap(0, int64(time.Since(k.p.t0)))
	k.Sink.Listed(began)
}

func (p *profiled) String() string { return p.s.String() }
func (p *profiled) Discover(ctx context.Context, sink source.Sink) error {
	return p.s.Discover(ctx, listedSink{Sink: sink, p: p})
}
func (p *profiled) Settled(ctx context.Context, it source.Item) (source.Item, bool) {
	return p.s.Settled(ctx, it)
}
func (p *profiled) Open(ctx context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	t0 := time.Now()
	r, v, err := p.s.Open(ctx, it)
	p.openNs.Add(int64(time.Since(t0)))
	if err != nil {
		return r, v, err
	}
	return &timedReader{ReadCloser: r, ns: &p.readNs}, v, nil
}
func (p *profiled) Finish(ctx context.Context, fs []source.Finish) []error {
	t0 := time.Now()
	defer func() { p.finishNs.Add(int64(time.Since(t0))); p.finishes.Add(int64(len(fs))) }()
	return p.s.Finish(ctx, fs)
}

type timedReader struct {
	io.ReadCloser
	ns *atomic.Int64
}

func (r *timedReader) Read(b []byte) (int, error) {
	t0 := time.Now()
	n, err := r.ReadCloser.Read(b)
	r.ns.Add(int64(time.Since(t0)))
	return n, err
}

// with ReadAhead and FinishBehind as the bucket source has them.
type tuned struct{ *profiled }

func (t tuned) ReadAhead() int    { return t.s.ReadAhead() }
func (t tuned) FinishBehind() int { return t.s.FinishBehind() }

// BenchmarkBucketBurst: what one listing's burst costs (100 objects of 100 rows, as a 1 s
// listing finds them at 10,000 rows/s), from the runner's start to the last commit, with
// where the time goes (summed over the workers and finishers, so it may exceed the
// burst): the GETs' round trips, the body reads, and the finishes; on the workers
// (inline: as before) and behind them with reading ahead (behind: now); and the CPU of
// this process (the runner, the client side of every request) per object. Compare the two sub-benchmarks of one run.
//
//	go test -run '^$' -bench BucketBurst -benchtime 3x ./internal/ingest/
func BenchmarkBucketBurst(b *testing.B) {
	for _, mode := range []string{"inline", "behind"} {
		b.Run(mode, func(b *testing.B) {
			var burst, listed, open, read, finish time.Duration
			var cpu float64
			for range b.N {

				rig := newBucketRig(b)
				for k := range 100 {
					rig.put(b, fmt.Sprintf("in/f%04d.csv", k), csvBody(make100()...))
				}
				p := &profiled{s: rig.source(b)}
				var src source.Source = p
				if mode == "behind" {
					src = tuned{p}
				}

				t0, cpu0 := time.Now(), cpuSeconds()
				p.t0 = t0
				_, stop := rig.run(b, src, Options{MaxBatchRecords: 20000, MaxBatchFiles: 500, Workers: 2, Grace: 20 * time.Second})
				waitLedger(b, rig.pool, 100)
				burst += time.Since(t0)
				stop() // the finishes behind the workers are part of the CPU
				cpu += cpuSeconds() - cpu0

				stop()
				listed += time.Duration(p.listedNs.Load())
				open += time.Duration(p.openNs.Load())
				read += time.Duration(p.readNs.Load())
				finish += time.Duration(p.finishNs.Load())
			}
			n := float64(b.N)
			b.ReportMetric(burst.Seconds()*1000/n, "burst-ms")
			b.ReportMetric(listed.Seconds()*1000/n, "listed-ms")
			b.ReportMetric(open.Seconds()*1000/n, "open-ms")
			b.ReportMetric(read.Seconds()*1000/n, "read-ms")
			b.ReportMetric(finish.Seconds()*1000/n, "finish-ms")
			b.ReportMetric(cpu*1000/n/100, "cpu-ms/object")
		})
	}
}

func make100() []string {
	c := make([]string, 100)
	for i := range c {
		c[i] = "books"
	}
	return c
}
