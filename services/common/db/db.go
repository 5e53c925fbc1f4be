// Package db connects to PostgreSQL and brings its schema up to date. Run as processes,
// every service calls Migrate at start-up (the migration lock makes that safe when many
// replicas start at once); under compose only the one-shot `ingester migrate` does, as
// the administrator, and the services connect as roles that could not (sql/0005).
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	schema "github.com/ecomstream/ecomstream/sql"
)

// Connect builds a pool from url and waits until PostgreSQL answers, retrying with
// backoff up to maxWait (a database container often starts after its clients).
func Connect(ctx context.Context, log zerolog.Logger, url string, maxConns int32, maxWait time.Duration) (*pgxpool.Pool, error) {
	return ConnectWith(ctx, log, url, Options{MaxConns: maxConns, MaxWait: maxWait})
}

// Options bound how long a session can hold anything when its peer is gone. A client
// that holds session advisory locks (the ingester's claims) and then hangs or loses its
// host must release them within a bounded time, not when the server's TCP keepalive
// fires at the operating system's default of about two hours. Zero leaves a setting at
// the server's (or the URL's) value.
type Options struct {
	MaxConns int32
	MaxWait  time.Duration // how long Connect waits for PostgreSQL to answer at all
	// ConnectTimeout bounds one connection attempt (dial, TLS, authentication).
	ConnectTimeout time.Duration
	// StatementTimeout ends a statement that runs longer (a COPY whose client stopped
	// sending is one).
	StatementTimeout time.Duration
	// IdleInTxTimeout ends a session idle inside a transaction (a client that stopped
	// between two statements, or after a statement was cancelled).
	IdleInTxTimeout time.Duration
	// IdleSessionTimeout ends a session idle outside a transaction (a client that
	// stopped while it held session locks between transactions).
	IdleSessionTimeout time.Duration
	// KeepAlive is the TCP keepalive idle time on both ends (the interval is half of it,
	// three probes): a dead host is noticed within about twice this.
	KeepAlive time.Duration
	// TCPUserTimeout ends a connection whose sent data stays unacknowledged this long.
	TCPUserTimeout time.Duration
	// ApplicationName shows in pg_stat_activity (which replica holds what).
	ApplicationName string
}

// Config turns url and o into a pool configuration; settings already in the URL win.
func (o Options) Config(url string) (*pgxpool.Config, error) {
	if url == "" {
		return nil, errors.New("no database URL: set DATABASE_URL or --database-url")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	}
	params := cfg.ConnConfig.RuntimeParams
	set := func(name string, v string) {
		if _, inURL := params[name]; !inURL && v != "" {
			params[name] = v
		}
	}
	ms := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
	}
	secs := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return strconv.FormatInt(max(int64(d/time.Second), 1), 10)
	}
	set("application_name", o.ApplicationName)
	set("statement_timeout", ms(o.StatementTimeout))
	set("idle_in_transaction_session_timeout", ms(o.IdleInTxTimeout))
	set("idle_session_timeout", ms(o.IdleSessionTimeout))
	// The server's side of the connection: it holds the locks, so it must notice.
	set("tcp_keepalives_idle", secs(o.KeepAlive))
	set("tcp_keepalives_interval", secs(o.KeepAlive/2))
	if o.KeepAlive > 0 {
		set("tcp_keepalives_count", "3")
	}
	set("tcp_user_timeout", ms(o.TCPUserTimeout))
	if o.IdleSessionTimeout > 0 {
		// Close our idle connections before the server does.
		cfg.MaxConnIdleTime = min(cfg.MaxConnIdleTime, o.IdleSessionTimeout/2)
	}
	if o.KeepAlive > 0 || o.TCPUserTimeout > 0 {
		// Our side: a client blocked reading from a dead server wakes up too.
		d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: o.KeepAlive > 0, Idle: o.KeepAlive, Interval: o.KeepAlive / 2, Count: 3}}
		if o.TCPUserTimeout > 0 {
			d.Control = func(network, _ string, c syscall.RawConn) error {
				if !strings.HasPrefix(network, "tcp") {
					return nil
				}
				var serr error
				err := c.Control(func(fd uintptr) { serr = setTCPUserTimeout(fd, o.TCPUserTimeout) })
				if err != nil {
					return err
				}
				return serr
			}
		}
		if o.ConnectTimeout > 0 {
			d.Timeout = o.ConnectTimeout
		}
		cfg.ConnConfig.DialFunc = d.DialContext
	}
	return cfg, nil
}

// ConnectWith is Connect with session bounds.
func ConnectWith(ctx context.Context, log zerolog.Logger, url string, o Options) (*pgxpool.Pool, error) {
	cfg, err := o.Config(url)
	if err != nil {
		return nil, err
	}
	maxWait := o.MaxWait
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	deadline := time.Now().Add(maxWait)
	backoff := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			return pool, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			pool.Close()
			return nil, fmt.Errorf("database at %s not reachable: %w", cfg.ConnConfig.Host, err)
		}
		log.Warn().Err(err).Dur("retry_in", backoff).Msg("database not reachable yet")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Warm opens up to n sessions of pool at once (those it has count) and leaves them idle
// in it, so that the first work to need them does not wait for a session to be made: a
// new one is a server process forked and started, tens of milliseconds on a loaded
// host, and work that starts with a burst (an ingester started under load) needs several
// at once. A session that cannot be opened now is left to be opened when needed; the
// pool closes idle ones as it always does (MaxConnIdleTime). prime, if not nil, is run
// on each session held (those the pool had too) to load what the work's first
// statements would otherwise load on its path; its errors leave the session as it is.
// It returns how many the pool holds.
func Warm(ctx context.Context, pool *pgxpool.Pool, n int, prime func(context.Context, *pgxpool.Conn) error) int {
	// n held at once are n sessions: the idle ones are taken, the rest opened.
	want := min(n, int(pool.Config().MaxConns))
	conns := make(chan *pgxpool.Conn, max(want, 0))
	for range want {
		go func() {
			c, err := pool.Acquire(ctx)
			if err != nil {
				c = nil
			}
			conns <- c
		}()
	}
	// All held until all are acquired: one released early would be handed to the next
	// Acquire instead of a new session being opened.
	held := make([]*pgxpool.Conn, 0, max(want, 0))
	for range want {
		if c := <-conns; c != nil {
			held = append(held, c)
		}
	}
	total := int(pool.Stat().TotalConns())
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Go(func() {
			if prime != nil {
				_ = prime(ctx, c)
			}
			c.Release()
		})
	}
	wg.Wait()
	return total
}

// migrationLock is the advisory lock key that serialises migrations across replicas.
const migrationLock = 0x65636f6d // "ecom"

// Migrate applies every migration in sql/ not yet recorded in schema_migrations, each in
// its own transaction, under a session advisory lock so concurrent callers take turns.
// It returns the names it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return MigrateFS(ctx, pool, schema.Files)
}

// MigrateFS is Migrate over any set of migration files (tests use their own).
func MigrateFS(ctx context.Context, pool *pgxpool.Pool, files fs.FS) ([]string, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var applied []string
	for _, name := range names {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", name).Scan(&done); err != nil {
			return applied, fmt.Errorf("migrate %s: %w", name, err)
		}
		if done {
			continue
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return applied, err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (name) VALUES ($1)", name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate %s: %w", name, describe(err))
		}
		applied = append(applied, strings.TrimSuffix(name, ".sql"))
	}
	return applied, nil
}

// describe adds PostgreSQL's position and detail to an error message.
func describe(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("%w (position %d, detail %q)", err, pgErr.Position, pgErr.Detail)
	}
	return err
}

// IsQueryCanceled reports SQLSTATE 57014: the statement was cancelled, by
// statement_timeout or a cancel request.
func IsQueryCanceled(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57014"
}

// IsUniqueViolation tells whether err is PostgreSQL's unique_violation (23505).
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// WithDatabase returns url with its database name replaced by name (query kept).
func WithDatabase(url, name string) string {
	q := ""
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url, q = url[:i], url[i:]
	}
	if i := strings.LastIndexByte(url, '/'); i > len("postgres://") {
		url = url[:i]
	}
	return url + "/" + name + q
}
