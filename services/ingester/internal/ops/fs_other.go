//go:build !linux

package ops

import "os"

func openNoFollow(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, &os.PathError{Op: "open", Path: path, Err: os.ErrInvalid}
	}
	return os.Open(path)
}

func renameNoReplace(src, dst string) error { return linkThenRemove(src, dst) }

func lockFile(*os.File) error { return nil }
