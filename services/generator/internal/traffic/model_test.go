package traffic

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
)

func sample(t *testing.T, n int) (types map[string]int, views []int, m *Model, events []event.Event) {
	t.Helper()
	m = New(rand.New(rand.NewPCG(1, 2)), DefaultParams())
	now := time.Now()
	types = map[string]int{}
	views = make([]int, len(m.Catalogue().Products)+1)
	events = make([]event.Event, n)
	for i := range events {
		e := &events[i]
		m.Next(e, now)
		types[e.EventType]++
		if e.EventType == event.View {
			views[e.ProductID]++
		}
	}
	return types, views, m, events
}

func TestFunnelRatios(t *testing.T) {
	const n = 200_000
	types, _, _, _ := sample(t, n)
	share := func(typ string) float64 { return float64(types[typ]) / n }
	t.Logf("view %.3f add %.3f remove %.3f purchase %.3f",
		share(event.View), share(event.AddToCart), share(event.RemoveFromCart), share(event.Purchase))
	within := func(typ string, lo, hi float64) {
		if s := share(typ); s < lo || s > hi {
			t.Errorf("%s share %.3f, want %.2f-%.2f", typ, s, lo, hi)
		}
	}
	within(event.View, 0.60, 0.72)
	within(event.AddToCart, 0.15, 0.25)
	within(event.RemoveFromCart, 0.03, 0.10)
	within(event.Purchase, 0.02, 0.10)
	// A funnel narrows: fewer purchases than adds, fewer adds than views.
	if !(types[event.View] > types[event.AddToCart] && types[event.AddToCart] > types[event.Purchase]) {
		t.Errorf("not a funnel: %v", types)
	}
}

func TestProductSkew(t *testing.T) {
	_, views, m, _ := sample(t, 200_000)
	counts := slices.Clone(views[1:])
	slices.Sort(counts)
	slices.Reverse(counts)
	total := 0
	for _, c := range counts {
		total += c
	}
	top := 0
	for _, c := range counts[:len(counts)/100] {
		top += c
	}
	median := counts[len(counts)/2]
	t.Logf("top 1%% of %d products: %.1f%% of views; hottest %d, median %d views",
		len(m.Catalogue().Products), 100*float64(top)/float64(total), counts[0], median)
	if share := float64(top) / float64(total); share < 0.2 || share > 0.7 {
		t.Errorf("top 1%% of products get %.2f of views, want a few hot products (0.2-0.7)", share)
	}
	if counts[0] < 50*max(median, 1) {
		t.Errorf("hottest product %d views vs median %d: not skewed", counts[0], median)
	}
	if median == 0 {
		t.Errorf("half the catalogue never viewed in 200k events: too skewed")
	}
}

func TestEventsAreValidAndConsistent(t *testing.T) {
	_, _, m, events := sample(t, 50_000)
	now := time.Now()
	ids := map[[16]byte]bool{}
	prices := map[int64]int64{}
	sessionUser := map[[16]byte]int64{}
	for i := range events {
		e := &events[i]
		if ids[e.EventID] {
			t.Fatalf("event_id repeated at %d", i)
		}
		ids[e.EventID] = true
		if e.EventID[6]>>4 != 4 || e.EventID[8]>>6 != 2 {
			t.Fatalf("event_id %x is not a v4 UUID", e.EventID)
		}
		if e.EventTime.After(now) || now.Sub(e.EventTime) > 3*time.Second+time.Since(now) {
			t.Fatalf("event_time %v not close to now %v", e.EventTime, now)
		}
		if e.UserID < 1 || e.UserID > 100_000 || e.ProductID < 1 || e.ProductID > 5_000 {
			t.Fatalf("ids out of range: %+v", e)
		}
		p := m.Catalogue().Products[e.ProductID-1]
		if e.Category != p.Category || e.PriceCents != p.PriceCents {
			t.Fatalf("event %+v disagrees with its product %+v", e, p)
		}
		if old, ok := prices[e.ProductID]; ok && old != e.PriceCents {
			t.Fatalf("product %d has two prices", e.ProductID)
		}
		prices[e.ProductID] = e.PriceCents
		if u, ok := sessionUser[e.SessionID]; ok && u != e.UserID {
			t.Fatalf("session %x belongs to two users", e.SessionID)
		}
		sessionUser[e.SessionID] = e.UserID
		if e.Quantity < 1 || (e.EventType == event.View && e.Quantity != 1) {
			t.Fatalf("bad quantity %+v", e)
		}
	}
	if len(sessionUser) < 1000 {
		t.Errorf("only %d sessions in 50k events", len(sessionUser))
	}
}

func TestCatalogue(t *testing.T) {
	c := NewCatalogue(rand.New(rand.NewPCG(3, 4)), 5_000)
	seen := map[string]int{}
	for i, p := range c.Products {
		if p.ID != int64(i+1) || p.PriceCents <= 0 || p.PriceCents > event.MaxPriceCents {
			t.Fatalf("bad product %+v", p)
		}
		seen[p.Category]++
	}
	if len(seen) != len(Categories()) {
		t.Errorf("%d categories used, want %d", len(seen), len(Categories()))
	}
}

func TestSeedReproduces(t *testing.T) {
	now := time.Now()
	a := New(rand.New(rand.NewPCG(7, 7)), DefaultParams())
	b := New(rand.New(rand.NewPCG(7, 7)), DefaultParams())
	var ea, eb event.Event
	for i := 0; i < 1000; i++ {
		a.Next(&ea, now)
		b.Next(&eb, now)
		if ea != eb {
			t.Fatalf("same seed, different event %d", i)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	m := New(rand.New(rand.NewPCG(1, 2)), DefaultParams())
	now := time.Now()
	var e event.Event
	b.ReportAllocs()
	for b.Loop() {
		m.Next(&e, now)
	}
}
