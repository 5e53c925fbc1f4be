package archive

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// A batch pays one fsync per directory, not one per file: the cost of durability must
// not grow with the number of small files in a batch.
func TestMoveAllFsyncsEachDirectoryOncePerBatch(t *testing.T) {
	in, archived, failed := t.TempDir(), t.TempDir(), t.TempDir()
	warm := filepath.Join(in, "warm.csv")
	if err := Delete(warm, put(t, warm, "x")); err != nil { // creates the private directory's parent
		t.Fatal(err)
	}
	var outs []Out
	for i := 0; i < 60; i++ {
		src := filepath.Join(in, "f"+strconv.Itoa(i)+".csv")
		o := Out{Src: src, Want: put(t, src, "rows "+strconv.Itoa(i))}
		switch i % 3 {
		case 0:
			o.Dir = archived
		case 1:
			o.Dir, o.Fail, o.Reason = failed, true, "bad: why"
		}
		outs = append(outs, o)
	}
	fsyncs := 0
	setHook(t, "fsync", func() { fsyncs++ })
	for i, r := range MoveAll(outs) {
		if r.Err != nil {
			t.Fatalf("%d: %v", i, r.Err)
		}
	}
	if fsyncs != 3 {
		t.Fatalf("%d directory fsyncs for a batch of 60 files, want 3 (archive, failed, input)", fsyncs)
	}
	if n := names(t, in); len(n) != 0 {
		t.Fatalf("input directory holds %q", n)
	}
	if a, f := names(t, archived), names(t, failed); len(a) != 20 || len(f) != 40 {
		t.Fatalf("archive holds %d, failed %d (with reasons), want 20 and 40", len(a), len(f))
	}
}

// One file's trouble is its own: the others of the batch move as they would alone.
func TestMoveAllGivesEachFileItsOwnOutcome(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	path := func(name string) string { return filepath.Join(in, name) }
	ok := put(t, path("ok.csv"), "ok")
	replaced := put(t, path("replaced.csv"), "loaded")
	replace(t, path("replaced.csv"), "new version")
	gone := put(t, path("gone.csv"), "gone")
	os.Remove(path("gone.csv"))
	del := put(t, path("del.csv"), "del")
	res := MoveAll([]Out{
		{Src: path("ok.csv"), Dir: out, Want: ok},
		{Src: path("replaced.csv"), Dir: out, Want: replaced},
		{Src: path("gone.csv"), Dir: out, Want: gone},
		{Src: path("del.csv"), Want: del},
	})
	if res[0].Err != nil || content(t, res[0].Dst) != "ok" {
		t.Errorf("ok.csv: %+v", res[0])
	}
	if !errors.Is(res[1].Err, ErrChanged) || res[1].Dst != "" || content(t, path("replaced.csv")) != "new version" {
		t.Errorf("replaced.csv: %+v", res[1])
	}
	if !errors.Is(res[2].Err, ErrGone) {
		t.Errorf("gone.csv: %+v", res[2])
	}
	if res[3].Err != nil {
		t.Errorf("del.csv: %+v", res[3])
	}
	if n := names(t, in); len(n) != 1 || n[0] != "replaced.csv" {
		t.Errorf("input directory holds %q", n)
	}
	if n := names(t, out); len(n) != 1 {
		t.Errorf("archive holds %q", n)
	}
}

// A name taken twice in one batch (put back the first time) gets a private directory of
// its own the second time, so the first taking is never replaced.
func TestMoveAllTakesANameTwiceWithoutReplacingIt(t *testing.T) {
	in := t.TempDir()
	src := filepath.Join(in, "a.csv")
	loaded := put(t, src, "loaded")
	res := MoveAll([]Out{{Src: src, Want: Identity{Ino: loaded.Ino + 1, Dev: loaded.Dev}}, {Src: src, Want: loaded}})
	if !errors.Is(res[0].Err, ErrChanged) || res[1].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if n := names(t, in); len(n) != 0 {
		t.Fatalf("input directory holds %q", n)
	}
}
