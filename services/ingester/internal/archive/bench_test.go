package archive

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkMoveOut compares a checked, durable Move and Delete with the bare link and
// unlink the package did before (no identity checks, no fsync) and with one fsync of a
// directory, in the same run on the same disk: the fsyncs are the cost.
func BenchmarkMoveOut(b *testing.B) {
	moves := map[string]func(b *testing.B, src, dir string, want Identity){
		"baseline link+unlink": func(b *testing.B, src, dir string, _ Identity) {
			if err := os.Link(src, filepath.Join(dir, filepath.Base(src))); err != nil {
				b.Fatal(err)
			}
			if err := os.Remove(src); err != nil {
				b.Fatal(err)
			}
		},
		"baseline fsync of a directory": func(b *testing.B, src, dir string, _ Identity) {
			if err := syncDir(dir); err != nil {
				b.Fatal(err)
			}
		},
		"Move": func(b *testing.B, src, dir string, want Identity) {
			if _, err := Move(src, dir, want); err != nil {
				b.Fatal(err)
			}
		},
		"Delete": func(b *testing.B, src, _ string, want Identity) {
			if err := Delete(src, want); err != nil {
				b.Fatal(err)
			}
		},
	}
	for _, name := range []string{"baseline link+unlink", "baseline fsync of a directory", "Move", "Delete"} {
		b.Run(name, func(b *testing.B) {
			in, out := b.TempDir(), b.TempDir()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				src := filepath.Join(in, "f"+strconv.Itoa(i)+".csv")
				if err := os.WriteFile(src, []byte("a,b\n"), 0o644); err != nil {
					b.Fatal(err)
				}
				fi, _ := os.Stat(src)
				b.StartTimer()
				moves[name](b, src, out, IdentityOf(fi))
			}
		})
	}
}

// BenchmarkMoveAllOf100 is MoveAll's cost per file in batches of 100, to set beside
// BenchmarkMoveOut's per-file Move and baselines (run both in one invocation).
func BenchmarkMoveAllOf100(b *testing.B) {
	in, out := b.TempDir(), b.TempDir()
	outs := make([]Out, 100)
	files := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for j := range outs {
			src := filepath.Join(in, "f"+strconv.Itoa(i)+"-"+strconv.Itoa(j)+".csv")
			if err := os.WriteFile(src, []byte("a,b\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			fi, _ := os.Stat(src)
			outs[j] = Out{Src: src, Dir: out, Want: IdentityOf(fi)}
		}
		b.StartTimer()
		for _, r := range MoveAll(outs) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		files += len(outs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(files), "ns/file")
}
