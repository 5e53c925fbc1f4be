package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/common/objstore"

	"github.com/ecomstream/ecomstream/services/ingester/internal/partition"
)

// Config is the ingester's settings: environment variables with the INGESTER_ prefix
// (DATABASE_URL and LOG_LEVEL also bare) and the flags of the same meaning.
type Config struct {
	DatabaseURL     string        `envconfig:"DATABASE_URL" flag:"database-url" default:"postgres://ecomstream:ecomstream@localhost:5432/ecomstream?sslmode=disable" desc:"PostgreSQL URL"`
	LogLevel        string        `envconfig:"LOG_LEVEL" flag:"log-level" default:"info" desc:"debug, info, warn or error"`
	HTTPAddr        string        `envconfig:"HTTP_ADDR" flag:"http-addr" default:":8082" desc:"address of /healthz, /readyz and /metrics"`
	Instance        string        `envconfig:"INSTANCE" flag:"instance" default:"" desc:"name of this replica in logs and the ledger (default: host name)"`
	InputDir        string        `envconfig:"INPUT_DIR" flag:"input-dir" default:"/data/incoming" desc:"watched directory of *.csv files"`
	ArchiveDir      string        `envconfig:"ARCHIVE_DIR" flag:"archive-dir" default:"/data/archive" desc:"where committed files go"`
	FailedDir       string        `envconfig:"FAILED_DIR" flag:"failed-dir" default:"/data/failed" desc:"where rejected files go, with a .reason.txt"`
	OnSuccess       string        `envconfig:"ON_SUCCESS" flag:"on-success" default:"archive" desc:"archive or delete committed files (keep: leave them, a bucket only)"`
	TriggerInterval time.Duration `envconfig:"TRIGGER_INTERVAL" flag:"trigger-interval" default:"0s" desc:"0 = continuous; 10s or 30s reproduce Spark's micro-batch triggers"`
	MaxBatchRecords int           `envconfig:"MAX_BATCH_RECORDS" flag:"max-batch-records" default:"20000" desc:"rows per transaction at most (a file is never split: a larger file is a transaction of its own)"`
	MaxBatchFiles   int           `envconfig:"MAX_BATCH_FILES" flag:"max-batch-files" default:"500" desc:"files per transaction at most"`
	Settle          time.Duration `envconfig:"SETTLE" flag:"settle" default:"1s" desc:"a file written in place is read once its size and mtime have been still this long; a renamed-in file is read at once"`
	Workers         int           `envconfig:"WORKERS" flag:"workers" default:"2" desc:"batches committed in parallel"`
	RescanInterval  time.Duration `envconfig:"RESCAN_INTERVAL" flag:"rescan-interval" default:"2s" desc:"how often the directory (or the bucket prefix) is listed in case inotify (or a notification) missed something"`

	// A bucket as the source (package source/s3). Endpoint and keys: AWS_ENDPOINT_URL,
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, read bare.
	Source          string        `envconfig:"SOURCE" flag:"source" default:"" desc:"s3://BUCKET/PREFIX to read a bucket; empty = the input directory"`
	S3ArchivePrefix string        `envconfig:"S3_ARCHIVE_PREFIX" flag:"s3-archive-prefix" default:"archive/" desc:"with a bucket source: key prefix of archived objects (same bucket)"`
	S3FailedPrefix  string        `envconfig:"S3_FAILED_PREFIX" flag:"s3-failed-prefix" default:"failed/" desc:"with a bucket source: key prefix of rejected objects and their .reason.txt (same bucket)"`
	NATSURL         string        `envconfig:"NATS_URL" flag:"nats-url" default:"" desc:"NATS server the bucket's event notifications are published to (empty = listing only)"`
	NATSSubject     string        `envconfig:"NATS_SUBJECT" flag:"nats-subject" default:"ecomstream.s3.events" desc:"subject of the bucket's event notifications"`
	MaxRejected     int           `envconfig:"MAX_REJECTED_BUFFER" flag:"max-rejected-buffer" default:"10000" desc:"rejected rows held in memory before they are written"`
	ShutdownGrace   time.Duration `envconfig:"SHUTDOWN_GRACE" flag:"shutdown-grace" default:"20s" desc:"on SIGTERM, how long the batch in flight may take to commit before it is rolled back"`
	DBWait          time.Duration `envconfig:"DB_WAIT" flag:"db-wait" default:"60s" desc:"how long to wait for PostgreSQL at start-up"`

	// Partitions and retention (issue 13; package partition). envconfig also reads the
	// bare names (EVENTS_RETENTION) when the prefixed ones are unset.
	PartitionWidth      time.Duration       `envconfig:"PARTITION_WIDTH" flag:"partition-width" default:"24h" desc:"time range of one events partition (divides a day, or whole days)"`
	PartitionsAhead     int                 `envconfig:"PARTITIONS_AHEAD" flag:"partitions-ahead" default:"7" desc:"events partitions kept ready beyond the current one"`
	MaintenanceInterval time.Duration       `envconfig:"PARTITION_MAINTENANCE_INTERVAL" flag:"partition-maintenance-interval" default:"10m" desc:"how often partitions and retention are maintained (one replica at a time)"`
	EventsRetention     partition.Retention `envconfig:"EVENTS_RETENTION" flag:"events-retention" default:"off" desc:"drop events partitions wholly older than this (30d, 36h; off = keep)"`
	LedgerRetention     partition.Retention `envconfig:"LEDGER_RETENTION" flag:"ledger-retention" default:"off" desc:"delete ledger rows committed longer ago (keep it >= the events retention so a replayed file stays a no-op)"`
	RejectedRetention   partition.Retention `envconfig:"REJECTED_RETENTION" flag:"rejected-retention" default:"off" desc:"delete rejected rows older than this"`

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
	StuckAfter         time.Duration `envconfig:"STUCK_AFTER" flag:"stuck-after" default:"5m" desc:"/healthz fails once a worker has made no progress on its claim for this long (0 = never)"`
	MaxRejectedPerFile int           `envconfig:"MAX_REJECTED_PER_FILE" flag:"max-rejected-per-file" default:"1000" desc:"rejected lines stored per file at most; the rest are counted in the ledger only (0 = all)"`
}

func (c *Config) partitions() partition.Options {
	o := partition.Defaults
	o.Width, o.Ahead, o.Interval = c.PartitionWidth, c.PartitionsAhead, c.MaintenanceInterval
	o.Retention, o.LedgerRetention, o.RejectedRetention = time.Duration(c.EventsRetention), time.Duration(c.LedgerRetention), time.Duration(c.RejectedRetention)
	return o
}

func (c *Config) validate() error {
	if c.Source != "" {
		if err := c.validateBucket(); err != nil {
			return err
		}
	}
	dir := c.Source == ""
	switch {
	case dir && c.InputDir == "":
		return fmt.Errorf("INGESTER_INPUT_DIR (--input-dir) is required")
	case dir && c.OnSuccess != "archive" && c.OnSuccess != "delete":
		return fmt.Errorf("INGESTER_ON_SUCCESS (--on-success) must be archive or delete, got %q", c.OnSuccess)
	case dir && c.OnSuccess == "archive" && c.ArchiveDir == "":
		return fmt.Errorf("INGESTER_ARCHIVE_DIR (--archive-dir) is required with --on-success archive")
	case dir && c.FailedDir == "":
		return fmt.Errorf("INGESTER_FAILED_DIR (--failed-dir) is required")
	case c.TriggerInterval < 0:
		return fmt.Errorf("INGESTER_TRIGGER_INTERVAL (--trigger-interval) must be >= 0")
	case c.MaxBatchRecords < 1:
		return fmt.Errorf("INGESTER_MAX_BATCH_RECORDS (--max-batch-records) must be >= 1")
	case c.MaxBatchFiles < 1:
		return fmt.Errorf("INGESTER_MAX_BATCH_FILES (--max-batch-files) must be >= 1")
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("INGESTER_WORKERS (--workers) must be 1 to 64")
	case c.Settle < 0:
		return fmt.Errorf("INGESTER_SETTLE (--settle) must be >= 0")
	case c.RescanInterval <= 0:
		return fmt.Errorf("INGESTER_RESCAN_INTERVAL (--rescan-interval) must be > 0")
	case c.MaxRejected < 1:
		return fmt.Errorf("INGESTER_MAX_REJECTED_BUFFER must be >= 1")
	case c.DBConnectTimeout < 0 || c.DBStatementTimeout < 0 || c.DBIdleInTxTimeout < 0 || c.DBIdleSessionTimeout < 0 ||
		c.DBKeepAlive < 0 || c.DBTCPUserTimeout < 0:
		return fmt.Errorf("INGESTER_DB_*_TIMEOUT and INGESTER_DB_KEEPALIVE must be >= 0")
	case c.MaxFileAttempts < 1:
		return fmt.Errorf("INGESTER_MAX_FILE_ATTEMPTS (--max-file-attempts) must be >= 1")
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return fmt.Errorf("INGESTER_RETRY_BASE (--retry-base) must be > 0 and INGESTER_RETRY_MAX (--retry-max) at least as long")
	case c.StuckAfter < 0:
		return fmt.Errorf("INGESTER_STUCK_AFTER (--stuck-after) must be >= 0")
	case c.MaxRejectedPerFile < 0:
		return fmt.Errorf("INGESTER_MAX_REJECTED_PER_FILE (--max-rejected-per-file) must be >= 0")
	}
	return c.partitions().Validate()
}

func (c *Config) validateBucket() error {
	if _, err := objstore.Parse(c.Source); err != nil {
		return fmt.Errorf("INGESTER_SOURCE (--source): %w", err)
	}
	switch {
	case c.OnSuccess != "archive" && c.OnSuccess != "delete" && c.OnSuccess != "keep":
		return fmt.Errorf("INGESTER_ON_SUCCESS (--on-success) must be archive, delete or keep, got %q", c.OnSuccess)
	case c.S3ArchivePrefix == "" || !strings.HasSuffix(c.S3ArchivePrefix, "/"):
		return fmt.Errorf("INGESTER_S3_ARCHIVE_PREFIX (--s3-archive-prefix) must be a non-empty prefix ending in '/'")
	case c.S3FailedPrefix == "" || !strings.HasSuffix(c.S3FailedPrefix, "/"):
		return fmt.Errorf("INGESTER_S3_FAILED_PREFIX (--s3-failed-prefix) must be a non-empty prefix ending in '/'")
	case c.NATSURL != "" && c.NATSSubject == "":
		return fmt.Errorf("INGESTER_NATS_SUBJECT (--nats-subject) is required with INGESTER_NATS_URL")
	}
	return nil
}
