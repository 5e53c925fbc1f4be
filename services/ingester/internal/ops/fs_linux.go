package ops

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openNoFollow opens path for reading unless it is a symbolic link (O_NOFOLLOW) or would
// block (a FIFO: O_NONBLOCK).
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// renameNoReplace renames src to dst unless dst exists (os.ErrExist). A rename is what
// inotify reports as IN_MOVED_TO, so the ingester reads the file at once.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return linkThenRemove(src, dst) // a file system without RENAME_NOREPLACE
	}
	if errors.Is(err, unix.EEXIST) {
		return os.ErrExist
	}
	return err
}

// lockFile takes an exclusive flock on f, failing at once if another process holds it.
func lockFile(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}
