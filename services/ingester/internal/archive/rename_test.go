package archive

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Under fs.protected_hardlinks=1 an unprivileged ingester may not link a file of another
// owner that it cannot write; such a file must still leave the input directory (else it
// is retried forever), by rename, with the same checks and its reason.
func TestAFileOfAnotherOwnerThatLinkRefusesIsMovedByRename(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the mover as another user")
	}
	if b, _ := os.ReadFile("/proc/sys/fs/protected_hardlinks"); strings.TrimSpace(string(b)) != "1" {
		t.Skip("fs.protected_hardlinks is not 1: link(2) would not refuse")
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	binary := filepath.Join(root, "archive.test")
	copyFile(t, os.Args[0], binary)
	for _, op := range []string{"move", "fail"} {
		t.Run(op, func(t *testing.T) {
			in, out := filepath.Join(root, op+"-in"), filepath.Join(root, op+"-out")
			for _, d := range []string{in, out} {
				if err := os.Mkdir(d, 0o777); err != nil {
					t.Fatal(err)
				}
				os.Chmod(d, 0o777) // past the umask
			}
			put(t, filepath.Join(out, "a.csv"), "earlier")
			src := filepath.Join(in, "a.csv")
			put(t, src, "root's file") // 0644, owned by root: nobody may read, not write

			if line := child(t, binary, nobody, op, src, out, ""); line != "done" {
				t.Fatalf("mover said %q", line)
			}
			if content(t, filepath.Join(out, "a.1.csv")) != "root's file" || content(t, filepath.Join(out, "a.csv")) != "earlier" {
				t.Fatal("wrong content in the destination")
			}
			if r, err := os.ReadFile(filepath.Join(out, "a.1.csv"+reasonSuffix)); op == "fail" && (err != nil || !strings.HasPrefix(string(r), "bad: why\n")) {
				t.Fatalf("reason file: %q, %v", r, err)
			}
			if n := names(t, in); len(n) != 0 {
				t.Fatalf("input directory still holds %q", n)
			}
		})
	}
}

// The rename fallback checks the version it took like every other path (called directly:
// as root, link never refuses).
func TestMoveByRenameLeavesANewVersionInPlace(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	src := filepath.Join(in, "a.csv")
	loaded := put(t, src, "loaded")
	replace(t, src, "new version")
	_, err := moveByRename(src, out, loaded, maxName, "", false)
	leftInPlace(t, err, out, src, "new version")
	dst, err := moveByRename(src, out, IdentityOf(stat(t, src)), maxName-len(reasonSuffix), "bad: why", true)
	if err != nil || content(t, dst) != "new version" || !strings.HasPrefix(content(t, dst+reasonSuffix), "bad: why\n") {
		t.Fatalf("moveByRename = %q, %v", dst, err)
	}
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
