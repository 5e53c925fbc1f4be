// Package archive moves a finished file out of the input directory: into the archive, into
// the failed directory beside its reason, or away for good. It never overwrites an earlier
// file, never moves or deletes a version of the name other than the one that was loaded,
// and never loses a file to a crash.
//
// Moving out races with producers, who may rename a new version over the name at any
// moment, so no step trusts an earlier look at the name:
//
//   - Into a directory on the same file system, link(2) first: it fails instead of
//     replacing a name, and it captures whichever inode the name holds at that instant.
//     The archived inode is then compared with the one that was loaded (device, inode,
//     size, modification time); a new version is unlinked from the archive again and left
//     in place to be loaded.
//   - Onto another file system the loaded descriptor is not at hand, so the source is
//     opened again (O_NOFOLLOW|O_NONBLOCK: a FIFO swapped in cannot block us), its fstat
//     is compared with the loaded identity, and exactly that many bytes are copied into a
//     locked temporary file, which is then linked under a free name.
//   - Where link(2) refuses (EPERM: fs.protected_hardlinks and a file of another owner),
//     the source name is taken first (below) and what was taken is renamed into the
//     destination with RENAME_NOREPLACE (rename.go).
//   - The source name is removed by renaming it into a private directory
//     (incoming/.ecomstream-out/<random>/<name>, one per batch): rename takes whatever the
//     name holds at that instant, so the version taken can be checked before it is
//     unlinked, and a new version taken by mistake is renamed back (never over a yet
//     newer one).
//
// Names: an archived file keeps its name when free, then gets name.1.csv … name.99.csv,
// then names derived from its identity (so a retry finds its earlier copy in one step,
// however often the name was reused), each cut to 255 bytes with a hash of the original
// where needed (244 in the failed directory, to leave room for ".reason.txt").
//
// Crash windows, in the order the steps run. A directory is fsynced after the archive
// links or copies and the reason files, before any source is touched, because a source's
// removal must never be durable without them; and the input directory after the sources'
// renames, unlinks and the private directory's removal, all made first so that a
// journalling file system commits them at once, before the move reports success. MoveAll
// does each of these fsyncs once per directory for a whole batch. (The private
// directory's parent and the removal of a temporary on an error path are not fsynced:
// losing those changes leaves work Recover redoes, never a loss; see taker.close.)
//
//   - During the copy to another file system: a temporary ".<name>.<digits>.tmp" is left
//     in the destination. Recover removes it at start-up; it skips temporaries a live peer
//     still holds (each is flock(2)ed while in use). The source is untouched.
//   - After the archive link or copy, before the source is removed: the archived name is
//     durable (its directory was fsynced), the source is still there and is committed in
//     the ledger. The retry finds the archived copy among the names it tries (the same
//     inode, or on another file system the same size, modification time and bytes) and
//     uses it instead of making a second copy.
//   - After the reason file: it was written to a temporary, fsynced, renamed into place
//     and its directory fsynced before the source is touched, so a failed file is never
//     without its reason once its source is gone.
//   - After the source was taken into the private directory (and perhaps unlinked), before
//     the final fsync: after a reboot the name may hold the file again (the rename was
//     not yet durable); the ledger knows it as committed and it is moved out again
//     without loading. Or the file is still in the private directory: Recover renames it
//     back, with the same result — or, if a new version has taken the name meanwhile, as
//     <stem>.restored.csv, a name the ledger does not know, so it is loaded again and its
//     rows count as duplicates (events are unique by event_id). Or it is gone, as it
//     should be. A new version taken by mistake is restored and simply loaded. No row is
//     lost or inserted twice either way.
//   - After the final fsync: nothing is left, except, where the file system does not
//     journal the private directory's changes with the input directory's, an empty
//     private directory or a taken file, which Recover removes or puts back as above.
package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

var (
	// ErrGone means the source no longer exists: another replica moved it first.
	ErrGone = errors.New("file already moved")
	// ErrChanged means the name holds another version than the one that was loaded (a new
	// file renamed over it, or the same file written to). That version is left in place
	// to be loaded; the loaded one was archived only if a path is returned with it.
	ErrChanged = errors.New("file changed since it was loaded")
)

// Identity is what the loader knew about the bytes it read: fstat of the open descriptor.
// The zero Identity matches any file; pass it only where the name itself is the reason to
// move the file (a name that is not UTF-8), never for a file whose content was loaded.
type Identity struct {
	Dev, Ino uint64
	Size     int64
	ModTime  time.Time
}

// IdentityOf returns the identity in fi (from Stat or Lstat of a file on Linux); nil
// gives the zero Identity.
func IdentityOf(fi fs.FileInfo) Identity {
	if fi == nil {
		return Identity{}
	}
	id := Identity{Size: fi.Size(), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), st.Ino
	}
	return id
}

func (id Identity) known() bool { return id.Ino != 0 || !id.ModTime.IsZero() }

func (id Identity) sameInode(o Identity) bool {
	return id.Ino != 0 && id.Dev == o.Dev && id.Ino == o.Ino
}

// matches reports whether got is the version id describes; the zero Identity matches all.
func (id Identity) matches(got Identity) bool {
	if id.Ino != 0 && !id.sameInode(got) {
		return false
	}
	return id.ModTime.IsZero() || (id.Size == got.Size && id.ModTime.Equal(got.ModTime))
}

// Move moves src into dir if src still is the version want describes, keeping its name
// when free and otherwise trying name.1.csv … name.99.csv and then names derived from the
// file's identity, shortened with a hash where the file system's 255-byte limit needs it.
// It returns the destination path. ErrChanged: see its doc; the new version stays at src.
func Move(src, dir string, want Identity) (string, error) {
	r := MoveAll([]Out{{Src: src, Dir: dir, Want: want}})
	return r[0].Dst, r[0].Err
}

// Fail moves src into the failed directory dir like Move and writes the reason beside it
// as <destination>.reason.txt before the source is removed.
func Fail(src, dir string, want Identity, reason string) (string, error) {
	r := MoveAll([]Out{{Src: src, Dir: dir, Want: want, Fail: true, Reason: reason}})
	return r[0].Dst, r[0].Err
}

// Delete removes path if it still is the version want describes; a file already gone
// is not an error, another version is left in place (ErrChanged).
func Delete(path string, want Identity) error {
	err := MoveAll([]Out{{Src: path, Want: want}})[0].Err
	if errors.Is(err, ErrGone) {
		return nil
	}
	return err
}

// Out is one file to take out of the input directory.
type Out struct {
	Src    string   // the file in the input directory
	Dir    string   // the archive or failed directory; "" deletes the file
	Want   Identity // the version that was loaded
	Fail   bool     // write Reason beside the file as <destination>.reason.txt
	Reason string
}

// Result is what became of one Out: Dst is where the file went, Err is nil, ErrGone
// (another replica took it first), ErrChanged (see its doc) or an error to retry.
type Result struct {
	Dst string
	Err error
}

// MoveAll moves out the files of one batch as Move, Fail and Delete do, with the same
// checks and crash windows, but fsyncs each directory once for the whole batch rather
// than once per file: first every file is placed (links, copies, reason files) and each
// destination directory fsynced; only then are the sources taken and unlinked, and each
// input directory fsynced.
func MoveAll(outs []Out) []Result {
	res := make([]Result, len(outs))
	archived := make([]Identity, len(outs))
	decided := make([]bool, len(outs)) // no source step left to do
	dests := pending{}
	for i, o := range outs {
		if o.Dir == "" {
			archived[i] = o.Want
			continue
		}
		res[i].Dst, archived[i], res[i].Err, decided[i] = place(o, dests)
		decided[i] = decided[i] || res[i].Err != nil
	}
	if err := dests.flush(); err != nil {
		for i, o := range outs {
			if !decided[i] && o.Dir != "" {
				res[i], decided[i] = Result{Err: fmt.Errorf("archive %s: %w", o.Src, err)}, true
			}
		}
	}
	hook("archived")
	k := newTaker()
	for i, o := range outs {
		if !decided[i] {
			res[i] = removeSource(o, res[i].Dst, archived[i], k)
		}
	}
	if err := k.close(); err != nil {
		for i, o := range outs {
			if !decided[i] && res[i].Err == nil {
				res[i].Err = fmt.Errorf("moved %s, but not durably: %w", o.Src, err)
			}
		}
	}
	return res
}

// place puts o's file into its directory (and its reason beside it), not yet durably:
// dests collects the directories to fsync. decided means the source needs nothing more
// (the rename fallback moved it whole).
func place(o Out, dests pending) (dst string, archived Identity, err error, decided bool) {
	if err := mkdirDurable(o.Dir); err != nil {
		return "", Identity{}, fmt.Errorf("archive %s: %w", o.Src, err), true
	}
	limit := maxName
	if o.Fail {
		limit -= len(reasonSuffix)
	}
	dst, archived, err = link(o.Src, o.Dir, o.Want, limit, dests)
	switch {
	case errors.Is(err, syscall.EXDEV):
		dst, archived, err = copyAcross(o.Src, o.Dir, o.Want, limit, dests)
	case errors.Is(err, syscall.EPERM):
		dst, err = moveByRename(o.Src, o.Dir, o.Want, limit, o.Reason, o.Fail)
		return dst, Identity{}, err, true
	}
	if err != nil {
		return "", Identity{}, err, true
	}
	if o.Fail {
		if err := writeReason(dst, filepath.Base(o.Src), o.Reason, false, dests); err != nil {
			return "", Identity{}, fmt.Errorf("archive %s: %w", o.Src, err), true
		}
	}
	return dst, archived, nil, false
}

// removeSource takes o's source out of the input directory once its copy (dst, of
// identity archived) is durable, or, for a delete, once it is found to be the loaded
// version.
func removeSource(o Out, dst string, archived Identity, k *taker) Result {
	got, err := k.unlinkIf(o.Src, archived)
	switch {
	case o.Dir == "":
		return Result{Err: err}
	case errors.Is(err, ErrChanged) && got.sameInode(archived):
		// Written to since it was archived: the archived bytes were not all loaded, so the
		// archive must not keep them; the file stays at src to be loaded again.
		if uerr := undo(dst, o.Fail); uerr != nil {
			return Result{Err: fmt.Errorf("archive %s: %w (and undoing %s: %v)", o.Src, err, dst, uerr)}
		}
		return Result{Err: fmt.Errorf("archive %s: %w", o.Src, err)}
	case errors.Is(err, ErrChanged):
		// A new version took the name after ours was archived: ours is done, the new one
		// stays for loading.
		return Result{Dst: dst, Err: fmt.Errorf("archive %s: %w", o.Src, err)}
	case errors.Is(err, ErrGone): // another replica removed the source after we archived
		return Result{Dst: dst}
	case err != nil:
		return Result{Err: err}
	}
	return Result{Dst: dst}
}

// link hard-links src into dir under the first free name (or finds an earlier attempt's
// link) and checks that the inode it linked is the one that was loaded; dests collects
// dir to fsync. On EXDEV the caller copies instead. It returns the identity of what was
// archived.
func link(src, dir string, want Identity, limit int, dests pending) (string, Identity, error) {
	base := filepath.Base(src)
	key := want
	for k := 0; ; k++ {
		if k == seqNames && !key.known() {
			fi, err := os.Lstat(src)
			if err != nil {
				return "", Identity{}, gone(src, err)
			}
			key = IdentityOf(fi)
		}
		dst := filepath.Join(dir, candidate(base, k, limit, key))
		err := os.Link(src, dst)
		switch {
		case err == nil:
			dests.add(dir)
		case errors.Is(err, fs.ErrExist):
			if !earlierLink(src, dst, want) {
				continue
			}
		case errors.Is(err, fs.ErrNotExist):
			return "", Identity{}, gone(src, err)
		case errors.Is(err, syscall.EXDEV):
			return "", Identity{}, err
		default:
			return "", Identity{}, fmt.Errorf("archive %s into %s: %w", src, dir, err)
		}
		fi, err := os.Lstat(dst)
		if err != nil {
			return "", Identity{}, fmt.Errorf("archive %s: %w", src, err)
		}
		got := IdentityOf(fi)
		// The inode decides, not the type: an entry moved aside unread (a symlink, a
		// FIFO) is moved as itself, and a new version renamed over src has another inode.
		if !want.matches(got) {
			// A new version was renamed over src: it is not ours to archive.
			if err := removeDurable(dst); err != nil {
				return "", Identity{}, fmt.Errorf("archive %s: undo link of a new version: %w", src, err)
			}
			return "", Identity{}, fmt.Errorf("archive %s: %w", src, ErrChanged)
		}
		return dst, got, nil
	}
}

// earlierLink reports whether dst, an existing name, is a link an earlier attempt made of
// the loaded file (it died before removing the source).
func earlierLink(src, dst string, want Identity) bool {
	fd, err := os.Lstat(dst)
	if err != nil {
		return false
	}
	if want.Ino != 0 {
		return want.sameInode(IdentityOf(fd))
	}
	fsrc, err := os.Lstat(src)
	return err == nil && os.SameFile(fsrc, fd)
}

// gone turns ENOENT on src into ErrGone; ENOENT for anything else (the destination
// directory removed) stays an error to retry.
func gone(src string, err error) error {
	if _, serr := os.Lstat(src); errors.Is(serr, fs.ErrNotExist) {
		return ErrGone
	}
	return fmt.Errorf("archive %s: %w", src, err)
}

// copyAcross copies src into dir on another file system: exactly the loaded version's
// bytes into a locked temporary, fsynced, then linked under a free name (dests collects
// dir to fsync).
func copyAcross(src, dir string, want Identity, limit int, dests pending) (string, Identity, error) {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", Identity{}, ErrGone
		}
		if errors.Is(err, syscall.ELOOP) { // a symlink took the name
			return "", Identity{}, fmt.Errorf("archive %s: %w", src, ErrChanged)
		}
		return "", Identity{}, fmt.Errorf("archive %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", Identity{}, fmt.Errorf("archive %s: %w", src, err)
	}
	got := IdentityOf(fi)
	if !fi.Mode().IsRegular() || !want.matches(got) {
		return "", Identity{}, fmt.Errorf("archive %s: %w", src, ErrChanged)
	}
	key := want
	if !key.known() {
		key = got
	}
	base := filepath.Base(src)
	var tmp *lockedFile
	defer func() {
		if tmp != nil {
			tmp.discard()
		}
	}()
	for k := 0; ; k++ {
		dst := filepath.Join(dir, candidate(base, k, limit, key))
		if dfi, err := os.Lstat(dst); err == nil {
			if sameCopy(in, got, dst, dfi) { // an earlier attempt copied it, then died
				return dst, got, nil
			}
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", Identity{}, fmt.Errorf("archive %s: %w", src, err)
		}
		if tmp == nil {
			if tmp, err = copyToTemp(in, got, fi.Mode().Perm(), dir, base); err != nil {
				return "", Identity{}, fmt.Errorf("archive %s into %s: %w", src, dir, err)
			}
		}
		err := os.Link(tmp.Name(), dst)
		if errors.Is(err, fs.ErrExist) { // taken since the Lstat above
			k--
			continue
		}
		if err != nil {
			return "", Identity{}, fmt.Errorf("archive %s into %s: %w", src, dir, err)
		}
		// The temporary's name goes with the same fsync; if its removal is lost, Recover
		// removes it.
		tmp.discard()
		tmp = nil
		dests.add(dir)
		return dst, got, nil
	}
}

// copyToTemp copies got.Size bytes of in to a new locked temporary in dir, with in's
// permissions and modification time (so a retry can recognise the copy), and fsyncs it.
func copyToTemp(in *os.File, got Identity, perm fs.FileMode, dir, base string) (*lockedFile, error) {
	tmp, err := createTemp(dir, base)
	if err != nil {
		return nil, err
	}
	src := io.NewSectionReader(in, 0, got.Size)
	for done := int64(0); done < got.Size; {
		n, err := io.CopyN(tmp.File, src, min(copyChunk, got.Size-done))
		done += n
		if err != nil {
			tmp.discard()
			return nil, err
		}
		if done < got.Size {
			hook("copying")
		}
	}
	// The source must not have changed during the copy, or the copy is of neither version.
	if fi, err := in.Stat(); err != nil || !IdentityOf(fi).matches(got) {
		tmp.discard()
		if err == nil {
			err = ErrChanged
		}
		return nil, err
	}
	err = os.Chtimes(tmp.Name(), got.ModTime, got.ModTime)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		tmp.discard()
		return nil, err
	}
	return tmp, nil
}

const copyChunk = 4 << 20

// sameCopy reports whether dst holds exactly the bytes of in (of identity got).
func sameCopy(in *os.File, got Identity, dst string, dfi fs.FileInfo) bool {
	if !dfi.Mode().IsRegular() || dfi.Size() != got.Size || !dfi.ModTime().Equal(got.ModTime) {
		return false
	}
	d, err := os.Open(dst)
	if err != nil {
		return false
	}
	defer d.Close()
	return sameBytes(io.NewSectionReader(in, 0, got.Size), d)
}

func sameBytes(a, b io.Reader) bool {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || string(ba[:na]) != string(bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

// undo removes an archived copy (and its reason) whose source turned out to differ.
func undo(dst string, withReason bool) error {
	if withReason {
		if err := os.Remove(dst + reasonSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return removeDurable(dst)
}

const reasonSuffix = ".reason.txt"

// writeReason writes <dst>.reason.txt beside a failed file so a person looking at the
// failed directory sees why without querying the database. When the archived name had to
// be shortened, the reason file also names the original.
// With noReplace it fails (EEXIST) rather than replace an existing reason file; dests
// collects the directory to fsync.
func writeReason(dst, original, reason string, noReplace bool, dests pending) error {
	text := reason + "\n"
	if filepath.Base(dst) != original {
		text += fmt.Sprintf("file: %q\n", original)
	}
	return writeSynced(dst+reasonSuffix, []byte(text), noReplace, dests)
}
