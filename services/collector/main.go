// Command collector measures, on an interval, what only PostgreSQL and the shared volume
// know (latency percentiles in the report's methodology, throughput, error and duplicate
// counts, backlog, query and index performance, sizes, memory) and serves it on /metrics.
// This file is wiring; the measurements live in internal/collector.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ecomstream/ecomstream/services/collector/internal/collector"
	"github.com/ecomstream/ecomstream/services/collector/settings"
	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/httpserver"
	"github.com/ecomstream/ecomstream/services/common/logging"
	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/common/objstore"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var bad *settingsError
	switch {
	case err == nil || config.Printed(err):
		os.Exit(0)
	case errors.As(err, &bad):
		fmt.Fprintf(os.Stderr, "collector: invalid settings:\n%v\n", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "collector:", err)
	os.Exit(1)
}

// settingsError is a setting that cannot be read or cannot work: exit status 2.
type settingsError struct{ error }

func (e *settingsError) Unwrap() error { return e.error }

func run(args []string, stdout, stderr io.Writer) error {
	healthcheck := len(args) > 0 && args[0] == "healthcheck"
	if healthcheck {
		args = args[1:]
	}
	cfg, err := settings.Load(args, stdout)
	if config.Printed(err) {
		return err
	}
	if err != nil {
		return &settingsError{err}
	}
	if healthcheck {
		return httpserver.Healthcheck(cfg.HTTPAddr)
	}
	if err := cfg.Validate(); err != nil {
		return &settingsError{err}
	}
	log, err := logging.New(stderr, "collector", logging.Instance(cfg.Instance), cfg.LogLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Run as processes, every service brings the schema up to date at start-up (idempotent,
	// serialised by an advisory lock), so the collector works whichever starts first; under
	// compose a one-shot job migrates and the collector's role could not. It uses a plain
	// session: the collector's lock_timeout must not cut the migration lock's wait.
	if cfg.MigrateAtStart {
		mig, err := db.Connect(ctx, log, cfg.DatabaseURL, 1, 2*time.Minute)
		if err != nil {
			return err
		}
		applied, err := db.Migrate(ctx, mig)
		mig.Close()
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			log.Info().Strs("migrations", applied).Msg("schema migrated")
		}
	}
	dsn, err := withSessionSettings(cfg.DatabaseURL, cfg.StatementTimeout)
	if err != nil {
		return err
	}
	// Measurements run one after another: one connection is used at a time; the second
	// serves /readyz.
	pool, err := db.Connect(ctx, log, dsn, 2, 2*time.Minute)
	if err != nil {
		return err
	}
	defer pool.Close()

	cs := collector.Settings{
		Window: cfg.Window, WatchDir: cfg.WatchDir, QueryInterval: cfg.QueryInterval,
		ExporterStandIn: cfg.ExporterStandIn,
	}
	backlogOf := cfg.WatchDir
	if cfg.Source != "" {
		if cs.Location, cs.Bucket, err = bucket(cfg.Source); err != nil {
			return err
		}
		cs.ArchivePrefix, cs.FailedPrefix, cs.ListTimeout = cfg.S3ArchivePrefix, cfg.S3FailedPrefix, cfg.S3ListTimeout
		backlogOf = cs.Location.String()
	}
	c := collector.New(log, cfg.Interval+cfg.StatementTimeout, collector.All(pool, cs)...)
	reg := metrics.NewRegistry()
	reg.MustRegister(c)

	ready := func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return err
		}
		if !c.Ready() {
			return errors.New("first measurement not finished")
		}
		return nil
	}
	_, done, err := httpserver.Serve(ctx, log, cfg.HTTPAddr, httpserver.Router(log, reg, ready))
	if err != nil {
		return err
	}
	log.Info().Dur("interval", cfg.Interval).Dur("window", cfg.Window).Str("backlog_of", backlogOf).Msg("collector started")
	go c.Run(ctx, cfg.Interval)
	select {
	case <-ctx.Done():
	case err := <-done:
		return err
	}
	log.Info().Msg("collector stopped")
	return <-done
}

// bucket is the location and the client of the backlog's bucket: endpoint and keys from
// the AWS SDKs' standard variables, as the ingesters read them.
func bucket(source string) (objstore.Location, *minio.Client, error) {
	loc, err := objstore.Parse(source)
	if err != nil {
		return loc, nil, &settingsError{fmt.Errorf("COLLECTOR_SOURCE (--source): %w", err)}
	}
	c, err := objstore.New(objstore.SettingsFromEnv())
	if err != nil {
		return loc, nil, &settingsError{err}
	}
	return loc, c, nil
}

// sessionSettings keep the collector from ever slowing ingestion: each statement is cut
// off after the statement timeout; a lock it cannot take at once (only DDL conflicts with
// its ACCESS SHARE locks) is given up after a second instead of queueing, because a
// queued lock request would make every later locker queue behind it; and a transaction
// left open by a bug is ended by the server. The application name lets operators (and
// the lock test) find its sessions in pg_stat_activity.
func sessionSettings(statementTimeout time.Duration) map[string]string {
	return map[string]string{
		"application_name":                    collector.ApplicationName,
		"statement_timeout":                   strconv.FormatInt(statementTimeout.Milliseconds(), 10),
		"lock_timeout":                        "1000",
		"idle_in_transaction_session_timeout": "10000",
	}
}

// withSessionSettings adds the session settings to a URL or keyword/value DSN; settings
// the user gave explicitly win.
func withSessionSettings(dsn string, statementTimeout time.Duration) (string, error) {
	settings := sessionSettings(statementTimeout)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Not err itself: net/url's error quotes the whole URL, password included.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", fmt.Errorf("parse database URL: %w", err)
		}
		q := u.Query()
		for k, v := range settings {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	if dsn == "" {
		return "", errors.New("no database URL: set DATABASE_URL or --database-url")
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.Contains(dsn, k+"=") {
			dsn += " " + k + "=" + settings[k]
		}
	}
	return dsn, nil
}
