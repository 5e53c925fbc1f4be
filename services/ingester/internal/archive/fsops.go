package archive

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// outDir is the directory in the input directory where a name is taken before its file
// is unlinked. A dotfile, so the queue never considers it.
const outDir = ".ecomstream-out"

// testHook, when set by a test, is called at the named points of a move so that a test
// can kill the process there: "copying" (between chunks of a cross-file-system copy),
// "archived" (the destination holds the file, the source is still in place), "taken" (the
// source name was renamed into the private directory, not yet checked or unlinked).
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// syncDir makes the entries of dir durable. File systems that cannot fsync a directory
// (EINVAL) give no stronger guarantee to ask for.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// mkdirDurable creates dir (and its parents) if missing, with the new entries durable.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// removeDurable unlinks path and fsyncs its directory.
func removeDurable(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeDurable replaces path with data (or, with noReplace, creates it: EEXIST if it
// exists): a fsynced temporary renamed into place, then the directory fsynced, so path
// never holds a part of data.
func writeDurable(path string, data []byte, noReplace bool) error {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, filepath.Base(path))
	if err != nil {
		return err
	}
	defer tmp.discard()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	rename := os.Rename
	if noReplace {
		rename = renameNoReplace
	}
	if err := rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// lockedFile is a temporary file held under flock(2) while in use, so that Recover in
// another process leaves it alone; a crashed holder's lock is released by the kernel.
type lockedFile struct{ *os.File }

// tempPrefixMax keeps ".<prefix>.<digits>.tmp" within maxName.
const tempPrefixMax = maxName - 20

// createTemp creates and locks ".<name>.<digits>.tmp" in dir (the name cut to fit).
func createTemp(dir, name string) (*lockedFile, error) {
	f, err := os.CreateTemp(dir, "."+cut(name, tempPrefixMax)+".*.tmp")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &lockedFile{f}, nil
}

// discard removes the temporary if it is still there, then releases it.
func (t *lockedFile) discard() {
	os.Remove(t.Name())
	t.Close()
}

// renameNoReplace renames old to new unless new exists (EEXIST). Where the file system
// lacks RENAME_NOREPLACE, link and unlink give the same guarantee for files.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if err = os.Link(old, new); err == nil {
			return os.Remove(old)
		}
		return err
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

// opDir is a private directory, locked while in use, in which one move out takes the
// source name.
type opDir struct {
	input, path string
	f           *os.File
}

func newOpDir(inputDir string) (*opDir, error) {
	out := filepath.Join(inputDir, outDir)
	if err := mkdirDurable(out); err != nil {
		return nil, err
	}
	var b [8]byte
	rand.Read(b[:])
	path := filepath.Join(out, hex.EncodeToString(b[:]))
	if err := os.Mkdir(path, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.Remove(path)
		return nil, err
	}
	return &opDir{input: inputDir, path: path, f: f}, nil
}

// close removes the (empty) directory, releases it and makes the move out durable by
// fsyncing the input directory (the name taken, or put back). All changes are made before
// that fsync, so that a journalling file system commits them together. The private
// directory's parent is not fsynced: a journal commits the unlink and rmdir with the
// rename, and where it does not, losing them leaves a file that Recover puts back and
// the ledger moves out again — a repeat, never a loss — at the cost of one device flush
// per move saved.
func (o *opDir) close() error {
	defer o.f.Close()
	if err := os.Remove(o.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(o.input)
}

// taking is a source name taken into a private directory: whatever the name held at
// the instant of the rename, checked against the loaded version.
type taking struct {
	op          *opDir
	path, taken string // the source name and where its file is now
	got         Identity
}

// take renames path into a new private directory and checks that it took the version
// want describes. ErrGone if the name held nothing; ErrChanged if it held another version,
// which is put back (the identity of what it took is returned with it).
func take(path string, want Identity) (*taking, Identity, error) {
	op, err := newOpDir(filepath.Dir(path))
	if err != nil {
		return nil, Identity{}, fmt.Errorf("take %s: %w", path, err)
	}
	t := &taking{op: op, path: path, taken: filepath.Join(op.path, filepath.Base(path))}
	if err := os.Rename(path, t.taken); err != nil {
		op.close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Identity{}, gone(path, err)
		}
		return nil, Identity{}, fmt.Errorf("take %s: %w", path, err)
	}
	// Not fsynced yet: a crash now leaves the file either back at its name or in the
	// private directory, and both are safe; the move's last step fsyncs.
	hook("taken")
	fi, err := os.Lstat(t.taken)
	if err != nil {
		op.close()
		return nil, Identity{}, fmt.Errorf("take %s: taken file vanished: %w", path, err)
	}
	t.got = IdentityOf(fi)
	if !fi.Mode().IsRegular() || !want.matches(t.got) {
		return nil, t.got, t.putBack(fmt.Errorf("take %s: %w", path, ErrChanged))
	}
	return t, t.got, nil
}

// putBack restores the taken file and returns cause (or the restore's failure).
func (t *taking) putBack(cause error) error {
	if err := restore(t.taken, filepath.Dir(t.path), filepath.Base(t.path)); err != nil {
		t.op.f.Close()
		return fmt.Errorf("%w; putting it back failed, Recover will: %v", cause, err)
	}
	if err := t.op.close(); err != nil {
		return fmt.Errorf("%w (private directory: %v)", cause, err)
	}
	return cause
}

// done removes the emptied private directory.
func (t *taking) done() error {
	if err := t.op.close(); err != nil {
		return fmt.Errorf("moved %s, but not its private directory: %w", t.path, err)
	}
	return nil
}

// unlinkIf removes path only if it is the version want describes: it takes the name,
// then unlinks what it took. It returns the identity of what it took.
func unlinkIf(path string, want Identity) (Identity, error) {
	t, got, err := take(path, want)
	if err != nil {
		return got, err
	}
	if err := os.Remove(t.taken); err != nil {
		return got, t.putBack(fmt.Errorf("remove %s: %w", path, err))
	}
	return got, t.done()
}

// restore renames taken back into dir under name, or under a restored name if name has
// been reused meanwhile: a newer version is never replaced. The caller fsyncs dir.
func restore(taken, dir, name string) error {
	for k := 0; ; k++ {
		dst := filepath.Join(dir, name)
		if k > 0 {
			dst = filepath.Join(dir, restoredName(name, k-1))
		}
		err := renameNoReplace(taken, dst)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return err // made durable by the caller (opDir.close, Recover)
	}
}
