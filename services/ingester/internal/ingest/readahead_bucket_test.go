package ingest

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

// getCounting is a bucket source that counts its GETs per object.
type getCounting struct {
	*s3.Source
	mu   sync.Mutex
	gets map[string]int
}

func (g *getCounting) Open(ctx context.Context, it source.Item) (io.ReadCloser, source.Version, error) {
	g.mu.Lock()
	g.gets[it.Name]++
	g.mu.Unlock()
	return g.Source.Open(ctx, it)
}

// listOnce is what the first listing of src puts in a queue, oldest first.
func listOnce(t *testing.T, src source.Source) []source.Item {
	t.Helper()
	q := queue.New(src, 0)
	r := New(Options{}, zerolog.Nop(), src, q, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Discover(ctx, &sink{Queue: q, r: r}) }()
	select {
	case <-r.listed:
	case err := <-errc:
		t.Fatalf("listing: %v", err)
	}
	cancel()
	<-errc
	return q.Take(100, 1<<40)
}

// Objects of a batch that another replica holds are never read here: reading ahead
// opens only what the claim took, each once (without it, every object after the first
// one claimed was read ahead, those another replica loads included).
func TestReadAheadReadsOnlyTheObjectsTheClaimTook(t *testing.T) {
	b := newBucketRig(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		b.put(t, "in/"+k+".csv", csvBody("books", "toys"))
	}
	src := &getCounting{Source: b.source(t), gets: map[string]int{}}
	items := listOnce(t, src)
	if len(items) != 5 {
		t.Fatalf("listed %d objects, want 5", len(items))
	}
	// Another replica loads b and c now: its session holds their claims.
	ctx := context.Background()
	other, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	held := map[string]bool{}
	for _, it := range items {
		if it.Name == s3Name(items, "b") || it.Name == s3Name(items, "c") {
			held[it.Name] = true
			if _, err := other.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended('ecomstream.file:' || $1, 0))", it.Name); err != nil {
				t.Fatal(err)
			}
		}
	}

	l := &load.Loader{Pool: b.pool, Instance: "t", MaxRejected: 100}
	ra := newReadAhead(ctx, src, items, src.ReadAhead())
	o := l.Load(ctx, ra, items)
	ra.close()
	if o.Verdict != load.Done {
		t.Fatalf("load: %s %v", o.Verdict, o.Err)
	}
	o.Claim.Release()
	for _, f := range o.Batch.Files {
		want, gets := load.OutcomeIngested, 1
		if held[f.File.Name] {
			want, gets = load.OutcomeLocked, 0
		}
		if f.Outcome != want {
			t.Errorf("%s: outcome %s, want %s", f.File.Name, f.Outcome, want)
		}
		if n := src.gets[f.File.Name]; n != gets {
			t.Errorf("%s (%s): %d GETs, want %d", f.File.Name, f.Outcome, n, gets)
		}
	}
}

// s3Name is the name of the listed object whose key ends in /k.csv.
func s3Name(items []source.Item, k string) string {
	for _, it := range items {
		if len(it.Name) > len(k)+5 && it.Name[len(it.Name)-len(k)-5:] == "/"+k+".csv" {
			return it.Name
		}
	}
	return ""
}
