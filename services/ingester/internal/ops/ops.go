// Package ops is what a person runs when something is off: `ingester status` (backlog,
// each replica's last commits, recent failures), `ingester failed` (failed files with
// their reasons and first rejected lines) and `ingester retry NAME` (put a failed file
// back, after a fix, to be ingested again as a new version).
//
// The commands read the ingester's own settings (the same variables and flags), only
// read the database (SELECT on the ledger and rejected_records: no role beyond the
// ingester's is needed, and nothing they do can change an outcome the ledger holds), and
// touch no file outside the input and failed directories or, with a bucket source, no
// object outside its input and failed prefixes (store.go: one interface, a directory
// and a bucket implementation, so what is printed and matched is written once). What
// they print comes from files, objects and tables that anyone could have written, so
// every such string is escaped and bounded before it reaches a terminal, and no error
// text can carry DATABASE_URL's password or an AWS key.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/db"
)

// Settings are the ingester settings the commands use.
type Settings struct {
	DatabaseURL string
	InputDir    string
	ArchiveDir  string // may be empty (on-success delete)
	FailedDir   string
	DBWait      time.Duration
	// Source is s3://BUCKET/PREFIX for a bucket source (then the directories are not
	// used, and the prefixes are the source's archive and failed prefixes); empty: the
	// directories.
	Source                          string
	S3ArchivePrefix, S3FailedPrefix string
}

// maxDBWait caps how long a command waits for PostgreSQL: a person is waiting, where the
// service's DB_WAIT is sized for a database container that starts after its clients.
const maxDBWait = 10 * time.Second

type command struct {
	about string
	flags func() any
	run   func(ctx context.Context, e *env, flags any, args []string) error
}

var commands = map[string]command{
	"status": {about: statusAbout, flags: func() any { return &statusFlags{} }, run: runStatus},
	"failed": {about: failedAbout, flags: func() any { return &failedFlags{} }, run: runFailed},
	"retry":  {about: retryAbout, flags: func() any { return &retryFlags{} }, run: runRetry},
}

// IsCommand tells whether name is one of the operator's commands.
func IsCommand(name string) bool { _, ok := commands[name]; return ok }

// usageError is a bad invocation: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// env is what a command runs with.
type env struct {
	s      Settings
	stdout io.Writer
	now    func() time.Time
	pool   *pgxpool.Pool // connected on first use
	store  store         // nil: the directories of s
	// at is the database time the ledger's windows end at; nil: the database's now().
	at *time.Time
}

// dbNow connects and returns the end of the ledger's windows ("the last hour"): the
// database's clock, whose times the ledger holds, unless a test fixed it.
func (e *env) dbNow(ctx context.Context) (*pgxpool.Pool, time.Time, error) {
	pool, err := e.db(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if e.at != nil {
		return pool, *e.at, nil
	}
	var t time.Time
	if err := pool.QueryRow(ctx, "SELECT now()").Scan(&t); err != nil {
		return nil, t, fmt.Errorf("database clock: %w", err)
	}
	return pool, t, nil
}

// Run runs command name with args; spec is the ingester's settings struct, filled from
// the environment and the flags exactly as the service fills it, and settings validates
// it and returns what the commands need. It returns the exit status: 0 done, 1 failed,
// 2 bad settings or usage.
func Run(name string, args []string, stdout, stderr io.Writer, spec any, settings func() (Settings, error)) int {
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "ingester: unknown command %q\n", name)
		return 2
	}
	flags := cmd.flags()
	pos, err := config.Command("INGESTER", spec, flags, cmd.about, args, stdout)
	if config.IsHelp(err) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ingester %s: %v\n", name, err)
		return 2
	}
	s, err := settings()
	if err == nil {
		err = s.check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "ingester %s: %s\n", name, s.scrub(err.Error()))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e := &env{s: s, stdout: stdout, now: time.Now}
	defer e.close()
	if s.Source != "" {
		b, err := newBucketStore(s)
		if err != nil {
			fmt.Fprintf(stderr, "ingester %s: %s\n", name, s.scrub(err.Error()))
			return 2
		}
		e.store = b
	}
	err = cmd.run(ctx, e, flags, pos)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ingester %s: %s\n", name, s.scrub(err.Error()))
		return 2
	default:
		fmt.Fprintf(stderr, "ingester %s: %s\n", name, s.scrub(err.Error()))
		return 1
	}
}

// check refuses a database URL that does not parse, without showing it: a malformed URL
// is exactly where a driver's best-effort redaction can miss the password.
func (s Settings) check() error {
	if _, err := pgconn.ParseConfig(s.DatabaseURL); err != nil {
		return errors.New("DATABASE_URL (--database-url) is not a valid PostgreSQL URL (not shown: it may hold a password)")
	}
	return nil
}

// scrub removes the database password from msg, in every spelling a URL may give it.
func (s Settings) scrub(msg string) string {
	var secrets []string
	if cfg, err := pgconn.ParseConfig(s.DatabaseURL); err == nil && cfg.Password != "" {
		secrets = append(secrets, cfg.Password)
	}
	if u, err := url.Parse(s.DatabaseURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw)
		}
	}
	// The bucket's keys: minio-go's errors never carry them, but a server's message
	// might echo the key id, and nothing here must print either. A key id that is part
	// of the source's location (compose's defaults name the bucket and the key alike)
	// is left: the commands print that location anyway, and taking it out would turn
	// every message naming the bucket into s3://xxxxx/.
	for _, v := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"} {
		k := os.Getenv(v)
		if len(k) < 4 || v == "AWS_ACCESS_KEY_ID" && strings.Contains(s.Source, k) {
			continue
		}
		secrets = append(secrets, k)
	}
	for _, pw := range secrets {
		for _, v := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("", pw).String()[1:]} {
			if v != "" {
				msg = strings.ReplaceAll(msg, v, "xxxxx")
			}
		}
	}
	return msg
}

// db connects on first use, waiting for PostgreSQL at most DB_WAIT (capped).
func (e *env) db(ctx context.Context) (*pgxpool.Pool, error) {
	if e.pool != nil {
		return e.pool, nil
	}
	wait := min(max(e.s.DBWait, 0), maxDBWait)
	pool, err := db.Connect(ctx, zerolog.Nop(), e.s.DatabaseURL, 2, wait)
	if err != nil {
		return nil, err
	}
	e.pool = pool
	return pool, nil
}

func (e *env) close() {
	if e.pool != nil {
		e.pool.Close()
	}
}

// writeJSON prints v indented, for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// noLedger explains the error of a query on a database without the ingester's schema.
func noLedger(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("%w (has the ingester, or `ingester migrate`, run against this database?)", err)
	}
	return err
}

// exists reports whether path names anything (a broken symlink included).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
