package archive

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// put writes body to path and returns the identity a loader would have read.
func put(t *testing.T, path, body string) Identity {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return IdentityOf(fi)
}

// replace renames a new version with body over path, as a producer does.
func replace(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".next.tmp")
	put(t, tmp, body)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names lists dir, leaving out the package's empty private directory.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() == outDir {
			if inner, _ := os.ReadDir(filepath.Join(dir, outDir)); len(inner) == 0 {
				continue
			}
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// leftInPlace checks that a move returned ErrChanged, archived nothing and left src
// holding body.
func leftInPlace(t *testing.T, err error, out, src, body string) {
	t.Helper()
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("move = %v, want ErrChanged", err)
	}
	if n := names(t, out); len(n) != 0 {
		t.Fatalf("%s holds %v, want nothing", out, n)
	}
	if c := content(t, src); c != body {
		t.Fatalf("source holds %q, want %q", c, body)
	}
}

func setHook(t *testing.T, point string, fn func()) {
	t.Helper()
	testHook = func(p string) {
		if p == point {
			fn()
		}
	}
	t.Cleanup(func() { testHook = nil })
}

func TestMoveNeverOverwritesAnEarlierFile(t *testing.T) {
	in, dst := t.TempDir(), t.TempDir()
	for i, body := range []string{"first", "second", "third"} {
		p := filepath.Join(in, "a.csv")
		got, err := Move(p, dst, put(t, p, body))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"a.csv", "a.1.csv", "a.2.csv"}[i]
		if filepath.Base(got) != want {
			t.Fatalf("move %d went to %s, want %s", i, got, want)
		}
	}
	for name, body := range map[string]string{"a.csv": "first", "a.1.csv": "second", "a.2.csv": "third"} {
		if b := content(t, filepath.Join(dst, name)); b != body {
			t.Errorf("%s holds %q, want %q", name, b, body)
		}
	}
	if n := names(t, in); len(n) != 0 {
		t.Errorf("input directory still holds %v", n)
	}
}

// Two replicas moving the same file: one wins, the others are told it is gone or find
// the winner's link, and the archive holds exactly one copy.
func TestConcurrentMovesOfOneFileLeaveOneArchivedCopy(t *testing.T) {
	for round := 0; round < 50; round++ {
		in, dst := t.TempDir(), t.TempDir()
		p := filepath.Join(in, "x.csv")
		id := put(t, p, "x")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func(i int) { defer wg.Done(); _, errs[i] = Move(p, dst, id) }(i)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil && !errors.Is(err, ErrGone) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if n := names(t, dst); len(n) != 1 || content(t, filepath.Join(dst, n[0])) != "x" {
			t.Fatalf("round %d: archive holds %v, want one copy", round, n)
		}
		if n := names(t, in); len(n) != 0 {
			t.Fatalf("round %d: input directory still holds %v", round, n)
		}
	}
}

func TestDeleteOfAMissingFileIsNotAnError(t *testing.T) {
	if err := Delete(filepath.Join(t.TempDir(), "nope.csv"), Identity{}); err != nil {
		t.Fatal(err)
	}
}

// otherFS returns a directory on another file system than t.TempDir, or skips.
func otherFS(t *testing.T) string {
	t.Helper()
	shm, err := os.MkdirTemp("/dev/shm", "archive-test-")
	if err != nil {
		t.Skipf("no /dev/shm to move across file systems: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	var a, b syscall.Stat_t
	if syscall.Stat(shm, &a) != nil || syscall.Stat(t.TempDir(), &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm and the test's temporary directory are one file system: the cross-file-system copy cannot happen here")
	}
	return shm
}

func TestMoveAcrossFileSystems(t *testing.T) {
	shm := otherFS(t)
	src := filepath.Join(t.TempDir(), "a.csv")
	put(t, src, "rows")
	if err := os.Chmod(src, 0o640); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(src)
	id := IdentityOf(fi)
	put(t, filepath.Join(shm, "a.csv"), "earlier")
	dst, err := Move(src, shm, id)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dst) != "a.1.csv" {
		t.Fatalf("moved to %s, want a.1.csv beside the earlier a.csv", dst)
	}
	if content(t, dst) != "rows" || content(t, filepath.Join(shm, "a.csv")) != "earlier" {
		t.Fatal("wrong content after the move")
	}
	if n := names(t, shm); len(n) != 2 {
		t.Fatalf("archive holds %v: no temporary file may remain", n)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(id.ModTime) {
		t.Fatalf("the copy lost the source's permissions or modification time: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatal("source still present")
	}
}

// The archive's directory on the same file system, and on another one.
func bothKinds(t *testing.T, fn func(t *testing.T, out string)) {
	t.Run("same file system", func(t *testing.T) { fn(t, t.TempDir()) })
	t.Run("across file systems", func(t *testing.T) { fn(t, otherFS(t)) })
}

// A change between the load and the move (a new version renamed over the name, or bytes
// appended to the same inode): nothing is archived, the name keeps what it holds, to be
// loaded.
func TestMoveArchivesNothingOfAVersionThatWasNotLoaded(t *testing.T) {
	changes := map[string]struct {
		change func(t *testing.T, src string)
		left   string
	}{
		"renamed over": {func(t *testing.T, src string) { replace(t, src, "new version") }, "new version"},
		"appended to":  {func(t *testing.T, src string) { appendTo(t, src, "more\n") }, "loaded\nmore\n"},
	}
	for name, c := range changes {
		t.Run(name, func(t *testing.T) {
			bothKinds(t, func(t *testing.T, out string) {
				src := filepath.Join(t.TempDir(), "a.csv")
				loaded := put(t, src, "loaded\n")
				c.change(t, src)
				_, err := Move(src, out, loaded)
				leftInPlace(t, err, out, src, c.left)
			})
		})
	}
}

// The new version arrives after the loaded one was archived and before the source name
// is removed: the loaded one stays archived, the new one stays in place.
func TestMoveNeverRemovesANewVersionThatArrivesAfterTheArchiving(t *testing.T) {
	bothKinds(t, func(t *testing.T, out string) {
		src := filepath.Join(t.TempDir(), "a.csv")
		loaded := put(t, src, "loaded")
		setHook(t, "archived", func() { replace(t, src, "new version") })
		dst, err := Move(src, out, loaded)
		if !errors.Is(err, ErrChanged) || dst == "" {
			t.Fatalf("Move = %q, %v; want the archived path and ErrChanged", dst, err)
		}
		if content(t, dst) != "loaded" || content(t, src) != "new version" {
			t.Fatalf("archive holds %q, source %q", content(t, dst), content(t, src))
		}
		if n := names(t, filepath.Dir(src)); len(n) != 1 {
			t.Fatalf("input directory holds %v, want only a.csv", n)
		}
	})
}

// Written to after it was archived (a hard link shares the bytes): the archived link is
// undone and the file stays to be loaded again.
func TestMoveUndoesTheArchiveOfAFileWrittenWhileItWasMoved(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.csv")
	out := t.TempDir()
	loaded := put(t, src, "loaded\n")
	setHook(t, "archived", func() { appendTo(t, src, "more\n") })
	dst, err := Fail(src, out, loaded, "bad: header")
	if dst != "" {
		t.Fatalf("Fail returned %q; nothing may stay archived", dst)
	}
	leftInPlace(t, err, out, src, "loaded\nmore\n")
}

func TestDeleteLeavesANewVersionRenamedOverTheName(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.csv")
	loaded := put(t, src, "loaded")
	replace(t, src, "new version")
	if err := Delete(src, loaded); !errors.Is(err, ErrChanged) {
		t.Fatalf("Delete = %v, want ErrChanged", err)
	}
	if content(t, src) != "new version" {
		t.Fatal("the new version was not put back")
	}
	if n := names(t, filepath.Dir(src)); len(n) != 1 {
		t.Fatalf("input directory holds %v", n)
	}
}

// The name is taken before the file is unlinked, so a new version arriving meanwhile is
// never what gets unlinked.
func TestDeleteNeverUnlinksAVersionThatArrivesDuringTheDelete(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.csv")
	loaded := put(t, src, "loaded")
	setHook(t, "taken", func() { replace(t, src, "new version") })
	if err := Delete(src, loaded); err != nil {
		t.Fatal(err)
	}
	if content(t, src) != "new version" {
		t.Fatal("the new version is gone")
	}
}

// A new version taken by mistake while a yet newer one took the name: neither is lost.
func TestAVersionTakenByMistakeIsPutBackBesideANewerOne(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.csv")
	loaded := put(t, src, "loaded")
	replace(t, src, "second")
	setHook(t, "taken", func() { replace(t, src, "third") })
	if err := Delete(src, loaded); !errors.Is(err, ErrChanged) {
		t.Fatalf("Delete = %v, want ErrChanged", err)
	}
	in := filepath.Dir(src)
	if n := names(t, in); strings.Join(n, " ") != "a.csv a.restored.csv" {
		t.Fatalf("input directory holds %v", n)
	}
	if content(t, src) != "third" || content(t, filepath.Join(in, "a.restored.csv")) != "second" {
		t.Fatal("a version was lost")
	}
}

func TestFailWritesTheReasonBesideTheFile(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	src := filepath.Join(in, "a.csv")
	dst, err := Fail(src, out, put(t, src, "x"), "header_not_csv: the header line is not CSV")
	if err != nil {
		t.Fatal(err)
	}
	if r := content(t, dst+".reason.txt"); r != "header_not_csv: the header line is not CSV\n" {
		t.Fatalf("reason %q", r)
	}
	if n := names(t, out); strings.Join(n, " ") != "a.csv a.csv.reason.txt" {
		t.Fatalf("failed directory holds %v", n)
	}
}
