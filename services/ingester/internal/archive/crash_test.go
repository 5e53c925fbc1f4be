package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The child side of the crash and permission tests: the test binary run again, which
// moves a file and, if a point is named, stops dead there until the parent kills it.
func TestCrashChildProcess(t *testing.T) {
	src, dir, point, op := os.Getenv("ARCHIVE_CRASH_SRC"), os.Getenv("ARCHIVE_CRASH_DIR"), os.Getenv("ARCHIVE_CRASH_POINT"), os.Getenv("ARCHIVE_CRASH_OP")
	if src == "" {
		t.Skip("run by the crash tests in a child process")
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	testHook = func(p string) {
		if p == point {
			fmt.Printf("at %s\n", p)
			time.Sleep(time.Hour) // the parent kills us here
		}
	}
	if err = runOp(op, src, dir, IdentityOf(fi)); err != nil {
		fmt.Printf("error: %v\n", err)
		return
	}
	fmt.Println("done")
}

func runOp(op, src, dir string, want Identity) error {
	var err error
	switch op {
	case "move":
		_, err = Move(src, dir, want)
	case "fail":
		_, err = Fail(src, dir, want, "bad: why")
	case "delete":
		err = Delete(src, want)
	case "batch": // every file beside src, as they are now, in one MoveAll
		ents, _ := os.ReadDir(filepath.Dir(src))
		var outs []Out
		for _, e := range ents {
			if p := filepath.Join(filepath.Dir(src), e.Name()); e.Type().IsRegular() {
				fi, _ := os.Stat(p)
				outs = append(outs, Out{Src: p, Dir: dir, Want: IdentityOf(fi)})
			}
		}
		for _, r := range MoveAll(outs) {
			err = errors.Join(err, r.Err)
		}
	}
	return err
}

// child runs op in a child process (as cred's user if not nil) and returns its first
// line of output, killing it with SIGKILL once the line is read.
func child(t *testing.T, binary string, cred *syscall.Credential, op, src, dir, point string) string {
	t.Helper()
	cmd := exec.Command(binary, "-test.run=^TestCrashChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ARCHIVE_CRASH_SRC="+src, "ARCHIVE_CRASH_DIR="+dir, "ARCHIVE_CRASH_POINT="+point, "ARCHIVE_CRASH_OP="+op)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	return strings.TrimSpace(line)
}

// killAt runs op in a child process and kills it with SIGKILL when it reaches point.
func killAt(t *testing.T, op, src, dir, point string) {
	t.Helper()
	if line := child(t, os.Args[0], nil, op, src, dir, point); line != "at "+point {
		t.Fatalf("child did not stop at %s: %q", point, line)
	}
}

// A move killed with SIGKILL at any step, then Recover (as at start-up) and the retry
// the ingester makes: exactly one archived copy of the loaded bytes (with its reason),
// the source gone, no temporary or taken file left — also where the name was reused so
// often that identity-derived names are used.
func TestAMoveKilledAtAnyStepEndsWithOneArchivedCopyAfterRecoverAndRetry(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), (2*copyChunk+copyChunk/2)/16) // copied in three chunks
	type crash struct{ op, point string }
	crashes := []crash{{"move", "archived"}, {"fail", "archived"}, {"move", "taken"}, {"fail", "taken"}, {"delete", "taken"}}
	for _, kind := range []string{"same file system", "across file systems"} {
		points := crashes
		if kind == "across file systems" {
			points = append([]crash{{"move", "copying"}, {"fail", "copying"}}, crashes...)
		}
		for _, reused := range []int{0, seqNames} {
			for _, c := range points {
				if c.op == "delete" && (reused > 0 || kind != "same file system") {
					continue // delete does not depend on the destination
				}
				t.Run(fmt.Sprintf("%s/%s killed when %s/name used %d times", kind, c.op, c.point, reused), func(t *testing.T) {
					in, out := t.TempDir(), t.TempDir()
					if kind == "across file systems" {
						out = otherFS(t)
					}
					for k := 0; k < reused; k++ {
						put(t, filepath.Join(out, candidate("a.csv", k, maxName, Identity{})), "earlier")
					}
					src := filepath.Join(in, "a.csv")
					if err := os.WriteFile(src, body, 0o644); err != nil {
						t.Fatal(err)
					}
					fi, _ := os.Stat(src)
					want := IdentityOf(fi)

					killAt(t, c.op, src, out, c.point)
					left := leftovers(t, in, out)
					switch c.point {
					case "copying":
						if left == 0 {
							t.Fatal("the kill left no temporary: the copy was not interrupted")
						}
					case "taken":
						if _, err := os.Stat(src); !os.IsNotExist(err) || left == 0 {
							t.Fatal("the kill did not leave the source taken")
						}
					}
					if n, err := Recover(in, out); err != nil || n != left {
						t.Fatalf("Recover = %d, %v; want %d entries cleaned", n, err, left)
					}
					if l := leftovers(t, in, out); l != 0 {
						t.Fatalf("%d leftovers after Recover", l)
					}
					if err := runOp(c.op, src, out, want); err != nil {
						t.Fatalf("retry: %v", err)
					}

					if n := names(t, in); len(n) != 0 {
						t.Fatalf("input directory holds %q", n)
					}
					var copies []string
					for _, n := range names(t, out) {
						b, _ := os.ReadFile(filepath.Join(out, n))
						switch {
						case bytes.Equal(b, body):
							copies = append(copies, n)
						case strings.HasSuffix(n, reasonSuffix) && strings.HasPrefix(string(b), "bad: why\n"):
							if c.op != "fail" {
								t.Fatalf("a reason file %s for a %s", n, c.op)
							}
						case string(b) != "earlier":
							t.Fatalf("unexpected %s in the destination (%d bytes)", n, len(b))
						}
					}
					wantCopies := 1
					if c.op == "delete" {
						wantCopies = 0
					}
					if len(copies) != wantCopies {
						t.Fatalf("destination holds %d copies of the file (%q), want %d", len(copies), copies, wantCopies)
					}
					if c.op == "fail" {
						if r, err := os.ReadFile(filepath.Join(out, copies[0]+reasonSuffix)); err != nil || !strings.HasPrefix(string(r), "bad: why\n") {
							t.Fatalf("reason file: %q, %v", r, err)
						}
					}
				})
			}
		}
	}
}

// leftovers counts what an interrupted move leaves: temporaries in out, taken files in
// the input directory's private directory.
func leftovers(t *testing.T, in, out string) int {
	t.Helper()
	n := 0
	for _, name := range names(t, out) {
		if tempName.MatchString(name) {
			n++
		}
	}
	ops, err := os.ReadDir(filepath.Join(in, outDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, op := range ops {
		taken, _ := os.ReadDir(filepath.Join(in, outDir, op.Name()))
		n += len(taken)
	}
	return n
}

// Recover runs while peers move files: what they hold locked is theirs. Producers'
// own temporaries in the input directory are never touched.
func TestRecoverLeavesWorkInProgressAlone(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	producer := filepath.Join(in, ".a.csv.tmp")
	put(t, producer, "half")
	stale := filepath.Join(out, ".b.csv.123.tmp")
	put(t, stale, "interrupted copy")
	live, err := createTemp(out, "c.csv")
	if err != nil {
		t.Fatal(err)
	}
	op, err := newOpDir(in)
	if err != nil {
		t.Fatal(err)
	}
	taken := filepath.Join(op.path, "d.csv")
	put(t, taken, "being moved")

	if n, err := Recover(in, out); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want only the stale temporary", n, err)
	}
	for _, p := range []string{producer, live.Name(), taken} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s was touched: %v", p, err)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temporary not removed")
	}

	// Its holder died: the locks are gone and Recover finishes their work.
	live.File.Close()
	op.f.Close()
	if n, err := Recover(in, out); err != nil || n != 2 {
		t.Fatalf("Recover = %d, %v; want the temporary and the taken file", n, err)
	}
	if content(t, filepath.Join(in, "d.csv")) != "being moved" || content(t, producer) != "half" {
		t.Fatal("taken file not put back, or the producer's file touched")
	}
	if n := names(t, out); len(n) != 0 {
		t.Fatalf("destination holds %q", n)
	}
	if _, err := os.Stat(op.path); !os.IsNotExist(err) {
		t.Fatal("private directory not removed")
	}
}

// A batch killed after placing every file, or after taking the first source: Recover and
// the retry leave exactly one archived copy of each file.
func TestABatchKilledMidwayEndsWithOneArchivedCopyOfEachFile(t *testing.T) {
	for _, point := range []string{"archived", "taken"} {
		t.Run(point, func(t *testing.T) {
			in, out := t.TempDir(), t.TempDir()
			bodies := map[string]string{"a.csv": "first", "b.csv": "second", "c.csv": "third"}
			for name, body := range bodies {
				put(t, filepath.Join(in, name), body)
			}
			src := filepath.Join(in, "a.csv")
			killAt(t, "batch", src, out, point)
			if _, err := Recover(in, out); err != nil {
				t.Fatal(err)
			}
			if err := runOp("batch", src, out, Identity{}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if n := names(t, in); len(n) != 0 {
				t.Fatalf("input directory holds %q", n)
			}
			got := names(t, out)
			if len(got) != len(bodies) {
				t.Fatalf("destination holds %q, want one copy of each file", got)
			}
			for _, name := range got {
				if content(t, filepath.Join(out, name)) != bodies[name] {
					t.Fatalf("%s holds the wrong bytes", name)
				}
			}
		})
	}
}
