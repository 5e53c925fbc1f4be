package traffic

import (
	"math/rand/v2"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// Params shape the shop. The zero value is not useful; start from DefaultParams.
type Params struct {
	Users    int // size of the user base
	Products int // size of the catalogue
	// Sessions is how many shopping sessions are open at once; events of concurrent
	// sessions interleave as they would in a real shop's log.
	Sessions int
	// ProductSkew and UserSkew are the Zipf exponents of product and user popularity
	// (> 1; larger is more skewed).
	ProductSkew float64
	UserSkew    float64
	// MeanSessionSteps is the mean number of browsing steps (views, adds, removes) of a
	// session before it ends.
	MeanSessionSteps float64
	// AddRate is the chance that the step after a view puts the viewed product in the
	// cart; RemoveRate the chance that a step takes an item out of a non-empty cart.
	AddRate    float64
	RemoveRate float64
	// BuyRate is the chance that a session ending with a non-empty cart checks out.
	BuyRate float64
	// MaxJitter bounds how far before "now" an event_time may lie (client clocks and
	// buffering); event times are never in the future.
	MaxJitter time.Duration
}

// DefaultParams is a mid-sized shop: 100k users, 5k products in 20 categories, a few
// hot products, roughly 2/3 views and a few % purchases.
func DefaultParams() Params {
	return Params{
		Users:            100_000,
		Products:         5_000,
		Sessions:         512,
		ProductSkew:      1.1,
		UserSkew:         1.2,
		MeanSessionSteps: 12,
		AddRate:          0.3,
		RemoveRate:       0.1,
		BuyRate:          0.35,
		MaxJitter:        2 * time.Second,
	}
}

const maxCart = 8

type cartItem struct {
	product  *Product
	quantity int32
}

type session struct {
	id       [16]byte
	user     int64
	steps    int // browsing steps left
	viewed   *Product
	cart     [maxCart]cartItem
	ncart    int
	checkout int // >= 0: index of the next cart item to purchase; -1: browsing
}

// Model produces the event stream of a shop. It is not safe for concurrent use.
type Model struct {
	p        Params
	rng      *rand.Rand
	cat      *Catalogue
	products *rand.Zipf
	users    *rand.Zipf
	sessions []session
}

// New builds a shop from p, drawing everything from rng (so a seed reproduces it).
func New(rng *rand.Rand, p Params) *Model {
	m := &Model{
		p:        p,
		rng:      rng,
		cat:      NewCatalogue(rng, p.Products),
		products: rand.NewZipf(rng, p.ProductSkew, 8, uint64(p.Products-1)),
		// v flattens the head: the most active users are active, not the whole shop.
		users:    rand.NewZipf(rng, p.UserSkew, 50, uint64(p.Users-1)),
		sessions: make([]session, p.Sessions),
	}
	for i := range m.sessions {
		m.start(&m.sessions[i])
	}
	return m
}

// Catalogue returns the shop's products.
func (m *Model) Catalogue() *Catalogue { return m.cat }

// UUID returns a random (version 4) UUID from the model's generator: fast, and
// reproducible under a seed.
func (m *Model) UUID() [16]byte { return UUID(m.rng) }

// UUID returns a version 4 UUID drawn from rng.
func UUID(rng *rand.Rand) [16]byte {
	var u [16]byte
	a, b := rng.Uint64(), rng.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

func (m *Model) start(s *session) {
	s.id = m.UUID()
	s.user = int64(m.users.Uint64()) + 1
	// Geometric number of steps, at least one (a session opens with a view).
	s.steps = 1
	stop := 1 / m.p.MeanSessionSteps
	for m.rng.Float64() >= stop && s.steps < 200 {
		s.steps++
	}
	s.viewed = nil
	s.ncart = 0
	s.checkout = -1
}

// Next fills e with the next event of the shop, timed shortly before now.
func (m *Model) Next(e *event.Event, now time.Time) {
	s := &m.sessions[m.rng.IntN(len(m.sessions))]
	e.EventID = m.UUID()
	e.SessionID = s.id
	e.UserID = s.user
	jitter := time.Duration(m.rng.Int64N(int64(m.p.MaxJitter) + 1))
	e.EventTime = now.Add(-jitter).UTC().Truncate(time.Microsecond)

	if s.checkout >= 0 {
		it := &s.cart[s.checkout]
		m.fill(e, event.Purchase, it.product, it.quantity)
		s.checkout++
		if s.checkout == s.ncart {
			m.start(s)
		}
		return
	}

	r := m.rng.Float64()
	switch {
	case s.ncart > 0 && r < m.p.RemoveRate:
		i := m.rng.IntN(s.ncart)
		it := s.cart[i]
		s.ncart--
		s.cart[i] = s.cart[s.ncart]
		m.fill(e, event.RemoveFromCart, it.product, it.quantity)
	case s.viewed != nil && s.ncart < maxCart && r < m.p.RemoveRate+m.p.AddRate:
		q := m.quantity()
		s.cart[s.ncart] = cartItem{product: s.viewed, quantity: q}
		s.ncart++
		m.fill(e, event.AddToCart, s.viewed, q)
		s.viewed = nil
	default:
		p := m.cat.ByRank(int(m.products.Uint64()))
		s.viewed = p
		m.fill(e, event.View, p, 1)
	}

	s.steps--
	if s.steps <= 0 {
		if s.ncart > 0 && m.rng.Float64() < m.p.BuyRate {
			s.checkout = 0
		} else {
			m.start(s)
		}
	}
}

// quantity of an add_to_cart: mostly one, sometimes a few.
func (m *Model) quantity() int32 {
	switch r := m.rng.IntN(100); {
	case r < 85:
		return 1
	case r < 95:
		return 2
	default:
		return 3 + int32(m.rng.IntN(3))
	}
}

func (m *Model) fill(e *event.Event, typ string, p *Product, q int32) {
	e.EventType = typ
	e.ProductID = p.ID
	e.Category = p.Category
	e.PriceCents = p.PriceCents
	e.Quantity = q
}
