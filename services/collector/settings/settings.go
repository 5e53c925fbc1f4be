// Package settings is the collector's configuration: the COLLECTOR_* variables and their
// flags (DATABASE_URL and LOG_LEVEL also bare), their defaults and their validation.
// It is importable so that tools (tests/compose, docs) read the settings from here
// rather than from the source. A new setting is one field below and, where it can be
// wrong, one line in Validate.
package settings

import (
	"io"
	"strings"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// Prefix starts every variable of the collector.
const Prefix = "COLLECTOR"

// Config is the collector's settings.
type Config struct {
	config.Base
	WatchDir string `envconfig:"WATCH_DIR" flag:"watch-dir" default:"/data/incoming" desc:"the volume's incoming directory (backlog)"`
	Source   string `envconfig:"SOURCE" flag:"source" default:"" desc:"s3://BUCKET/PREFIX: measure the backlog of that bucket prefix (the ingesters' INGESTER_SOURCE; endpoint and keys from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) instead of the watched directory; empty = the directory"`
	// The ingesters' INGESTER_S3_ARCHIVE_PREFIX and _FAILED_PREFIX: objects there are
	// done, not backlog.
	S3ArchivePrefix  string        `envconfig:"S3_ARCHIVE_PREFIX" flag:"s3-archive-prefix" default:"archive/" desc:"with COLLECTOR_SOURCE: the ingesters' INGESTER_S3_ARCHIVE_PREFIX (objects there are not backlog)"`
	S3FailedPrefix   string        `envconfig:"S3_FAILED_PREFIX" flag:"s3-failed-prefix" default:"failed/" desc:"with COLLECTOR_SOURCE: the ingesters' INGESTER_S3_FAILED_PREFIX (objects there are not backlog)"`
	S3ListTimeout    time.Duration `envconfig:"S3_LIST_TIMEOUT" flag:"s3-list-timeout" default:"2m" desc:"with COLLECTOR_SOURCE: bound of one listing of the bucket, which may outlast a measurement (the last finished listing is served meanwhile)"`
	Interval         time.Duration `envconfig:"INTERVAL" flag:"interval" default:"5s" desc:"how often it measures"`
	Window           time.Duration `envconfig:"WINDOW" flag:"window" default:"5m" desc:"sliding window of latency percentiles, bands, throughput, error rate, duplicates"`
	QueryInterval    time.Duration `envconfig:"QUERY_INTERVAL" flag:"query-interval" default:"30s" desc:"how often the report's five (full-table) queries are timed (at least 20 times their last run's duration apart)"`
	StatementTimeout time.Duration `envconfig:"STATEMENT_TIMEOUT" flag:"statement-timeout" default:"5s" desc:"statement_timeout of every query the collector runs"`
	// PostgreSQL's views are postgres_exporter's; where none runs (local mode) the
	// collector serves the few of its series the dashboards read (docs/metrics.md).
	ExporterStandIn bool `envconfig:"EXPORTER_STAND_IN" flag:"exporter-stand-in" desc:"serve postgres_exporter's pg_stat_database, pg_database_size and pg_settings series where no exporter runs (local mode); never beside a real exporter"`
	MigrateAtStart  bool `envconfig:"MIGRATE_AT_START" flag:"migrate-at-start" default:"true" desc:"apply the schema migrations at start-up (false where a one-shot job migrates and the collector runs as its own read-only role, as in compose)"`
}

// New is the settings before the environment and the flags: the defaults of the shared
// ones that are the collector's own (the rest are the `default` tags).
func New() Config { return Config{Base: config.Base{HTTPAddr: ":8083"}} }

// Load reads the settings from the environment and args (a flag overrides its variable);
// usage receives --help, --version and flag errors. It does not validate (Validate).
func Load(args []string, usage io.Writer) (Config, error) {
	c := New()
	err := config.Load(Prefix, &c, args, usage)
	return c, err
}

// Validate says what is wrong with the settings, every problem named by its variable and
// flag.
func (c *Config) Validate() error {
	v := config.NewCheck(Prefix, c)
	c.Base.Check(v)
	v.If(c.DatabaseURL == "", &c.DatabaseURL, "is required")
	if c.Source == "" {
		v.If(c.WatchDir == "", &c.WatchDir, "is required")
	} else {
		if _, err := objstore.Parse(c.Source); err != nil {
			v.Errorf(&c.Source, "%v", err)
		}
		// As the ingester checks its own: an empty prefix would put every key aside.
		v.If(c.S3ArchivePrefix == "" || !strings.HasSuffix(c.S3ArchivePrefix, "/"), &c.S3ArchivePrefix, "must be a non-empty prefix ending in '/'")
		v.If(c.S3FailedPrefix == "" || !strings.HasSuffix(c.S3FailedPrefix, "/"), &c.S3FailedPrefix, "must be a non-empty prefix ending in '/'")
		v.If(c.S3ListTimeout <= 0, &c.S3ListTimeout, "must be > 0")
	}
	v.If(c.Interval <= 0, &c.Interval, "must be > 0")
	v.If(c.Window <= 0, &c.Window, "must be > 0")
	v.If(c.QueryInterval <= 0, &c.QueryInterval, "must be > 0")
	v.If(c.StatementTimeout < 0, &c.StatementTimeout, "must be >= 0 (0 = none)")
	return v.Err()
}
