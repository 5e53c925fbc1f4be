package place

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestName(t *testing.T) {
	ts := time.Unix(1700000000, 123)
	if got, want := Name("gen-1", 42, ts), "gen-1-00000042-1700000000000000123.csv"; got != want {
		t.Fatalf("Name = %q, want %q", got, want)
	}
	if got := TmpName("a.csv"); got != ".a.csv.tmp" {
		t.Fatalf("TmpName = %q", got)
	}
}

func TestCheckInstance(t *testing.T) {
	for _, ok := range []string{"gen-1", "3f2a9c1b7d0e", "host.example_1"} {
		if err := CheckInstance(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "a/b", "a b", "x*", strings.Repeat("x", 129)} {
		if err := CheckInstance(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	assertDir(t, dir, ".a.csv.tmp")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	assertDir(t, dir, "a.csv")
	if b, _ := os.ReadFile(filepath.Join(dir, "a.csv")); string(b) != "hello\n" {
		t.Fatalf("content %q", b)
	}

	g, err := Create(dir, "b.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = g.Write([]byte("half"))
	g.Abort()
	assertDir(t, dir, "a.csv")
}

func TestCommitFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	// The rename fails when the target is a non-empty directory.
	if err := os.MkdirAll(filepath.Join(dir, "a.csv", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil {
		t.Fatal("commit over a directory succeeded")
	}
	assertDir(t, dir, "a.csv")
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".gen-1-00000001-1.csv.tmp", ".gen-1-00000002-2.csv.tmp", ".gen-2-00000001-1.csv.tmp", "gen-1-00000003-3.csv"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStale(dir, "gen-1")
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %v, %v", removed, err)
	}
	assertDir(t, dir, ".gen-2-00000001-1.csv.tmp", "gen-1-00000003-3.csv")
}

func TestWritable(t *testing.T) {
	dir := t.TempDir()
	if err := Writable(dir); err != nil {
		t.Fatal(err)
	}
	if err := Writable(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing dir is writable")
	}
	file := filepath.Join(dir, "f")
	_ = os.WriteFile(file, nil, 0o644)
	if err := Writable(file); err == nil {
		t.Fatal("a file is a writable directory")
	}
}

// TestReaderNeverSeesShortFile polls the directory while files are placed and checks
// that every *.csv it can open is complete.
func TestReaderNeverSeesShortFile(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("0123456789abcdef,row\n"), 20_000) // 420 KB, several writes
	var stop atomic.Bool
	var seen, short atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			names, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
			for _, n := range names {
				b, err := os.ReadFile(n)
				if err != nil {
					continue
				}
				seen.Add(1)
				if !bytes.Equal(b, content) {
					short.Add(1)
				}
			}
		}
	}()
	for i := 0; i < 200; i++ {
		f, err := Create(dir, Name("gen", uint64(i), time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(content); off += 64 << 10 {
			if _, err := f.Write(content[off:min(off+64<<10, len(content))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if seen.Load() == 0 {
		t.Fatal("the reader saw no file")
	}
	if short.Load() > 0 {
		t.Fatalf("the reader saw %d incomplete files of %d reads", short.Load(), seen.Load())
	}
}

func assertDir(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dir holds %v, want %v", got, want)
	}
}
