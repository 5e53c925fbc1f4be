// Package traffic models a shop's visitors: a user base, a product catalogue with a few
// hot products, and shopping sessions that move through the funnel view → add_to_cart →
// (remove_from_cart) → purchase. It produces events.Event values without allocating, so
// the generator can keep a high row rate on a small part of one core.
package traffic

import (
	"math"
	"math/rand/v2"
)

// category is a department of the shop and the typical price of its products.
type category struct {
	name   string
	median float64 // median unit price in currency units
	weight int     // relative number of products
}

// categories are named after a large marketplace's departments. One holds a comma, so
// every consumer of the CSV meets a quoted field in ordinary traffic.
var categories = []category{
	{"electronics", 120, 9},
	{"books", 15, 10},
	{"clothing, shoes & jewelry", 35, 12},
	{"home & kitchen", 40, 10},
	{"beauty", 20, 6},
	{"sports & outdoors", 45, 6},
	{"toys & games", 25, 6},
	{"grocery", 8, 7},
	{"automotive", 50, 4},
	{"garden", 30, 4},
	{"health & household", 18, 5},
	{"jewelry", 80, 3},
	{"office products", 12, 4},
	{"pet supplies", 22, 4},
	{"music", 14, 3},
	{"movies & tv", 12, 3},
	{"video games", 45, 3},
	{"tools & home improvement", 55, 4},
	{"baby", 25, 3},
	{"appliances", 250, 2},
}

// Product is one item of the catalogue.
type Product struct {
	ID         int64
	Category   string
	PriceCents int64
}

// Catalogue is the shop's products; Products[i].ID == i+1.
type Catalogue struct {
	Products []Product
	// byRank maps a popularity rank (0 = hottest) to an index into Products, so the hot
	// products are spread over the id range and the categories.
	byRank []int32
}

// NewCatalogue builds n products over the shop's categories with log-normal prices
// around each category's median, ending in .99 or .49 like shop prices do.
func NewCatalogue(rng *rand.Rand, n int) *Catalogue {
	total := 0
	for _, c := range categories {
		total += c.weight
	}
	c := &Catalogue{Products: make([]Product, n), byRank: make([]int32, n)}
	for i := range c.Products {
		k := rng.IntN(total)
		var cat category
		for _, cc := range categories {
			if k < cc.weight {
				cat = cc
				break
			}
			k -= cc.weight
		}
		price := math.Exp(math.Log(cat.median) + 0.6*rng.NormFloat64())
		whole := int64(math.Max(0, math.Min(price, 99_999)))
		cents := whole*100 + 99
		if rng.IntN(4) == 0 {
			cents = whole*100 + 49
		}
		c.Products[i] = Product{ID: int64(i + 1), Category: cat.name, PriceCents: cents}
		c.byRank[i] = int32(i)
	}
	rng.Shuffle(n, func(i, j int) { c.byRank[i], c.byRank[j] = c.byRank[j], c.byRank[i] })
	return c
}

// ByRank returns the product of popularity rank r (0 = hottest).
func (c *Catalogue) ByRank(r int) *Product { return &c.Products[c.byRank[r]] }

// Categories returns the category names, for tests and documentation.
func Categories() []string {
	out := make([]string, len(categories))
	for i, c := range categories {
		out[i] = c.name
	}
	return out
}
