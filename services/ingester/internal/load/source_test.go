package load

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// internCategory returns the category it is given, whichever categories share a slot of
// its cache, and the same string each time for the same category.
func TestInternCategoryReturnsTheCategoryGiven(t *testing.T) {
	s := newSource(nil, false, time.Now(), 1, 0)
	rng := rand.New(rand.NewPCG(7, 8))
	var cats []string
	for i := range 300 { // more categories than slots: every slot is shared
		cats = append(cats, fmt.Sprintf("c%d%s", i, strings.Repeat("x", i%7)))
	}
	first := map[string]string{}
	for range 20000 {
		c := cats[rng.IntN(len(cats))]
		got := s.internCategory([]byte(c))
		if got != c {
			t.Fatalf("internCategory(%q) = %q", c, got)
		}
		if f, ok := first[c]; ok && unsafe.StringData(f) != unsafe.StringData(got) {
			t.Fatalf("internCategory(%q) returned a new string", c)
		}
		first[c] = got
	}
	if s.internCategory(nil) != "" {
		t.Fatal("an empty category")
	}
}
