package dir_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/sourcetest"
)

func TestDirKeepsTheSourceContract(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Harness {
		root := t.TempDir()
		in := filepath.Join(root, "in")
		src := dir.New(dir.Options{Input: in, Archive: filepath.Join(root, "archive"), Failed: filepath.Join(root, "failed"), Rescan: time.Hour})
		if err := src.Prepare(); err != nil {
			t.Fatal(err)
		}
		return sourcetest.Harness{Source: src,
			Put: func(name string, data []byte) { // as producers do: a dotfile renamed into place
				tmp := filepath.Join(in, "."+name+".tmp")
				if err := os.WriteFile(tmp, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, filepath.Join(in, name)); err != nil {
					t.Fatal(err)
				}
			},
			Remove: func(name string) { os.Remove(filepath.Join(in, name)) },
		}
	})
}
