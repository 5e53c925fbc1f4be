// Package archive moves a finished file out of the input directory without ever
// overwriting an earlier file of the same name.
package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrGone means the source no longer exists: another replica moved it first.
var ErrGone = errors.New("file already moved")

// Move moves src into dir, keeping its name when free and otherwise adding a counter
// (name.1.csv, name.2.csv, ...). link(2) fails instead of replacing an existing name, so
// two movers can never overwrite each other's file; the source is unlinked afterwards.
// When dir is on another file system the file is copied there first. It returns the
// destination path.
func Move(src, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Base(src)
	dst, err := linkFree(src, dir, base)
	if errors.Is(err, syscall.EXDEV) {
		tmp, cerr := copyInto(src, dir, base)
		if cerr != nil {
			return "", fmt.Errorf("archive %s into %s: %w", src, dir, cerr)
		}
		defer os.Remove(tmp)
		dst, err = linkFree(tmp, dir, base)
	}
	if err != nil {
		return "", err
	}
	if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return dst, fmt.Errorf("remove %s after archiving: %w", src, err)
	}
	return dst, nil
}

// linkFree links src into dir under base or the first free counted variant of it.
func linkFree(src, dir, base string) (string, error) {
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for n := 0; n < 10000; n++ {
		name := base
		if n > 0 {
			name = stem + "." + strconv.Itoa(n) + ext
		}
		dst := filepath.Join(dir, name)
		err := os.Link(src, dst)
		switch {
		case err == nil:
			return dst, nil
		case errors.Is(err, fs.ErrExist):
			if same(src, dst) { // an earlier attempt linked it but died before the unlink
				return dst, nil
			}
		case errors.Is(err, fs.ErrNotExist):
			if _, serr := os.Stat(src); errors.Is(serr, fs.ErrNotExist) {
				return "", ErrGone
			}
			return "", err
		default:
			return "", fmt.Errorf("archive %s into %s: %w", src, dir, err)
		}
	}
	return "", fmt.Errorf("archive %s: 10000 files of that name already in %s", base, dir)
}

// copyInto copies src to a synced dotfile in dir and returns its path.
func copyInto(src, dir, base string) (string, error) {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrGone
	}
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return "", err
	}
	if _, err = io.Copy(out, in); err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// Delete removes a finished file; a file already gone is not an error.
func Delete(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// WriteReason writes <file>.reason.txt beside a failed file so a person looking at the
// failed directory sees why without querying the database.
func WriteReason(failedPath, reason string) error {
	return os.WriteFile(failedPath+".reason.txt", []byte(reason+"\n"), 0o644)
}
