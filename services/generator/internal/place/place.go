// Package place puts files into a watched directory atomically: a file is written under
// a dotfile name in the same directory, synced, and renamed to its final name, so a
// reader listing *.csv sees a file whole or not at all.
package place

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Name is "<instance>-<seq, 8 digits>-<unix nanos>.csv": unique across replicas (the
// instance) and across restarts of one replica (the clock), ordered within a run (seq).
func Name(instance string, seq uint64, t time.Time) string {
	s := strconv.FormatUint(seq, 10)
	if len(s) < 8 {
		s = strings.Repeat("0", 8-len(s)) + s
	}
	return instance + "-" + s + "-" + strconv.FormatInt(t.UnixNano(), 10) + ".csv"
}

// TmpName is the dotfile a file is written under: readers of the contract ignore
// dotfiles, and it lives in the target directory so the rename cannot cross devices.
func TmpName(name string) string { return "." + name + ".tmp" }

// CheckInstance says whether s can start a file name: letters, digits, '.', '_', '-',
// not starting with '.' (a dotfile would be ignored by readers).
func CheckInstance(s string) error {
	if s == "" {
		return errors.New("instance is empty")
	}
	if len(s) > 128 {
		return fmt.Errorf("instance %q is longer than 128 characters", s)
	}
	if s[0] == '.' || s[0] == '-' {
		return fmt.Errorf("instance %q must not start with %q", s, s[0])
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("instance %q: only letters, digits, '.', '_' and '-' may appear in a file name", s)
		}
	}
	return nil
}

// File is a file being written; it becomes visible under its name on Commit.
type File struct {
	f         *os.File
	tmp, path string
	n         int64
}

// Create starts dir/name, writing to its dotfile.
func Create(dir, name string) (*File, error) {
	path := filepath.Join(dir, name)
	tmp := filepath.Join(dir, TmpName(name))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	return &File{f: f, tmp: tmp, path: path}, nil
}

// Path is where the file will be placed.
func (p *File) Path() string { return p.path }

// Write appends b to the (still hidden) file.
func (p *File) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", p.tmp, err)
	}
	return n, nil
}

// Size is the number of bytes written so far.
func (p *File) Size() int64 { return p.n }

// Commit syncs the file (so a crash after the rename cannot leave a short file under
// the final name), closes it and renames it into place. On failure the dotfile is
// removed: nothing half-placed stays behind.
func (p *File) Commit() error {
	if err := p.f.Sync(); err != nil {
		p.Abort()
		return fmt.Errorf("sync %s: %w", p.tmp, err)
	}
	if err := p.f.Close(); err != nil {
		_ = os.Remove(p.tmp)
		return fmt.Errorf("close %s: %w", p.tmp, err)
	}
	if err := os.Rename(p.tmp, p.path); err != nil {
		_ = os.Remove(p.tmp)
		return fmt.Errorf("place %s: %w", p.path, err)
	}
	return nil
}

// Abort drops the file.
func (p *File) Abort() {
	_ = p.f.Close()
	_ = os.Remove(p.tmp)
}

// RemoveStale deletes the dotfiles a killed run of this instance left in dir and
// returns their names. Other instances' dotfiles are theirs: they may be writing.
func RemoveStale(dir, instance string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "."+instance+"-*.tmp"))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("remove stale %s: %w", m, err)
		}
		removed = append(removed, filepath.Base(m))
	}
	return removed, nil
}

// Writable reports whether dir exists, is a directory and may be written by this
// process (a read-only mount or missing permission is an error).
func Writable(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := syscall.Access(dir, 0x2 /* W_OK */); err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	return nil
}
