// Package settings is the load test's configuration: the LOADTEST_* variables and their
// flags, their defaults and their validation. The load test has none of the services'
// shared settings (it starts its own PostgreSQL and services), so it embeds no
// config.Base. A new setting is one field below and, where it can be wrong, one line in
// Validate.
package settings

import (
	"io"
	"math"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/loadtest/internal/scenario"
)

// Prefix starts every variable of the load test.
const Prefix = "LOADTEST"

// Config is the load test's settings.
type Config struct {
	Scenario        string         `envconfig:"SCENARIO" flag:"scenario" default:"baseline" desc:"baseline, high-load, stress, custom or max"`
	Mode            string         `envconfig:"MODE" flag:"mode" default:"local" desc:"local (processes + throwaway PostgreSQL), compose (docker compose stack) or auto (compose when a Docker daemon answers, else local)"`
	Duration        time.Duration  `envconfig:"DURATION" flag:"duration" default:"0" desc:"generation time (0 = the preset's); for max, bounds the whole ramp"`
	Generators      int            `envconfig:"GENERATORS" flag:"generators" default:"0" desc:"generator replicas (0 = the preset's, 1)"`
	Ingesters       int            `envconfig:"INGESTERS" flag:"ingesters" default:"0" desc:"ingester replicas (0 = the preset's, 1)"`
	MinRecords      int            `envconfig:"MIN_RECORDS" flag:"min-records" default:"0" desc:"rows per file, at least (0 = the preset's)"`
	MaxRecords      int            `envconfig:"MAX_RECORDS" flag:"max-records" default:"0" desc:"rows per file, at most (0 = the preset's)"`
	Sleep           config.Seconds `envconfig:"SLEEP" flag:"sleep" default:"0" desc:"seconds between files per generator (0 = the preset's)"`
	TriggerInterval time.Duration  `envconfig:"TRIGGER_INTERVAL" flag:"trigger-interval" default:"0" desc:"ingester trigger (0 = continuous; 10s, 30s reproduce Spark's)"`
	Workers         int            `envconfig:"WORKERS" flag:"workers" default:"0" desc:"INGESTER_WORKERS of each ingester (0 = its default)"`
	BadRate         float64        `envconfig:"BAD_RATE" flag:"bad-rate" default:"0" desc:"share of deliberately invalid rows"`
	DuplicateRate   float64        `envconfig:"DUPLICATE_RATE" flag:"duplicate-rate" default:"0" desc:"share of rows repeating an earlier event_id"`
	StepDuration    time.Duration  `envconfig:"STEP_DURATION" flag:"step-duration" default:"0" desc:"max: length of one ramp step (0 = 30s)"`
	StartRate       float64        `envconfig:"START_RATE" flag:"start-rate" default:"0" desc:"max: offered rows/s of the first step (0 = 2500)"`
	BulkRows        int            `envconfig:"BULK_ROWS" flag:"bulk-rows" default:"300000" desc:"max, local mode: rows of the 2-stream COPY bulk baseline measured before the ramp on the same PostgreSQL (0 = not measured)"`
	DrainTimeout    time.Duration  `envconfig:"DRAIN_TIMEOUT" flag:"drain-timeout" default:"0" desc:"how long to wait for every produced file to be committed (0 = 2m + duration/5); the run fails after it"`
	Reports         string         `envconfig:"REPORTS_DIR" flag:"reports-dir" default:"" desc:"where the report is written (default <repo>/reports)"`
	WorkDir         string         `envconfig:"WORK_DIR" flag:"work-dir" default:"" desc:"local mode: where a run's PostgreSQL, files and logs live (default <repo>/tmp/loadtest)"`
	AdminURL        string         `envconfig:"ADMIN_URL" flag:"admin-url" default:"" desc:"local mode: an existing PostgreSQL server to create the run's database on (empty = a throwaway cluster)"`
	Keep            bool           `envconfig:"KEEP" flag:"keep" default:"false" desc:"local mode: keep the run's files, logs and cluster directory"`
	Clean           bool           `envconfig:"CLEAN" flag:"clean" default:"false" desc:"compose mode: TRUNCATE the tables before the run"`
	Project         string         `envconfig:"PROJECT" flag:"project" default:"" desc:"compose mode: project name (default the compose file's)"`
	PrometheusURL   string         `envconfig:"PROMETHEUS_URL" flag:"prometheus-url" default:"http://127.0.0.1:9090" desc:"compose mode: Prometheus' address"`
	Thresholds      string         `envconfig:"THRESHOLDS" flag:"thresholds" default:"" desc:"the SLA rule file (default <repo>/deploy/prometheus/rules/sla-thresholds.rules.yml)"`
	Root            string         `envconfig:"ROOT" flag:"root" default:"" desc:"repository root (default: found from the working directory)"`
	BinDir          string         `envconfig:"BIN_DIR" flag:"bin-dir" default:"" desc:"local mode: where generator, ingester and collector are (default <repo>/bin)"`
	Collector       bool           `envconfig:"COLLECTOR" flag:"collector" default:"true" desc:"local mode: run the collector beside the pipeline, as compose does (false = measure without its queries)"`
	Quiet           bool           `envconfig:"QUIET" flag:"quiet" default:"false" desc:"no progress line"`
}

// Load reads the settings from the environment and args (a flag overrides its variable);
// usage receives --help, --version and flag errors. It does not validate (Validate).
func Load(args []string, usage io.Writer) (Config, error) {
	var c Config
	err := config.Load(Prefix, &c, args, usage)
	return c, err
}

// Validate says what is wrong with the settings, every problem named by its variable and
// flag.
func (c *Config) Validate() error {
	v := config.NewCheck(Prefix, c)
	if _, err := scenario.Preset(c.Scenario); err != nil {
		v.Errorf(&c.Scenario, "%v", err)
	}
	v.If(c.Mode != "local" && c.Mode != "compose" && c.Mode != "auto", &c.Mode, "must be local, compose or auto, got %q", c.Mode)
	for _, d := range []*time.Duration{&c.Duration, &c.TriggerInterval, &c.StepDuration, &c.DrainTimeout} {
		v.If(*d < 0, d, "must be >= 0 (0 = the preset's)")
	}
	v.If(c.Sleep < 0, &c.Sleep, "must be >= 0 (0 = the preset's)")
	for _, n := range []*int{&c.Generators, &c.Ingesters, &c.MinRecords, &c.MaxRecords, &c.Workers, &c.BulkRows} {
		v.If(*n < 0, n, "must be >= 0")
	}
	for _, r := range []*float64{&c.BadRate, &c.DuplicateRate} {
		v.If(math.IsNaN(*r) || *r < 0 || *r >= 1, r, "%v is outside [0, 1): it is a share of the rows", *r)
	}
	v.If(c.StartRate < 0, &c.StartRate, "must be >= 0")
	return v.Err()
}
