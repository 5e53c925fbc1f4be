package ops

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const failedAbout = `Usage: ingester failed [flags]

The files the ingester rejected as a whole, newest first: from the ledger (outcome
failed, with the reason recorded in rejected_records) and from the failed directory
(with its .reason.txt), each with its first rejected lines, escaped and shortened.
With a bucket source, the objects under INGESTER_S3_FAILED_PREFIX with their .reason.txt
objects instead of the failed directory (the first lines of an object come from a ranged
read, decompressed when it is .csv.gz or .csv.zst). NAME is what ` + "`ingester retry NAME`" + `
takes once the cause is fixed.`

type failedFlags struct {
	JSON  bool          `flag:"json" default:"false" desc:"print JSON instead of text"`
	Since time.Duration `flag:"since" default:"24h" desc:"files that failed within this"`
	Limit int           `flag:"limit" default:"20" desc:"at most this many files"`
	Lines int           `flag:"lines" default:"3" desc:"rejected lines shown per file"`
}

// Failed-file output bounds: enough to recognise a line, never a whole binary file.
const (
	maxLineShown   = 200
	maxReasonShown = 500
	maxReasonFile  = 4096
	maxHeadRead    = 64 << 10
)

// FailedFile is one failed file.
type FailedFile struct {
	// Name is the file's name in the failed directory, which `ingester retry` takes;
	// empty when it is no longer there (retried or removed).
	Name       string    `json:"name"`
	LedgerName string    `json:"ledger_name,omitempty"` // the name it was ingested under
	SHA256     string    `json:"sha256,omitempty"`
	FailedAt   time.Time `json:"failed_at"`
	Instance   string    `json:"instance,omitempty"`
	Bytes      int64     `json:"bytes"`
	Reason     string    `json:"reason"` // the stable code, e.g. missing_columns
	Message    string    `json:"message"`
	Lines      []Line    `json:"lines"`
	// LinesFrom says where Lines come from: rejected_records, or the head of the file.
	LinesFrom string `json:"lines_from,omitempty"`
}

// Line is one rejected line, escaped and shortened.
type Line struct {
	Number int64  `json:"number"`
	Reason string `json:"reason,omitempty"`
	Text   string `json:"text"`
}

func runFailed(ctx context.Context, e *env, f any, args []string) error {
	flags := f.(*failedFlags)
	switch {
	case len(args) > 0:
		return usagef("unexpected argument %q", args[0])
	case flags.Since <= 0:
		return usagef("--since must be > 0")
	case flags.Limit < 1:
		return usagef("--limit must be >= 1")
	case flags.Lines < 0 || flags.Lines > 100:
		return usagef("--lines must be 0 to 100")
	}
	files, err := e.failed(ctx, flags.Since, flags.Limit, flags.Lines)
	if err != nil {
		return err
	}
	if flags.JSON {
		return writeJSON(e.stdout, files)
	}
	e.writeFailed(files, flags.Since)
	return nil
}

func (e *env) failed(ctx context.Context, since time.Duration, limit, lines int) ([]FailedFile, error) {
	pool, at, err := e.dbNow(ctx)
	if err != nil {
		return nil, err
	}
	// The whole-file reason is the line-0 row written in the same transaction as the
	// ledger row: the newest one at or before the commit (a name may have failed before).
	rows, err := pool.Query(ctx, `
		SELECT f.file_name, f.sha256, f.committed_at, f.ingester_instance, f.bytes,
		       coalesce(r.reason, ''), coalesce(left(r.message, $3), ''), r.rejected_at
		FROM ingested_files f
		LEFT JOIN LATERAL (
			SELECT reason, message, rejected_at FROM rejected_records
			WHERE source_file = f.file_name AND line_number = 0 AND rejected_at <= f.committed_at
			ORDER BY rejected_at DESC LIMIT 1) r ON true
		WHERE f.outcome = 'failed' AND f.committed_at > $4::timestamptz - make_interval(secs => $1)
		ORDER BY f.committed_at DESC LIMIT $2`, since.Seconds(), limit, maxReasonShown, at)
	if err != nil {
		return nil, fmt.Errorf("read the ledger: %w", noLedger(err))
	}
	var out []FailedFile
	var txTimes []*time.Time
	for rows.Next() {
		var ff FailedFile
		var at *time.Time
		if err := rows.Scan(&ff.LedgerName, &ff.SHA256, &ff.FailedAt, &ff.Instance, &ff.Bytes, &ff.Reason, &ff.Message, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the ledger: %w", err)
		}
		out = append(out, ff)
		txTimes = append(txTimes, at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	for i := range out {
		if txTimes[i] == nil || lines == 0 {
			continue
		}
		// Rows of one transaction share rejected_at (now()): this version's lines only.
		if out[i].Lines, err = rejectedLines(ctx, pool, out[i].LedgerName, *txTimes[i], lines); err != nil {
			return nil, err
		}
		if len(out[i].Lines) > 0 {
			out[i].LinesFrom = "rejected_records"
		}
	}

	src := e.src()
	inDir, err := src.failedFiles(ctx, e.now().Add(-since))
	if err != nil {
		return nil, err
	}
	matchDir(out, inDir)
	for _, d := range inDir {
		if !d.matched {
			out = append(out, FailedFile{Name: d.name, SHA256: d.sha, FailedAt: d.at, Bytes: d.size, Reason: d.reason, Message: d.message})
		}
	}
	if out == nil {
		out = []FailedFile{} // JSON [] rather than null
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FailedAt.After(out[j].FailedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		ff := &out[i]
		if lines > 0 && !hasText(ff.Lines) && ff.Name != "" {
			if ff.Lines, err = src.head(ctx, ff.Name, lines); err != nil {
				return nil, err
			}
			ff.LinesFrom = "file"
		}
		if ff.Lines == nil {
			ff.Lines = []Line{}
		}
		ff.Reason, ff.Message = printable(ff.Reason, 64), printable(ff.Message, maxReasonShown)
	}
	return out, nil
}

func hasText(lines []Line) bool {
	for _, l := range lines {
		if l.Text != "" {
			return true
		}
	}
	return false
}

func rejectedLines(ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, name string, at time.Time, n int) ([]Line, error) {
	rows, err := pool.Query(ctx, `
		SELECT line_number, reason, left(raw_line, $4) FROM rejected_records
		WHERE source_file = $1 AND rejected_at = $2 ORDER BY line_number LIMIT $3`, name, at, n, maxLineShown+1)
	if err != nil {
		return nil, fmt.Errorf("rejected lines of %s: %w", name, err)
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Line, error) {
		var l Line
		err := r.Scan(&l.Number, &l.Reason, &l.Text)
		l.Reason, l.Text = printable(l.Reason, 64), printable(l.Text, maxLineShown)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("rejected lines of %s: %w", name, err)
	}
	return lines, nil
}

// dirFile is a file found in the failed directory.
type dirFile struct {
	name, original  string // original: the name it failed under, per its reason file
	sha             string
	size            int64
	at              time.Time
	reason, message string
	matched         bool
}

// isFailedFile tells a failed file from its reason and from temporaries.
func isFailedFile(name string) bool {
	return !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, reasonSuffix)
}

const reasonSuffix = ".reason.txt"

// failedFiles lists the failed directory's files that failed after since (the time of
// their reason file, else their own).
func (d dirStore) failedFiles(_ context.Context, since time.Time) ([]*dirFile, error) {
	ents, err := os.ReadDir(d.s.FailedDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed directory %s: %w", d.s.FailedDir, err)
	}
	dir := d.s.FailedDir
	var out []*dirFile
	for _, de := range ents {
		if !isFailedFile(de.Name()) || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		f := &dirFile{name: de.Name(), original: de.Name(), size: fi.Size(), at: fi.ModTime()}
		path := filepath.Join(dir, f.name)
		if rfi, err := os.Lstat(path + reasonSuffix); err == nil && rfi.Mode().IsRegular() {
			f.at = rfi.ModTime()
			f.reason, f.message, f.original = readReason(path+reasonSuffix, f.name)
		}
		if f.at.Before(since) {
			continue
		}
		if f.sha, err = fileSHA256(path); err != nil {
			f.sha = ""
		}
		out = append(out, f)
	}
	return out, nil
}

// readReason reads a .reason.txt: "code: message" on its first line and, when the file
// was stored under another name than it failed under, a line `file: "NAME"`.
func readReason(path, name string) (reason, message, original string) {
	original = name
	f, err := os.Open(path)
	if err != nil {
		return "", "", original
	}
	defer f.Close()
	return parseReason(f, name)
}

// parseReason reads a reason's text (at most maxReasonFile bytes of it).
func parseReason(r io.Reader, name string) (reason, message, original string) {
	original = name
	sc := bufio.NewScanner(io.LimitReader(r, maxReasonFile))
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first {
			reason, message, _ = strings.Cut(line, ": ")
			continue
		}
		if q, ok := strings.CutPrefix(line, "file: "); ok {
			if s, err := strconv.Unquote(q); err == nil {
				original = s
			}
		}
	}
	return reason, message, original
}

// matchDir pairs ledger rows with the failed directory's files: the same bytes (sha256)
// under the name it failed under, else the same bytes under another name (the failed
// directory never overwrites, so a second failure of a name is stored as name.1.csv),
// else, for a file that could not be read, the name alone.
func matchDir(ledger []FailedFile, dir []*dirFile) {
	try := func(ok func(ff *FailedFile, d *dirFile) bool) {
		for i := range ledger {
			ff := &ledger[i]
			if ff.Name != "" {
				continue
			}
			for _, d := range dir {
				if !d.matched && ok(ff, d) {
					d.matched, ff.Name = true, d.name
					if ff.Reason == "" {
						ff.Reason, ff.Message = d.reason, d.message
					}
					break
				}
			}
		}
	}
	try(func(ff *FailedFile, d *dirFile) bool { return d.sha == ff.SHA256 && d.original == ff.LedgerName })
	try(func(ff *FailedFile, d *dirFile) bool { return d.sha != "" && d.sha == ff.SHA256 })
	try(func(ff *FailedFile, d *dirFile) bool { return d.original == ff.LedgerName && d.sha != ff.SHA256 })
}

// head returns the first n lines of a failed file, escaped and shortened, reading at
// most maxHeadRead bytes: a failed file may be anything, binary included.
func (d dirStore) head(_ context.Context, name string, n int) ([]Line, error) {
	path := filepath.Join(d.s.FailedDir, name)
	f, err := openNoFollow(path)
	if errors.Is(err, os.ErrNotExist) {
		return []Line{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxHeadRead))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return linesOf(buf, n), nil
}

// linesOf splits the first n lines off buf, escaped and shortened.
func linesOf(buf []byte, n int) []Line {
	lines := []Line{}
	for i := 1; i <= n && len(buf) > 0; i++ {
		line, rest, _ := strings.Cut(string(buf), "\n")
		lines = append(lines, Line{Number: int64(i), Text: printable(strings.TrimSuffix(line, "\r"), maxLineShown)})
		buf = []byte(rest)
	}
	return lines
}

func fileSHA256(path string) (string, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return readerSHA256(f)
}

func readerSHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func (e *env) writeFailed(files []FailedFile, since time.Duration) {
	w := e.stdout
	if len(files) == 0 {
		fmt.Fprintf(w, "no failed files in the last %s\n", since)
		return
	}
	for i, ff := range files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		name := ff.Name
		if name == "" {
			name = ff.LedgerName
		}
		fmt.Fprintf(w, "%s  failed %s", printable(name, 200), ff.FailedAt.UTC().Format(time.RFC3339))
		if ff.Instance != "" {
			fmt.Fprintf(w, " on %s", printable(ff.Instance, 64))
		}
		fmt.Fprintf(w, " (%s)\n", bytesText(ff.Bytes))
		if ff.LedgerName != "" && ff.LedgerName != ff.Name && ff.Name != "" {
			fmt.Fprintf(w, "  ingested as  %s\n", printable(ff.LedgerName, 200))
		}
		if ff.Reason == "" {
			ff.Reason, ff.Message = "(not recorded)", "no line-0 row in rejected_records and no .reason.txt"
		}
		fmt.Fprintf(w, "  reason       %s: %s\n", ff.Reason, ff.Message)
		for _, l := range ff.Lines {
			label := fmt.Sprintf("line %d", l.Number)
			if ff.LinesFrom == "file" {
				label = fmt.Sprintf("file line %d", l.Number)
			}
			fmt.Fprintf(w, "  %-12s %s\n", label, l.Text)
		}
		switch {
		case ff.Name == "":
			fmt.Fprintf(w, "  not in %s any more (retried or removed)\n", printable(e.src().failedPlace(), 256))
		case ff.LedgerName == "":
			fmt.Fprintf(w, "  in %s only (no ledger row)\n", printable(e.src().failedPlace(), 256))
			fmt.Fprintf(w, "  after a fix:  ingester retry %s\n", shellWord(ff.Name))
		default:
			fmt.Fprintf(w, "  after a fix:  ingester retry %s\n", shellWord(ff.Name))
		}
	}
}

// shellWord quotes a name for a shell when it needs it (and escapes it for the terminal).
func shellWord(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+", r))
	}) < 0 {
		return s
	}
	if p := printable(s, 200); p == s {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return printable(s, 200)
}
