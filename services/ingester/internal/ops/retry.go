package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ecomstream/ecomstream/services/common/event"
)

const retryAbout = `Usage: ingester retry [flags] NAME

Puts the failed file NAME (a file in the failed directory, as ` + "`ingester failed`" + ` lists it)
back into the input directory, after its cause was fixed, to be ingested again as a new
version. The ledger's identity of a file is its name and checksum, so the same bytes
under the same name would be found already committed; the file goes back under a new
name, NAME with a retry suffix (x.csv -> x.retry1.csv, x.retry1.csv -> x.retry2.csv), which
no ledger row and no file in the ingester's directories has. The ledger keeps both
outcomes: NAME's failure and the new name's. It is placed as producers place files (a
dotfile written and synced, then renamed into place without replacing anything) and
then removed from the failed directory with its .reason.txt. The new file's modification
time, the latency origin, is the time of the retry.

With a bucket source, NAME is an object under INGESTER_S3_FAILED_PREFIX (failed/x.<etag>.csv:
the ETag the source added is dropped, so it goes back as PREFIX/x.retry1.csv). Its bytes
are written under the prefix with a PUT that never replaces an object (If-None-Match: *),
then it and its .reason.txt are deleted (the object only while it holds the bytes that
were copied). A retry that stopped half-way is finished by running it again.`

type retryFlags struct{}

func runRetry(ctx context.Context, e *env, _ any, args []string) error {
	if len(args) != 1 {
		return usagef("retry takes one NAME, the name of a file in the failed directory (see `ingester failed`); got %d arguments", len(args))
	}
	name := args[0]
	if err := checkName(name); err != nil {
		return err
	}
	src := e.src()
	newName, already, err := src.retry(ctx, name, e.ledgerNames)
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(e.stdout, "%s had already been put back as %s by a retry that stopped before it left %s; it has left it now.\n",
			printable(name, 200), printable(newName, 220), printable(src.failedPlace(), 256))
		return nil
	}
	fmt.Fprintf(e.stdout, "%s is back in %s as %s; it leaves %s. `ingester status` shows it pending until it is committed.\n",
		printable(name, 200), printable(src.inputPlace(), 256), printable(newName, 220), printable(src.failedPlace(), 256))
	return nil
}

// checkName refuses anything but a plain file name: the command must never reach a file
// outside the failed directory.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return usagef("NAME must be the name of a file in the failed directory, got %q", name)
	case strings.ContainsAny(name, `/\`) || filepath.Base(name) != name:
		return usagef("NAME must be a file name in the failed directory, not a path: %q", printable(name, 200))
	case strings.HasPrefix(name, "."):
		return usagef("%q is a dotfile (a temporary), not a failed file", printable(name, 200))
	case strings.HasSuffix(name, reasonSuffix):
		return usagef("%q is a reason file; retry takes the failed file beside it", printable(name, 200))
	case !utf8.ValidString(name):
		return usagef("%q is not valid UTF-8, which the ledger cannot record; rename it in the failed directory first", printable(name, 200))
	}
	return nil
}

// retry puts failed file name back into the input directory under a fresh name and
// removes it from the failed directory; it returns the new name.
// already says the bytes had been placed by an earlier retry that stopped half-way.
func (e dirStore) retry(ctx context.Context, name string, ledgerNames ledgerLookup) (newName string, already bool, err error) {
	if a, err := os.Stat(e.s.FailedDir); err == nil {
		if b, err := os.Stat(e.s.InputDir); err == nil && os.SameFile(a, b) {
			return "", false, usagef("INGESTER_FAILED_DIR is the input directory: nothing there is a failed file")
		}
	}
	src := filepath.Join(e.s.FailedDir, name)
	in, err := openNoFollow(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", false, fmt.Errorf("%s is not a failed file: there is no such file in %s (see `ingester failed`)", printable(name, 200), printable(e.s.FailedDir, 256))
		}
		return "", false, fmt.Errorf("%s: %w (a symbolic link or a special file is not a failed file)", printable(name, 200), err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return "", false, fmt.Errorf("%s is not a regular file, so not a failed file", printable(name, 200))
	}
	// One retry of a file at a time: a second one waits here and then finds it gone.
	if err := lockFile(in); err != nil {
		return "", false, fmt.Errorf("%s: another retry of it is running: %w", printable(name, 200), err)
	}
	if cur, err := os.Lstat(src); err != nil || !os.SameFile(fi, cur) {
		return "", false, fmt.Errorf("%s is not a failed file any more: another retry took it", printable(name, 200))
	}
	stem, ext := splitName(name)
	if !event.IsInputFileName(stem + ".retry1" + ext) {
		return "", false, fmt.Errorf("%s: the ingester does not take files named like it (%s), so a retry would never be ingested; rename it in the failed directory first",
			printable(name, 200), printable(ext, 40))
	}
	sum, err := readerSHA256(in)
	if err == nil {
		_, err = in.Seek(0, io.SeekStart)
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", src, err)
	}
	taken, done, err := ledgerNames(ctx, stem, sum)
	if err != nil {
		return "", false, err
	}
	if done == "" {
		done = e.pendingCopy(stem, ext, sum)
	}
	if done != "" {
		// An earlier retry of these bytes placed them but stopped before NAME left the
		// failed directory: finish that one rather than load the same bytes twice.
		return done, true, e.removeFailed(src, done)
	}
	tmp, err := copyToTemp(in, e.s.InputDir)
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp) // gone after a successful rename
	for n := 1; ; n++ {
		if n > 10000 {
			return "", false, fmt.Errorf("%s: no free retry name after 10000 tries", printable(name, 200))
		}
		cand := stem + ".retry" + strconv.Itoa(n) + ext
		if taken[cand] || e.onDisk(cand) {
			continue
		}
		err := renameNoReplace(tmp, filepath.Join(e.s.InputDir, cand))
		if errors.Is(err, os.ErrExist) {
			continue // placed by someone else meanwhile
		}
		if err != nil {
			return "", false, fmt.Errorf("place %s in %s: %w", cand, e.s.InputDir, err)
		}
		newName = cand
		break
	}
	if err := syncDir(e.s.InputDir); err != nil {
		return "", false, fmt.Errorf("sync %s: %w", e.s.InputDir, err)
	}
	// Only now, with the copy durable in the input directory, does it leave the failed one.
	return newName, false, e.removeFailed(src, newName)
}

// removeFailed removes a retried file and its reason from the failed directory.
func (e dirStore) removeFailed(src, placed string) error {
	if err := os.Remove(src); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s was placed as %s but could not be removed from the failed directory (a retry of it again finishes this): %w",
			printable(filepath.Base(src), 200), printable(placed, 220), err)
	}
	if err := os.Remove(src + reasonSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", src+reasonSuffix, err)
	}
	if err := syncDir(e.s.FailedDir); err != nil {
		return fmt.Errorf("sync %s: %w", e.s.FailedDir, err)
	}
	return nil
}

// pendingCopy returns the name of a retried copy of these bytes waiting in the input
// directory, if any.
func (e dirStore) pendingCopy(stem, ext, sum string) string {
	ents, err := os.ReadDir(e.s.InputDir)
	if err != nil {
		return ""
	}
	for _, de := range ents {
		n := de.Name()
		if s, x := splitName(n); s == stem && x == ext && n != stem+ext && de.Type().IsRegular() {
			if got, err := fileSHA256(filepath.Join(e.s.InputDir, n)); err == nil && got == sum {
				return n
			}
		}
	}
	return ""
}

// splitName splits a file name into the stem a retry suffix goes after and the extension
// it goes before: x.csv -> x, .csv; x.csv.gz -> x, .csv.gz; and a retried name's own
// suffix is dropped, x.retry2.csv -> x, .csv, so retries count up instead of nesting.
func splitName(name string) (stem, ext string) {
	i := strings.LastIndex(name, ".csv")
	if i <= 0 {
		i = len(name) - len(filepath.Ext(name))
	}
	stem, ext = name[:i], name[i:]
	if j := strings.LastIndex(stem, ".retry"); j > 0 {
		if _, err := strconv.Atoi(stem[j+len(".retry"):]); err == nil {
			stem = stem[:j]
		}
	}
	return stem, ext
}

// ledgerNames returns the ledger's names that start with stem + ".retry", and the one
// among them that committed these bytes (sum) as ingested, if any.
func (e *env) ledgerNames(ctx context.Context, stem, sum string) (map[string]bool, string, error) {
	pool, err := e.db(ctx)
	if err != nil {
		return nil, "", err
	}
	rows, err := pool.Query(ctx, `SELECT file_name, sha256 = $2 AND outcome = 'ingested' FROM ingested_files
		WHERE starts_with(file_name, $1)`, stem+".retry", sum)
	if err != nil {
		return nil, "", fmt.Errorf("read the ledger: %w", noLedger(err))
	}
	defer rows.Close()
	names, done := map[string]bool{}, ""
	for rows.Next() {
		var n string
		var same bool
		if err := rows.Scan(&n, &same); err != nil {
			return nil, "", fmt.Errorf("read the ledger: %w", err)
		}
		names[n] = true
		if same {
			done = n
		}
	}
	return names, done, rows.Err()
}

// onDisk reports whether name is taken in any of the ingester's directories.
func (e dirStore) onDisk(name string) bool {
	for _, d := range []string{e.s.InputDir, e.s.ArchiveDir, e.s.FailedDir} {
		if d != "" && exists(filepath.Join(d, name)) {
			return true
		}
	}
	return false
}

// copyToTemp copies in to a synced dotfile in dir (which the ingester ignores) and
// returns its path.
func copyToTemp(in *os.File, dir string) (string, error) {
	out, err := os.CreateTemp(dir, ".retry-*.tmp") // short: the final name may be near the limit
	if err != nil {
		return "", fmt.Errorf("input directory: %w", err)
	}
	if _, err = io.Copy(out, in); err == nil {
		err = out.Chmod(0o644)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("copy %s into %s: %w", in.Name(), dir, err)
	}
	return out.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// linkThenRemove is a rename that never replaces dst: link(2) fails if dst exists.
func linkThenRemove(src, dst string) error {
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ErrExist
		}
		return err
	}
	return os.Remove(src)
}
