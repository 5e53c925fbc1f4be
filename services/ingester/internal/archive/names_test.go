package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Names of the longest length Linux accepts, in the shapes producers use.
var longNames = map[string]string{
	"ascii":        strings.Repeat("a", 251) + ".csv",
	"utf-8":        "x" + strings.Repeat("é", 125) + ".csv",
	"no extension": strings.Repeat("b", 255),
	"long dotted":  "c." + strings.Repeat("d", 253),
	"not utf-8":    strings.Repeat("\xff", 251) + ".csv",
}

func TestAnyNameTheFileSystemAcceptsIsArchivedAndFailedAgainAndAgain(t *testing.T) {
	for label, name := range longNames {
		if len(name) != maxName {
			t.Fatalf("%s: test name is %d bytes", label, len(name))
		}
		t.Run(label, func(t *testing.T) {
			bothKinds(t, func(t *testing.T, out string) {
				in := t.TempDir()
				src := filepath.Join(in, name)
				archived, failed := filepath.Join(out, "archive"), filepath.Join(out, "failed")
				seen := map[string]bool{}
				for i := 0; i < 3; i++ {
					body := "version " + strconv.Itoa(i)
					dst, err := Move(src, archived, put(t, src, body))
					if err != nil {
						t.Fatalf("move %d: %v", i, err)
					}
					fdst, err := Fail(src, failed, put(t, src, body), "bad: reason")
					if err != nil {
						t.Fatalf("fail %d: %v", i, err)
					}
					for _, p := range []string{dst, fdst, fdst + ".reason.txt"} {
						if b := filepath.Base(p); len(b) > maxName || seen[p] {
							t.Fatalf("%d: name %q (%d bytes) too long or used twice", i, b, len(b))
						}
						seen[p] = true
					}
					if content(t, dst) != body || content(t, fdst) != body {
						t.Fatalf("%d: wrong content", i)
					}
					reason := content(t, fdst+".reason.txt")
					if !strings.HasPrefix(reason, "bad: reason\n") || !strings.Contains(reason, fmt.Sprintf("%q", name)) {
						t.Fatalf("%d: reason %q does not say why and for which file", i, reason)
					}
				}
				if n := names(t, in); len(n) != 0 {
					t.Fatalf("input directory still holds %q", n)
				}
			})
		})
	}
}

// Old archives may hold every counted name; a move must neither stop nor try them all
// on each move.
func TestMoreThanTenThousandReusesOfANameStillArchive(t *testing.T) {
	bothKinds(t, func(t *testing.T, out string) {
		for k := 0; k < 10000; k++ {
			name := "a.csv"
			if k > 0 {
				name = "a." + strconv.Itoa(k) + ".csv"
			}
			f, err := os.Create(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		src := filepath.Join(t.TempDir(), "a.csv")
		seen := map[string]bool{}
		for i := 0; i < 3; i++ {
			body := "version " + strconv.Itoa(i)
			dst, err := Move(src, out, put(t, src, body))
			if err != nil {
				t.Fatalf("move %d: %v", i, err)
			}
			if seen[dst] || content(t, dst) != body {
				t.Fatalf("move %d: went to %s, used twice or wrong content", i, dst)
			}
			seen[dst] = true
		}
		if n := names(t, out); len(n) != 10003 {
			t.Fatalf("archive holds %d names, want 10003", len(n))
		}
	})
}

func TestCandidateNamesFitAndAreDistinct(t *testing.T) {
	key := Identity{Dev: 1, Ino: 2, Size: 3}
	for label, name := range longNames {
		for _, limit := range []int{maxName, maxName - len(reasonSuffix)} {
			seen := map[string]int{}
			for k := 0; k < seqNames+50; k++ {
				c := candidate(name, k, limit, key)
				if len(c) > limit || strings.HasPrefix(c, ".") {
					t.Fatalf("%s: candidate %d is %q (%d bytes, limit %d)", label, k, c, len(c), limit)
				}
				if j, dup := seen[c]; dup {
					t.Fatalf("%s: candidates %d and %d are both %q", label, j, k, c)
				}
				seen[c] = k
			}
		}
	}
	if a, b := candidate(longNames["ascii"], 1, maxName, key), candidate(strings.Repeat("a", 250)+"z.csv", 1, maxName, key); a == b {
		t.Fatalf("two long names sharing a prefix get the same name %q", a)
	}
}

// A compressed input's later names keep its whole extension, so they are still input
// names (`ingester retry` of a failed x.1.csv.gz).
func TestCandidateNamesKeepACompressedExtension(t *testing.T) {
	for _, name := range []string{"x.csv.gz", "x.csv.zst"} {
		ext := name[strings.Index(name, ".csv"):]
		if c := candidate(name, 1, maxName, Identity{}); c != "x.1"+ext {
			t.Errorf("candidate 1 of %s is %q, want %q", name, c, "x.1"+ext)
		}
	}
	if c := candidate("x.tar.gz", 1, maxName, Identity{}); c != "x.tar.1.gz" {
		t.Errorf("candidate 1 of x.tar.gz is %q: only .csv.gz is kept whole", c)
	}
}
