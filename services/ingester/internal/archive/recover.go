package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"golang.org/x/sys/unix"
)

// tempName matches the temporaries this package writes: ".<name>.<digits>.tmp".
var tempName = regexp.MustCompile(`^\..+\.[0-9]+\.tmp$`)

// Recover undoes what a crash in the middle of a move left behind; the ingester calls it
// at start-up, before it loads anything. In each of outDirs (the archive and failed
// directories) it removes the temporaries of interrupted copies and reason files; in
// inputDir it puts back every file a move had taken but not yet unlinked (the ledger then
// decides what happens to it). What a live peer is still working on is locked and left
// alone, so replicas may start while others run. Missing directories are not an error.
// It returns how many entries it removed or put back.
func Recover(inputDir string, outDirs ...string) (int, error) {
	n := 0
	var errs []error
	for _, dir := range outDirs {
		c, err := removeTemps(dir)
		n += c
		if err != nil {
			errs = append(errs, err)
		}
	}
	c, err := restoreTaken(inputDir)
	n += c
	if err != nil {
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

func removeTemps(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("recover %s: %w", dir, err)
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || !tempName.MatchString(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		ok, err := withFreeLock(path, func() error { return os.Remove(path) })
		if err != nil {
			return n, fmt.Errorf("recover %s: %w", path, err)
		}
		if ok {
			n++
		}
	}
	if n > 0 {
		return n, syncDir(dir)
	}
	return n, nil
}

func restoreTaken(inputDir string) (int, error) {
	out := filepath.Join(inputDir, outDir)
	ops, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("recover %s: %w", out, err)
	}
	n := 0
	for _, e := range ops {
		op := filepath.Join(out, e.Name())
		if !e.IsDir() {
			continue
		}
		_, err := withFreeLock(op, func() error {
			taken, err := os.ReadDir(op)
			if err != nil {
				return err
			}
			for _, t := range taken {
				if err := restore(filepath.Join(op, t.Name()), inputDir, t.Name()); err != nil {
					return err
				}
				n++
			}
			if err := os.Remove(op); err != nil {
				return err
			}
			if err := syncDir(inputDir); err != nil {
				return err
			}
			return syncDir(out)
		})
		if err != nil {
			return n, fmt.Errorf("recover %s: %w", op, err)
		}
	}
	return n, nil
}

// withFreeLock runs fn while holding path's flock, if no one else holds it; it reports
// whether fn ran. A path removed meanwhile is skipped.
func withFreeLock(path string, fn func() error) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// Locked after its owner removed it (and perhaps a new one took the name): not ours.
	fi, err1 := f.Stat()
	cur, err2 := os.Lstat(path)
	if err1 != nil || err2 != nil || !os.SameFile(fi, cur) {
		return false, nil
	}
	return true, fn()
}
