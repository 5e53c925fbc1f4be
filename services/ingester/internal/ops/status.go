package ops

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
)

const statusAbout = `Usage: ingester status [flags]

What the ingester has to do and what it did: the files waiting in the input directory
(count, bytes, age of the oldest), each replica's last commit and the files and rows it
committed in the last minute and hour, the files that failed in the last hour. With a
bucket source (INGESTER_SOURCE=s3://BUCKET/PREFIX, reached through the AWS_* variables
as the ingester reaches it) the objects under the prefix that the ingester would take
and the objects under INGESTER_S3_FAILED_PREFIX, instead of the directories. Readable
text, or --json for scripts. Exit status 1 when the database, a directory or the bucket
cannot be read.`

type statusFlags struct {
	JSON     bool          `flag:"json" default:"false" desc:"print JSON instead of text"`
	Replicas time.Duration `flag:"replicas-since" default:"24h" desc:"list the replicas that committed within this"`
}

// Backlog is what waits in the input directory or under the bucket's prefix: the files the
// ingester would take (its own eligibility rule, event.IsInputFileName, and for a bucket
// the source's, objstore.Location.Takes), their bytes and the oldest by modification time.
type Backlog struct {
	Dir              string  `json:"dir"`
	Files            int64   `json:"files"`
	Bytes            int64   `json:"bytes"`
	OldestFile       string  `json:"oldest_file,omitempty"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

// Replica is one ingester instance's recent commits, as the ledger records them.
type Replica struct {
	Instance             string    `json:"instance"`
	LastCommit           time.Time `json:"last_commit"`
	LastCommitAgeSeconds float64   `json:"last_commit_age_seconds"`
	FilesLastMinute      int64     `json:"files_last_minute"`
	RowsLastMinute       int64     `json:"rows_last_minute"`
	FilesLastHour        int64     `json:"files_last_hour"`
	RowsLastHour         int64     `json:"rows_last_hour"`
	FailedLastHour       int64     `json:"failed_last_hour"`
}

// Status is the output of `ingester status`.
type Status struct {
	Backlog          Backlog   `json:"backlog"`
	Replicas         []Replica `json:"replicas"`
	ReplicasSince    string    `json:"replicas_since"`
	LatestCommit     *Replica  `json:"latest_commit,omitempty"` // when no replica is in the window
	FailedLastHour   int64     `json:"failed_last_hour"`
	RejectedRowsHour int64     `json:"rejected_rows_last_hour"`
	FailedDir        string    `json:"failed_dir"`
	FailedDirFiles   int64     `json:"failed_dir_files"`
}

func runStatus(ctx context.Context, e *env, f any, args []string) error {
	flags := f.(*statusFlags)
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	if flags.Replicas <= 0 {
		return usagef("--replicas-since must be > 0")
	}
	st, err := e.status(ctx, flags.Replicas)
	if err != nil {
		return err
	}
	if flags.JSON {
		return writeJSON(e.stdout, st)
	}
	st.write(e)
	return nil
}

func (e *env) status(ctx context.Context, since time.Duration) (*Status, error) {
	src := e.src()
	st := &Status{ReplicasSince: since.String(), FailedDir: src.failedPlace(), Replicas: []Replica{}}
	var err error
	if st.Backlog, err = src.pending(ctx, e.now()); err != nil {
		return nil, err
	}
	if st.FailedDirFiles, err = src.countFailed(ctx); err != nil {
		return nil, err
	}
	// The database's clock decides "the last minute": the ledger's times are its own.
	pool, at, err := e.dbNow(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `
		SELECT ingester_instance, max(committed_at), extract(epoch FROM $2::timestamptz - max(committed_at))::float8,
		       count(*) FILTER (WHERE committed_at > $2::timestamptz - interval '1 minute'),
		       coalesce(sum(records_total) FILTER (WHERE committed_at > $2::timestamptz - interval '1 minute'), 0),
		       count(*) FILTER (WHERE committed_at > $2::timestamptz - interval '1 hour'),
		       coalesce(sum(records_total) FILTER (WHERE committed_at > $2::timestamptz - interval '1 hour'), 0),
		       count(*) FILTER (WHERE committed_at > $2::timestamptz - interval '1 hour' AND outcome = 'failed')
		FROM ingested_files WHERE committed_at > $2::timestamptz - make_interval(secs => $1)
		GROUP BY ingester_instance ORDER BY max(committed_at) DESC`, since.Seconds(), at)
	if err != nil {
		return nil, fmt.Errorf("read the ledger: %w", noLedger(err))
	}
	for rows.Next() {
		var r Replica
		if err := rows.Scan(&r.Instance, &r.LastCommit, &r.LastCommitAgeSeconds, &r.FilesLastMinute, &r.RowsLastMinute,
			&r.FilesLastHour, &r.RowsLastHour, &r.FailedLastHour); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the ledger: %w", err)
		}
		st.Replicas = append(st.Replicas, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	if err := pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE outcome = 'failed'), coalesce(sum(records_rejected), 0)
		FROM ingested_files WHERE committed_at > $1::timestamptz - interval '1 hour'`, at).Scan(&st.FailedLastHour, &st.RejectedRowsHour); err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	if len(st.Replicas) == 0 {
		var r Replica
		err := pool.QueryRow(ctx, `SELECT ingester_instance, committed_at, extract(epoch FROM $1::timestamptz - committed_at)::float8
			FROM ingested_files ORDER BY committed_at DESC LIMIT 1`, at).Scan(&r.Instance, &r.LastCommit, &r.LastCommitAgeSeconds)
		if err == nil {
			st.LatestCommit = &r
		} else if !isNoRows(err) {
			return nil, fmt.Errorf("read the ledger: %w", err)
		}
	}
	return st, nil
}

// pending measures the backlog of the input directory at now.
func (d dirStore) pending(_ context.Context, now time.Time) (Backlog, error) {
	dir := d.s.InputDir
	b := Backlog{Dir: dir}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return b, fmt.Errorf("backlog of %s: %w", dir, err)
	}
	var oldest time.Time
	for _, de := range ents {
		if !de.Type().IsRegular() || !event.IsInputFileName(de.Name()) {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue // taken by an ingester since the listing: no longer pending
		}
		b.Files++
		b.Bytes += fi.Size()
		if oldest.IsZero() || fi.ModTime().Before(oldest) {
			oldest, b.OldestFile = fi.ModTime(), de.Name()
		}
	}
	if !oldest.IsZero() {
		b.OldestAgeSeconds = max(now.Sub(oldest).Seconds(), 0)
	}
	return b, nil
}

// countFailed counts the failed files (not their reasons, not dotfiles).
func (d dirStore) countFailed(context.Context) (int64, error) {
	dir := d.s.FailedDir
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, nil // created by the ingester at its first start
	}
	if err != nil {
		return 0, fmt.Errorf("failed directory %s: %w", dir, err)
	}
	var n int64
	for _, de := range ents {
		if isFailedFile(de.Name()) && de.Type().IsRegular() {
			n++
		}
	}
	return n, nil
}

func (st *Status) write(e *env) {
	w := e.stdout
	b := st.Backlog
	fmt.Fprintf(w, "backlog   %s, %s waiting in %s", plural(b.Files, "file"), bytesText(b.Bytes), printable(b.Dir, 256))
	if b.Files > 0 {
		fmt.Fprintf(w, "; oldest %s (%s)", age(b.OldestAgeSeconds), printable(b.OldestFile, 120))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "failed    %s in the last hour (and %s rejected in files that were loaded); %s in %s",
		plural(st.FailedLastHour, "file"), plural(st.RejectedRowsHour, "row"), plural(st.FailedDirFiles, "file"), printable(st.FailedDir, 256))
	if st.FailedDirFiles > 0 {
		fmt.Fprint(w, ": see `ingester failed`")
	}
	fmt.Fprintln(w)
	if len(st.Replicas) == 0 {
		fmt.Fprintf(w, "replicas  none committed in the last %s", st.ReplicasSince)
		if r := st.LatestCommit; r != nil {
			fmt.Fprintf(w, "; the latest commit is %s's, %s ago (%s)", printable(r.Instance, 120), age(r.LastCommitAgeSeconds), r.LastCommit.UTC().Format(time.RFC3339))
		} else {
			fmt.Fprint(w, "; the ledger is empty")
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "replicas  %d committed in the last %s:\n", len(st.Replicas), st.ReplicasSince)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "instance\tlast commit\tago\tfiles/1m\trows/1m\tfiles/1h\trows/1h\tfailed/1h\t")
	for _, r := range st.Replicas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", printable(r.Instance, 64), r.LastCommit.UTC().Format(time.RFC3339),
			age(r.LastCommitAgeSeconds), r.FilesLastMinute, r.RowsLastMinute, r.FilesLastHour, r.RowsLastHour, r.FailedLastHour)
	}
	tw.Flush()
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// age prints seconds as a short duration.
func age(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}
