package load

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
)

var (
	errGone = errors.New("file gone")
	// errNotClaimed: the path does not name the regular file that was claimed.
	errNotClaimed = errors.New("not the regular file that was claimed")
)

// openClaimed opens the file f names for reading, and only if it is the regular file the
// queue saw: O_NOFOLLOW so a symlink is never followed, O_NONBLOCK so a FIFO or device
// put there cannot block the open, then fstat of the descriptor itself (not the path,
// which may change again) for its type and identity. Any other error is the operating
// system's (EMFILE, EIO, EACCES, ESTALE...), which says nothing of the content.
func openClaimed(f queue.File) (*os.File, os.FileInfo, error) {
	fd, err := syscall.Open(f.Path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil, nil, errGone
	case errors.Is(err, syscall.ELOOP):
		return nil, nil, fmt.Errorf("open %s: a symlink: %w", f.Path, errNotClaimed)
	case err != nil:
		return nil, nil, fmt.Errorf("open %s: %w", f.Path, err)
	}
	file := os.NewFile(uintptr(fd), f.Path)
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, fmt.Errorf("fstat %s: %w", f.Path, err)
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, nil, fmt.Errorf("open %s: mode %s: %w", f.Path, fi.Mode().Type(), errNotClaimed)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && f.Ino != 0 && (st.Ino != f.Ino || uint64(st.Dev) != f.Dev) { //nolint:unconvert
		file.Close()
		return nil, nil, fmt.Errorf("open %s: another file (inode %d, claimed %d): %w", f.Path, st.Ino, f.Ino, errNotClaimed)
	}
	// Regular files never block; clear O_NONBLOCK anyway so reads behave as usual.
	_ = syscall.SetNonblock(fd, false)
	return file, fi, nil
}

// fileSHA256 hashes a file (only needed when its name is already in the ledger) and
// returns the identity of what it read.
func fileSHA256(f queue.File) (string, os.FileInfo, error) {
	file, fi, err := openClaimed(f)
	if err != nil {
		return "", nil, err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), fi, nil
}
