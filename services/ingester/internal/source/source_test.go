package source

import (
	"testing"
	"time"
)

func TestVersionsAreTheSameOnlyIfEverythingBothKnowMatches(t *testing.T) {
	at := time.Unix(1700000000, 5)
	file := Version{Size: 10, ModTime: at, Dev: 1, Ino: 2}
	object := Version{Size: 10, ModTime: at, ETag: `"abc"`}
	cases := []struct {
		a, b Version
		same bool
	}{
		{file, file, true},
		{file, Version{Size: 10, ModTime: at, Dev: 1, Ino: 3}, false},        // another inode
		{file, Version{Size: 11, ModTime: at, Dev: 1, Ino: 2}, false},        // grown
		{file, Version{Size: 10, ModTime: at.Add(1), Dev: 1, Ino: 2}, false}, // rewritten
		{file, Version{Size: 10, ModTime: at}, true},                         // inode unknown on one side
		{object, object, true},
		{object, Version{Size: 10, ModTime: at, ETag: `"abd"`}, false},
		{object, Version{Size: 10, ModTime: at}, true},
		{object, Version{Size: 10, ModTime: at.Add(time.Second), ETag: `"abc"`}, true}, // times of other requests
		{object, Version{Size: 11, ModTime: at, ETag: `"abc"`}, false},
		{object, Version{Size: 10, ModTime: at.Add(time.Second)}, false}, // no ETag on one side: the time decides
	}
	for i, c := range cases {
		if got := c.a.Same(c.b); got != c.same {
			t.Errorf("case %d: %+v Same %+v = %v, want %v", i, c.a, c.b, got, c.same)
		}
		if got := c.b.Same(c.a); got != c.same {
			t.Errorf("case %d: not symmetric", i)
		}
	}
	if !(Version{}).IsZero() || file.IsZero() {
		t.Error("IsZero")
	}
}
