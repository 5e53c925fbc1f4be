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

// The reader reuses its buffer: a category cached from one row must not change when the
// bytes it was read from are overwritten by the next row's.
func TestInternCategoryKeepsNoReferenceToTheReadersBuffer(t *testing.T) {
	s := newSource(nil, false, time.Now(), 1, 0)
	buf := []byte("books")
	first := s.internCategory(buf)
	copy(buf, "boots") // same length, first and last byte: the same slot
	if got := s.internCategory(buf); got != "boots" || first != "books" {
		t.Fatalf("after the buffer was overwritten: %q (want boots), the first row's category %q (want books)", got, first)
	}
	copy(buf, "books")
	if got := s.internCategory(buf); got != "books" || unsafe.StringData(got) != unsafe.StringData(first) {
		t.Fatalf("books again: %q, a new string: %v", got, unsafe.StringData(got) != unsafe.StringData(first))
	}
}
