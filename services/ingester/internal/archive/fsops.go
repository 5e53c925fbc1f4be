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
// source name was renamed into the private directory, not yet checked or unlinked),
// "fsync" (a directory is fsynced).
var testHook func(point string)

func hook(point string) {
	if testHook != nil {
		testHook(point)
	}
}

// syncDir makes the entries of dir durable. File systems that cannot fsync a directory
// (EINVAL) give no stronger guarantee to ask for.
func syncDir(dir string) error {
	hook("fsync")
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

// writeSynced replaces path with data (or, with noReplace, creates it: EEXIST if it
// exists): a fsynced temporary renamed into place, so path never holds a part of data.
// dests collects the directory, whose fsync makes the new name durable.
func writeSynced(path string, data []byte, noReplace bool, dests pending) error {
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
	dests.add(dir)
	return nil
}

// pending collects the directories whose changes must be made durable at the next step,
// so that a batch pays one fsync per directory instead of one per file.
type pending map[string]struct{}

func (p pending) add(dir string) { p[dir] = struct{}{} }

func (p pending) flush() error {
	var errs []error
	for dir := range p {
		if err := syncDir(dir); err != nil {
			errs = append(errs, err)
		}
		delete(p, dir)
	}
	return errors.Join(errs...)
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

// opDir is a private directory, locked while in use, into which the source names of one
// batch are taken.
type opDir struct {
	path string
	f    *os.File
	used map[string]bool // names taken into it
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
	return &opDir{path: path, f: f, used: map[string]bool{}}, nil
}

// taker takes the source names of one batch: into one private directory per input
// directory (a name taken twice gets a directory of its own), so that a batch pays for a
// directory's creation, lock and removal once, not per file.
type taker struct {
	ops    map[string]*opDir // by input directory
	all    []*opDir
	inputs pending // the input directories to fsync at the end
}

func newTaker() *taker { return &taker{ops: map[string]*opDir{}, inputs: pending{}} }

// close removes the (emptied) private directories, releases them, then fsyncs the input
// directories (the names taken, or put back). All changes are made before that fsync, so
// that a journalling file system commits them together. The private directories' parent
// is not fsynced: a journal commits the unlinks and rmdirs with the renames, and where it
// does not, losing them leaves files that Recover puts back and the ledger moves out
// again — a repeat, never a loss — at the cost of one device flush per batch saved.
func (k *taker) close() error {
	var errs []error
	for _, op := range k.all {
		if err := os.Remove(op.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("private directory: %w", err)) // not empty: Recover's
		}
		op.f.Close()
	}
	if err := k.inputs.flush(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// taking is a source name taken into a private directory: whatever the name held at
// the instant of the rename, checked against the loaded version.
type taking struct {
	path, taken string // the source name and where its file is now
	got         Identity
}

// take renames path into a private directory and checks that it took the version want
// describes. ErrGone if the name held nothing; ErrChanged if it held another version,
// which is put back (the identity of what it took is returned with it).
func (k *taker) take(path string, want Identity) (*taking, Identity, error) {
	dir, name := filepath.Dir(path), filepath.Base(path)
	op := k.ops[dir]
	if op == nil || op.used[name] {
		var err error
		if op, err = newOpDir(dir); err != nil {
			return nil, Identity{}, fmt.Errorf("take %s: %w", path, err)
		}
		k.all = append(k.all, op)
		if k.ops[dir] == nil {
			k.ops[dir] = op
		}
	}
	op.used[name] = true
	k.inputs.add(dir)
	t := &taking{path: path, taken: filepath.Join(op.path, name)}
	if err := os.Rename(path, t.taken); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Identity{}, gone(path, err)
		}
		return nil, Identity{}, fmt.Errorf("take %s: %w", path, err)
	}
	// Not fsynced yet: a crash now leaves the file either back at its name or in the
	// private directory, and both are safe; close fsyncs.
	hook("taken")
	fi, err := os.Lstat(t.taken)
	if err != nil {
		return nil, Identity{}, fmt.Errorf("take %s: taken file vanished: %w", path, err)
	}
	t.got = IdentityOf(fi)
	if !want.matches(t.got) { // by inode (see link): a symlink moved aside is taken as itself
		return nil, t.got, t.putBack(fmt.Errorf("take %s: %w", path, ErrChanged))
	}
	return t, t.got, nil
}

// putBack restores the taken file and returns cause (or the restore's failure).
func (t *taking) putBack(cause error) error {
	if err := restore(t.taken, filepath.Dir(t.path), filepath.Base(t.path)); err != nil {
		return fmt.Errorf("%w; putting it back failed, Recover will: %v", cause, err)
	}
	return cause
}

// unlinkIf removes path only if it is the version want describes: it takes the name,
// then unlinks what it took. It returns the identity of what it took.
func (k *taker) unlinkIf(path string, want Identity) (Identity, error) {
	t, got, err := k.take(path, want)
	if err != nil {
		return got, err
	}
	if err := os.Remove(t.taken); err != nil {
		return got, t.putBack(fmt.Errorf("remove %s: %w", path, err))
	}
	return got, nil
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
