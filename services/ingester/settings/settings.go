// Package settings is the ingester's configuration: the INGESTER_* variables and their
// flags (DATABASE_URL and LOG_LEVEL also bare), their defaults and their validation.
// It is importable so that tools (tests/compose, docs) read the settings from here
// rather than from the source. A new setting is one field below and, where it can be
// wrong, one line in Validate.
package settings

import (
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/ingester/internal/partition"
)

// Prefix starts every variable of the ingester.
const Prefix = "INGESTER"

// Config is the ingester's settings.
type Config struct {
	config.Base
	InputDir        string        `envconfig:"INPUT_DIR" flag:"input-dir" default:"/data/incoming" desc:"watched directory of *.csv files"`
	ArchiveDir      string        `envconfig:"ARCHIVE_DIR" flag:"archive-dir" default:"/data/archive" desc:"where committed files go"`
	FailedDir       string        `envconfig:"FAILED_DIR" flag:"failed-dir" default:"/data/failed" desc:"where rejected files go, with a .reason.txt"`
	OnSuccess       string        `envconfig:"ON_SUCCESS" flag:"on-success" default:"archive" desc:"archive or delete committed files (keep: leave them, a bucket only)"`
	TriggerInterval time.Duration `envconfig:"TRIGGER_INTERVAL" flag:"trigger-interval" default:"0s" desc:"0 = continuous; 10s or 30s reproduce Spark's micro-batch triggers"`
	MaxBatchRecords int           `envconfig:"MAX_BATCH_RECORDS" flag:"max-batch-records" default:"20000" desc:"rows per transaction at most (a file is never split: a larger file is a transaction of its own)"`
	MaxBatchFiles   int           `envconfig:"MAX_BATCH_FILES" flag:"max-batch-files" default:"500" desc:"files per transaction at most"`
	Settle          time.Duration `envconfig:"SETTLE" flag:"settle" default:"1s" desc:"a file written in place is read once its size and mtime have been still this long; a renamed-in file is read at once"`
	Workers         int           `envconfig:"WORKERS" flag:"workers" default:"2" desc:"batches committed in parallel"`
	LoadSlots       int           `envconfig:"LOAD_SLOTS" flag:"load-slots" default:"0" desc:"batches loading at once into the database across every replica, about PostgreSQL's cores (more wait their turn); 0 = this host's CPUs (PostgreSQL beside the ingesters, as in compose), -1 = no bound"`
	RescanInterval  time.Duration `envconfig:"RESCAN_INTERVAL" flag:"rescan-interval" default:"2s" desc:"how often the directory (or the bucket prefix) is listed in case inotify (or a notification) missed something"`

	// A bucket as the source (package source/s3). Endpoint and keys: AWS_ENDPOINT_URL,
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, read bare.
	Source          string        `envconfig:"SOURCE" flag:"source" default:"" desc:"s3://BUCKET/PREFIX to read a bucket; empty = the input directory"`
	S3ArchivePrefix string        `envconfig:"S3_ARCHIVE_PREFIX" flag:"s3-archive-prefix" default:"archive/" desc:"with a bucket source: key prefix of archived objects (same bucket)"`
	S3FailedPrefix  string        `envconfig:"S3_FAILED_PREFIX" flag:"s3-failed-prefix" default:"failed/" desc:"with a bucket source: key prefix of rejected objects and their .reason.txt (same bucket)"`
	NATSURL         string        `envconfig:"NATS_URL" flag:"nats-url" default:"" desc:"NATS server the bucket's event notifications are published to (empty = listing only)"`
	NATSSubject     string        `envconfig:"NATS_SUBJECT" flag:"nats-subject" default:"ecomstream.s3.events" desc:"subject of the bucket's event notifications"`
	NATSStream      string        `envconfig:"NATS_STREAM" flag:"nats-stream" default:"ECOMSTREAM_S3_EVENTS" desc:"JetStream stream that stores the notifications' subject (created if missing), so those published while no ingester runs are delivered later; empty = a plain subscription (a server without JetStream falls back to it)"`
	NATSConsumer    string        `envconfig:"NATS_CONSUMER" flag:"nats-consumer" default:"" desc:"durable JetStream consumer shared by every ingester of the bucket prefix (empty = ecomstream-in-BUCKET-PREFIX-HASH, derived from the source: one per prefix)"`
	MaxRejected     int           `envconfig:"MAX_REJECTED_BUFFER" flag:"max-rejected-buffer" default:"10000" desc:"rejected rows held in memory before they are written"`
	ShutdownGrace   time.Duration `envconfig:"SHUTDOWN_GRACE" flag:"shutdown-grace" default:"20s" desc:"on SIGTERM, how long the batch in flight may take to commit before it is rolled back"`
	DBWait          time.Duration `envconfig:"DB_WAIT" flag:"db-wait" default:"60s" desc:"how long to wait for PostgreSQL at start-up"`
	MigrateAtStart  bool          `envconfig:"MIGRATE_AT_START" flag:"migrate-at-start" default:"true" desc:"apply the schema migrations at start-up (false where a one-shot job migrates and the ingester runs as its own role, as in compose)"`

	// Listing with backoff (ClickHouse S3Queue's polling_min/max_timeout).
	RescanMinInterval time.Duration `envconfig:"RESCAN_MIN_INTERVAL" flag:"rescan-min-interval" default:"250ms" desc:"with a bucket source: after a listing that found new objects with no notification received since the last one, list again this soon, doubling the wait up to the rescan interval while listings find nothing new or notifications arrive (0 = list every rescan interval; above it = the rescan interval; each listing is a LIST request that a cloud store bills)"`

	// Partitions and retention (issue 13; package partition).
	PartitionWidth      time.Duration       `envconfig:"PARTITION_WIDTH" flag:"partition-width" default:"24h" desc:"time range of one events partition (divides a day, or whole days)"`
	PartitionsAhead     int                 `envconfig:"PARTITIONS_AHEAD" flag:"partitions-ahead" default:"7" desc:"events partitions kept ready beyond the current one"`
	MaintenanceInterval time.Duration       `envconfig:"PARTITION_MAINTENANCE_INTERVAL" flag:"partition-maintenance-interval" default:"10m" desc:"how often partitions and retention are maintained (one replica at a time)"`
	EventsRetention     partition.Retention `envconfig:"EVENTS_RETENTION" flag:"events-retention" default:"off" desc:"drop events partitions wholly older than this (30d, 36h; off = keep); ingester migrate writes it as the database's retention policy, which refuses to remove anything newer"`
	LedgerRetention     partition.Retention `envconfig:"LEDGER_RETENTION" flag:"ledger-retention" default:"off" desc:"delete ledger rows committed longer ago (keep it >= the events retention so a replayed file stays a no-op; ingester migrate refuses less); the database's policy, as for the events"`
	RejectedRetention   partition.Retention `envconfig:"REJECTED_RETENTION" flag:"rejected-retention" default:"off" desc:"delete rejected rows older than this; the database's policy, as for the events"`

	// Bounds on a replica that hangs or loses its host while it holds claims: the server
	// ends its sessions, and their advisory locks, within about a minute.
	DBConnectTimeout     time.Duration `envconfig:"DB_CONNECT_TIMEOUT" flag:"db-connect-timeout" default:"10s" desc:"one connection attempt at most (0 = none)"`
	DBStatementTimeout   time.Duration `envconfig:"DB_STATEMENT_TIMEOUT" flag:"db-statement-timeout" default:"30s" desc:"a statement (one batch's COPY included) at most; raise it for single files that take longer to copy (0 = none)"`
	DBIdleInTxTimeout    time.Duration `envconfig:"DB_IDLE_IN_TX_TIMEOUT" flag:"db-idle-in-tx-timeout" default:"15s" desc:"the server ends a session idle inside a transaction this long, releasing its claims (0 = none)"`
	DBIdleSessionTimeout time.Duration `envconfig:"DB_IDLE_SESSION_TIMEOUT" flag:"db-idle-session-timeout" default:"30s" desc:"the server ends a session idle outside a transaction this long, releasing its claims (0 = none)"`
	DBKeepAlive          time.Duration `envconfig:"DB_KEEPALIVE" flag:"db-keepalive" default:"10s" desc:"TCP keepalive idle time on both ends (interval half of it, 3 probes): a dead host is noticed in about twice this (0 = OS default)"`
	DBTCPUserTimeout     time.Duration `envconfig:"DB_TCP_USER_TIMEOUT" flag:"db-tcp-user-timeout" default:"30s" desc:"a connection whose sent data stays unacknowledged this long is dropped, on both ends (0 = OS default)"`

	MaxFileAttempts    int           `envconfig:"MAX_FILE_ATTEMPTS" flag:"max-file-attempts" default:"10" desc:"a file that fails this many times for a reason of its own is moved to the failed directory (or parked if it cannot be moved)"`
	RetryBase          time.Duration `envconfig:"RETRY_BASE" flag:"retry-base" default:"1s" desc:"first delay before a failed file is tried again; doubles per attempt, with jitter"`
	RetryMax           time.Duration `envconfig:"RETRY_MAX" flag:"retry-max" default:"5m" desc:"longest delay between two attempts of a file"`
	StuckAfter         time.Duration `envconfig:"STUCK_AFTER" flag:"stuck-after" default:"5m" desc:"/healthz fails once a worker, or a finisher of a bucket's committed batches, has made no progress on its claim for this long (0 = never)"`
	MaxRejectedPerFile int           `envconfig:"MAX_REJECTED_PER_FILE" flag:"max-rejected-per-file" default:"1000" desc:"rejected lines stored per file at most; the rest are counted in the ledger only (0 = all)"`

	// A diagnosis aid, off by default: the process's CPU profile from start to exit.
	CPUProfile string `envconfig:"CPU_PROFILE" flag:"cpu-profile" default:"" desc:"write the process's CPU profile (go tool pprof) to this file, from start-up to exit; empty = off"`
}

// New is the settings before the environment and the flags: the defaults of the shared
// ones that are the ingester's own (the rest are the `default` tags).
func New() Config {
	return Config{Base: config.Base{
		HTTPAddr:    ":8082",
		DatabaseURL: "postgres://ecomstream:ecomstream@localhost:5432/ecomstream?sslmode=disable",
	}}
}

// Load reads the settings from the environment and args (a flag overrides its variable);
// usage receives --help, --version and flag errors. It does not validate (Validate).
func Load(args []string, usage io.Writer) (Config, error) {
	c := New()
	err := config.Load(Prefix, &c, args, usage)
	return c, err
}

// Partitions is the partition maintainer's part of the settings.
func (c *Config) Partitions() partition.Options {
	o := partition.Defaults
	o.Width, o.Ahead, o.Interval = c.PartitionWidth, c.PartitionsAhead, c.MaintenanceInterval
	o.Retention, o.LedgerRetention, o.RejectedRetention = time.Duration(c.EventsRetention), time.Duration(c.LedgerRetention), time.Duration(c.RejectedRetention)
	return o
}

// Slots is the loader's bound on batches loading at once across every replica (0: none):
// LoadSlots, with 0 read as this host's CPUs. That default fits PostgreSQL on the same
// host (compose, make run-local); with the database elsewhere, set it to about its cores.
func (c *Config) Slots() int {
	switch {
	case c.LoadSlots < 0:
		return 0
	case c.LoadSlots == 0:
		return runtime.NumCPU()
	}
	return c.LoadSlots
}

// ListMinInterval is the shortest wait between two listings of a bucket:
// RescanMinInterval, never above RescanInterval (a rescan interval set below the
// default 250 ms would otherwise be refused for a setting nobody made).
func (c *Config) ListMinInterval() time.Duration {
	return min(c.RescanMinInterval, c.RescanInterval)
}

// Validate says what is wrong with the settings, every problem named by its variable and
// flag.
func (c *Config) Validate() error {
	v := config.NewCheck(Prefix, c)
	c.Base.Check(v)
	if c.Source == "" { // the input directory
		v.If(c.InputDir == "", &c.InputDir, "is required")
		v.If(c.OnSuccess != "archive" && c.OnSuccess != "delete", &c.OnSuccess, "must be archive or delete, got %q (keep is for a bucket source)", c.OnSuccess)
		v.If(c.OnSuccess == "archive" && c.ArchiveDir == "", &c.ArchiveDir, "is required with %s archive", v.Name(&c.OnSuccess))
		v.If(c.FailedDir == "", &c.FailedDir, "is required")
	} else { // a bucket
		if _, err := objstore.Parse(c.Source); err != nil {
			v.Errorf(&c.Source, "%v", err)
		}
		v.If(c.OnSuccess != "archive" && c.OnSuccess != "delete" && c.OnSuccess != "keep", &c.OnSuccess, "must be archive, delete or keep, got %q", c.OnSuccess)
		v.If(c.S3ArchivePrefix == "" || !strings.HasSuffix(c.S3ArchivePrefix, "/"), &c.S3ArchivePrefix, "must be a non-empty prefix ending in '/'")
		v.If(c.S3FailedPrefix == "" || !strings.HasSuffix(c.S3FailedPrefix, "/"), &c.S3FailedPrefix, "must be a non-empty prefix ending in '/'")
		v.If(c.RescanMinInterval < 0, &c.RescanMinInterval, "must be >= 0")
		v.If(c.NATSURL != "" && c.NATSSubject == "", &c.NATSSubject, "is required with %s", v.Name(&c.NATSURL))
		v.If(c.NATSStream != "" && !natsName(c.NATSStream), &c.NATSStream, "must be a JetStream name (no spaces, '.', '*', '>', '/' or '\\'), got %q", c.NATSStream)
		v.If(c.NATSStream != "" && c.NATSConsumer != "" && !natsName(c.NATSConsumer), &c.NATSConsumer, "must be a JetStream name (no spaces, '.', '*', '>', '/' or '\\') with %s, got %q", v.Name(&c.NATSStream), c.NATSConsumer)
	}
	v.If(c.TriggerInterval < 0, &c.TriggerInterval, "must be >= 0")
	v.If(c.MaxBatchRecords < 1, &c.MaxBatchRecords, "must be >= 1")
	v.If(c.MaxBatchFiles < 1, &c.MaxBatchFiles, "must be >= 1")
	v.If(c.Workers < 1 || c.Workers > 64, &c.Workers, "must be 1 to 64")
	v.If(c.LoadSlots < -1 || c.LoadSlots > 1024, &c.LoadSlots, "must be -1 (no bound), 0 (this host's CPUs) or 1 to 1024")
	v.If(c.Settle < 0, &c.Settle, "must be >= 0")
	v.If(c.RescanInterval <= 0, &c.RescanInterval, "must be > 0")
	v.If(c.MaxRejected < 1, &c.MaxRejected, "must be >= 1")
	v.If(c.ShutdownGrace < 0, &c.ShutdownGrace, "must be >= 0")
	v.If(c.DBWait < 0, &c.DBWait, "must be >= 0")

	day := 24 * time.Hour
	v.If(c.PartitionWidth < time.Minute || (day%c.PartitionWidth != 0 && c.PartitionWidth%day != 0), &c.PartitionWidth,
		"must divide a day or be whole days (at least 1m), got %s", c.PartitionWidth)
	v.If(c.PartitionsAhead < 1 || c.PartitionsAhead > 1000, &c.PartitionsAhead, "must be 1 to 1000, got %d", c.PartitionsAhead)
	v.If(c.MaintenanceInterval <= 0, &c.MaintenanceInterval, "must be > 0")
	if c.PartitionWidth > 0 {
		v.If(c.EventsRetention > 0 && time.Duration(c.EventsRetention) < 2*c.PartitionWidth, &c.EventsRetention,
			"must be off or at least two partition widths (%s), got %s", 2*c.PartitionWidth, c.EventsRetention)
	}
	for _, d := range []*time.Duration{&c.DBConnectTimeout, &c.DBStatementTimeout, &c.DBIdleInTxTimeout,
		&c.DBIdleSessionTimeout, &c.DBKeepAlive, &c.DBTCPUserTimeout} {
		v.If(*d < 0, d, "must be >= 0 (0 = none)")
	}
	v.If(c.MaxFileAttempts < 1, &c.MaxFileAttempts, "must be >= 1")
	v.If(c.RetryBase <= 0, &c.RetryBase, "must be > 0")
	v.If(c.RetryMax < c.RetryBase, &c.RetryMax, "must be at least %s (%s)", v.Name(&c.RetryBase), c.RetryBase)
	v.If(c.StuckAfter < 0, &c.StuckAfter, "must be >= 0")
	v.If(c.MaxRejectedPerFile < 0, &c.MaxRejectedPerFile, "must be >= 0")
	return v.Err()
}

// natsName tells whether n can name a JetStream stream or consumer: the server takes it
// into API subjects and file names.
func natsName(n string) bool {
	return n != "" && len(n) <= 255 && !strings.ContainsAny(n, " \t\r\n.*>/\\")
}
