package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// moveByRename moves a file that link(2) refuses to link (EPERM: under
// fs.protected_hardlinks, a file of another owner that the ingester may not write) within
// one file system. It takes the source name, which checks the version, then renames what
// it took into dir under a free name; RENAME_NOREPLACE never replaces an earlier file.
//
// Crash windows: after the take, Recover puts the file back and it is moved again. A
// failed file's reason is placed under the chosen name before the file, so the file is
// never there without it; a crash between the two leaves that reason file alone (the
// retry chooses another name, as the reason's name is taken) — a stray note, nothing
// lost. After the rename, the destination directory is fsynced before the private
// directory is removed.
func moveByRename(src, dir string, want Identity, limit int, reason string, withReason bool) (string, error) {
	k := newTaker()
	dst, err := renameInto(src, dir, want, limit, reason, withReason, k)
	if ferr := k.close(); err == nil && ferr != nil {
		err = fmt.Errorf("archive %s into %s, not durably: %w", src, dir, ferr)
	}
	return dst, err
}

func renameInto(src, dir string, want Identity, limit int, reason string, withReason bool, k *taker) (string, error) {
	t, _, err := k.take(src, want)
	if err != nil {
		return "", err
	}
	key := want
	if !key.known() {
		key = t.got
	}
	base := filepath.Base(src)
	for k := 0; ; k++ {
		dst := filepath.Join(dir, candidate(base, k, limit, key))
		if _, err := os.Lstat(dst); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", t.putBack(fmt.Errorf("archive %s: %w", src, err))
		}
		if withReason {
			dests := pending{}
			err := writeReason(dst, base, reason, true, dests)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err == nil {
				err = dests.flush()
			}
			if err != nil {
				return "", t.putBack(fmt.Errorf("archive %s: %w", src, err))
			}
		}
		err := renameNoReplace(t.taken, dst)
		if err != nil && withReason {
			os.Remove(dst + reasonSuffix)
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", t.putBack(fmt.Errorf("archive %s into %s: %w", src, dir, err))
		}
		if err := syncDir(dir); err != nil {
			return "", fmt.Errorf("archive %s into %s: %w", src, dir, err)
		}
		return dst, nil
	}
}
