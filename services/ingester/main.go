// Command ingester turns CSV files dropped into a directory into PostgreSQL rows,
// exactly once, within milliseconds. Wiring only: the work is in internal/.
//
//	ingester [flags]         run
//	ingester migrate         apply the schema migrations and exit (compose's one-shot job)
//	ingester healthcheck     ask a running ingester's /healthz (for distroless images)
//	ingester s3-access       give each service its own account on compose's S3 gateway (one-shot)
//	ingester status|failed|retry   an operator's commands (internal/ops; each has --help)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/db"
	"github.com/ecomstream/ecomstream/services/common/httpserver"
	"github.com/ecomstream/ecomstream/services/common/logging"
	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/ingester/internal/ingest"
	"github.com/ecomstream/ecomstream/services/ingester/internal/load"
	"github.com/ecomstream/ecomstream/services/ingester/internal/ops"
	"github.com/ecomstream/ecomstream/services/ingester/internal/partition"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/retry"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/dir"
	"github.com/ecomstream/ecomstream/services/ingester/settings"
)

// appNamePrefix starts every ingester session's application_name, so replicas can find
// each other's stalled sessions.
const appNamePrefix = "ecomstream-ingester/"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && ops.IsCommand(args[0]) {
		cfg := settings.New()
		return ops.Run(args[0], args[1:], stdout, stderr, &cfg, func() (ops.Settings, error) {
			return ops.Settings{DatabaseURL: cfg.DatabaseURL, InputDir: cfg.InputDir, ArchiveDir: cfg.ArchiveDir,
				FailedDir: cfg.FailedDir, DBWait: cfg.DBWait,
				Source: cfg.Source, S3ArchivePrefix: cfg.S3ArchivePrefix, S3FailedPrefix: cfg.S3FailedPrefix}, cfg.Validate()
		})
	}
	if len(args) > 0 && args[0] == "s3-access" {
		return s3Access(args[1:], stdout, stderr)
	}
	sub := ""
	if len(args) > 0 && (args[0] == "migrate" || args[0] == "healthcheck") {
		sub, args = args[0], args[1:]
	}
	cfg, err := settings.Load(args, stdout)
	if err != nil {
		if config.Printed(err) {
			return 0
		}
		fmt.Fprintln(stderr, "ingester:", err)
		return 2
	}
	if sub == "healthcheck" {
		if err := httpserver.Healthcheck(cfg.HTTPAddr); err != nil {
			fmt.Fprintln(stderr, "ingester unhealthy:", err)
			return 1
		}
		return 0
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "ingester: invalid settings:\n%v\n", err)
		return 2
	}
	// A run that migrates also writes the retention policy (below): one it would refuse
	// is a bad setting, said before the database. Refused after the migrations, it left
	// the schema at sql/0006 with the policy "never" under the release still running (a
	// failed Helm upgrade hook), whose retention the database then refused.
	if sub == "migrate" || cfg.MigrateAtStart {
		if err := partition.PolicyOf(cfg.Partitions()).Check(); err != nil {
			fmt.Fprintf(stderr, "ingester: invalid settings:\n%v\n", err)
			return 2
		}
	}
	instance := logging.Instance(cfg.Instance)
	log, err := logging.New(stderr, "ingester", instance, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(stderr, "ingester:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Before the database: a path that cannot be written is said at once, not after the
	// wait for PostgreSQL and the migrations, and the profile covers the start-up too.
	// After NotifyContext: a SIGTERM from the moment the file exists writes the profile.
	// `ingester migrate`, a one-shot job, is not profiled.
	if cfg.CPUProfile != "" && sub != "migrate" {
		stopProfile, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			log.Error().Err(err).Msg("cannot start the CPU profile")
			return 2
		}
		defer stopProfile()
	}

	pool, err := db.ConnectWith(ctx, log, cfg.DatabaseURL, db.Options{
		MaxConns: int32(cfg.Workers + 2 + ingest.ClaimsBehind), MaxWait: cfg.DBWait, ConnectTimeout: cfg.DBConnectTimeout,
		StatementTimeout: cfg.DBStatementTimeout, IdleInTxTimeout: cfg.DBIdleInTxTimeout,
		IdleSessionTimeout: cfg.DBIdleSessionTimeout, KeepAlive: cfg.DBKeepAlive, TCPUserTimeout: cfg.DBTCPUserTimeout,
		ApplicationName: appNamePrefix + instance,
	})
	if err != nil {
		if ctx.Err() != nil {
			// Stopped (SIGTERM, Ctrl-C) while waiting for the database: nothing was taken,
			// so this is a clean stop, not a failed start (a replica replaced during a
			// database restart, a rollout that stops a pod still waiting).
			log.Info().Msg("stopped before the database answered")
			return 0
		}
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	defer pool.Close()
	// Migrating (and converting an old events table) is the schema owner's work: compose's
	// one-shot job does it, and the ingester then runs as a role that could not.
	maint := &partition.Maintainer{Pool: pool, Opt: cfg.Partitions(), Log: log, Now: time.Now}
	if sub == "migrate" || cfg.MigrateAtStart {
		applied, err := db.Migrate(ctx, pool)
		if err != nil {
			log.Error().Err(err).Msg("schema migration failed")
			return 1
		}
		log.Info().Strs("applied", applied).Msg("schema up to date")
		// Partitions: an old unpartitioned events converted (issue 13).
		if _, err := maint.Convert(ctx, partition.DefaultChunkBlocks); err != nil {
			log.Error().Err(err).Msg("converting events to partitions failed; run again to resume")
			return 1
		}
		// The retention floor (sql/0006): the database refuses to remove anything newer
		// than these windows, whoever asks. The administrator's to set, from the same
		// settings the ingesters run with (compose and the Helm chart give both the same
		// values).
		policy := partition.PolicyOf(cfg.Partitions())
		if err := partition.WritePolicy(ctx, pool, policy); err != nil {
			log.Error().Err(err).Msg("setting the retention policy failed")
			return 1
		}
		log.Info().Str("events", partition.Retention(policy.Events).String()).Str("ledger", partition.Retention(policy.Ledger).String()).
			Str("rejected", partition.Retention(policy.Rejected).String()).Msg("retention policy set: the database removes nothing newer")
	}
	if _, err := maint.Pass(ctx, true); err != nil {
		if sub == "migrate" {
			log.Error().Err(err).Msg("partition maintenance failed")
			return 1
		}
		// Not fatal here: rows without a partition land in the default one, and the
		// maintenance loop tries again.
		log.Warn().Err(err).Msg("partition maintenance failed; the maintenance loop will retry")
	}
	if sub == "migrate" {
		return 0
	}

	reg := metrics.NewRegistry()
	var m *ingest.Metrics
	// The source: a bucket (INGESTER_SOURCE=s3://...) or the input directory.
	src, err := newSource(&cfg, log, reg, pool)
	if err != nil {
		log.Error().Err(err).Msg("cannot reach the bucket source")
		return 2
	}
	where := cfg.InputDir
	sourceReady := func(context.Context) error {
		if _, err := os.Stat(cfg.InputDir); err != nil {
			return httpserver.Down("input directory", err)
		}
		return nil
	}
	if src == nil {
		src = dir.New(dir.Options{Input: cfg.InputDir, Archive: cfg.ArchiveDir, Failed: cfg.FailedDir,
			Settle: cfg.Settle, Rescan: cfg.RescanInterval, Log: log,
			OnError: func(stage string) { m.Errors.WithLabelValues(stage).Inc() }})
	} else {
		where = src.String()
		if r, ok := src.(interface{ Ready(context.Context) error }); ok {
			sourceReady = func(ctx context.Context) error {
				if err := r.Ready(ctx); err != nil {
					return httpserver.Down("bucket", err)
				}
				return nil
			}
		}
	}
	q := queue.New(src, cfg.Settle)
	m = ingest.NewMetrics(reg, q, pool)
	rules := retry.Defaults()
	rules.File = retry.Policy{Base: cfg.RetryBase, Max: cfg.RetryMax, Attempts: cfg.MaxFileAttempts, Jitter: rules.File.Jitter}
	onSuccess := map[string]source.Action{"archive": source.Archive, "delete": source.Delete, "keep": source.Keep}[cfg.OnSuccess]
	loader := &load.Loader{Pool: pool, Instance: instance, MaxRejected: cfg.MaxRejected,
		MaxRejectedPerFile: cfg.MaxRejectedPerFile, Retry: rules, LoadSlots: cfg.Slots()}
	runner := ingest.New(ingest.Options{
		OnSuccess: onSuccess, TriggerInterval: cfg.TriggerInterval,
		MaxBatchRecords: cfg.MaxBatchRecords, MaxBatchFiles: cfg.MaxBatchFiles, Workers: cfg.Workers,
		Grace: cfg.ShutdownGrace, Retry: rules, StuckAfter: cfg.StuckAfter,
		// A statement that outlived the statement timeout while waiting for its client
		// belongs to a frozen replica (the timeout itself cannot end it).
		ReapAfter: cfg.DBStatementTimeout + cfg.DBStatementTimeout/2, ReapPrefix: appNamePrefix,
	}, log, src, q, loader, m)
	// The sessions the workers and the finishes behind them hold at once, opened now: made
	// on the first batches' path, each cost a worker 30-100 ms on a loaded host while
	// objects queued behind it (BenchmarkBucketPipeline's notify run). Each is primed
	// too (load.Loader.Prime): opened but cold, its first batch still took 20-45 ms more.
	sessions := cfg.Workers
	if bf, ok := src.(ingest.BackgroundFinisher); ok && bf.FinishBehind() > 0 {
		sessions += ingest.ClaimsBehind
	}
	wctx, wcancel := context.WithTimeout(ctx, max(cfg.DBConnectTimeout, 5*time.Second))
	db.Warm(wctx, pool, sessions, loader.Prime)
	wcancel()
	router := httpserver.RouterWithAlive(log, reg, runner.Healthy, func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return httpserver.Down("database", err)
		}
		return sourceReady(ctx)
	})
	go maint.Loop(ctx, partition.NewMetrics(reg))
	if _, _, err := httpserver.Serve(ctx, log, cfg.HTTPAddr, router); err != nil {
		log.Error().Err(err).Msg("cannot listen")
		return 1
	}
	log.Info().Str("source", where).Int("workers", cfg.Workers).Dur("trigger_interval", cfg.TriggerInterval).
		Dur("settle", cfg.Settle).Int("max_batch_records", cfg.MaxBatchRecords).Int("load_slots", cfg.Slots()).Msg("ingester started")
	if err := runner.Run(ctx); err != nil {
		log.Error().Err(err).Msg("ingester stopped on error")
		return 1
	}
	log.Info().Msg("ingester stopped")
	return 0
}

// startCPUProfile profiles the process's CPU into path until the returned func is called
// (on exit, SIGTERM included): where a real run's CPU goes, watch and archive included,
// which no benchmark of one package shows (make bench's BENCH_PROFILE).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
