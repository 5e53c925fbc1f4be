// Package settings is the generator's configuration: the GENERATOR_* variables and their
// flags (DATABASE_URL and LOG_LEVEL also bare), their defaults and their validation.
// It is importable so that tools (tests/compose, docs) read the settings from here
// rather than from the source. A new setting is one field below and, where it can be
// wrong, one line in Validate.
package settings

import (
	"io"
	"math"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/generator/internal/place"
	"github.com/ecomstream/ecomstream/services/generator/internal/producer"
)

// Prefix starts every variable of the generator.
const Prefix = "GENERATOR"

// Config is the generator's settings.
type Config struct {
	config.Base
	OutputDir     string         `envconfig:"OUTPUT_DIR" flag:"output-dir" default:"/data/incoming" desc:"where files are placed (created if missing)"`
	Output        string         `envconfig:"OUTPUT" flag:"output" desc:"a directory or s3://BUCKET/PREFIX (wins over --output-dir); S3 endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION"`
	MinRecords    int            `envconfig:"MIN_RECORDS" flag:"min-records" default:"50" desc:"rows per file, at least"`
	MaxRecords    int            `envconfig:"MAX_RECORDS" flag:"max-records" default:"100" desc:"rows per file, at most (uniform between)"`
	Sleep         config.Seconds `envconfig:"SLEEP" flag:"sleep" default:"2" desc:"seconds between files, fractional (0.5) or a duration (500ms)"`
	BadRate       float64        `envconfig:"BAD_RATE" flag:"bad-rate" default:"0" desc:"share of deliberately invalid rows, in [0, 1)"`
	DuplicateRate float64        `envconfig:"DUPLICATE_RATE" flag:"duplicate-rate" default:"0" desc:"share of rows repeating an earlier valid row, in [0, 1)"`
	MaxFiles      int64          `envconfig:"MAX_FILES" flag:"max-files" default:"0" desc:"stop after this many files (0 = never)"`
	Duration      config.Seconds `envconfig:"DURATION" flag:"duration" default:"0" desc:"stop after this long, e.g. 20s or 1m (0 = never)"`
	Seed          int64          `envconfig:"SEED" flag:"seed" default:"0" desc:"random seed, for a repeatable stream (0 = random)"`
	Compress      string         `envconfig:"COMPRESS" flag:"compress" default:"none" desc:"none, gzip or zstd: files are placed as .csv, .csv.gz or .csv.zst"`
	StartAt       string         `envconfig:"START_AT" flag:"start-at" desc:"the instant of the first file (RFC 3339, e.g. 2026-12-02T16:00:00.5Z; empty = at once): generators started one after another begin together, their start-up behind them"`
}

// New is the settings before the environment and the flags: the defaults of the shared
// ones that are the generator's own (the rest are the `default` tags). The generator
// does not use DATABASE_URL.
func New() Config { return Config{Base: config.Base{HTTPAddr: ":8081"}} }

// Load reads the settings from the environment and args (a flag overrides its variable);
// usage receives --help, --version and flag errors. It does not validate (Validate).
func Load(args []string, usage io.Writer) (Config, error) {
	c := New()
	err := config.Load(Prefix, &c, args, usage)
	return c, err
}

// Producer is the producer's part of the settings; instance is the replica's name.
func (c *Config) Producer(instance string) producer.Config {
	return producer.Config{
		Dir: c.OutputDir, Instance: instance, MinRecords: c.MinRecords, MaxRecords: c.MaxRecords,
		Sleep: c.Sleep.D(), BadRate: c.BadRate, DuplicateRate: c.DuplicateRate,
		MaxFiles: c.MaxFiles, Duration: c.Duration.D(), Seed: uint64(c.Seed), Compress: c.Compress,
		StartAt: c.startAt(),
	}
}

// startAt is StartAt parsed (zero when empty or not an instant: Validate says so).
func (c *Config) startAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, c.StartAt)
	return t
}

// Validate says what is wrong with the settings, every problem named by its variable and
// flag.
func (c *Config) Validate() error {
	v := config.NewCheck(Prefix, c)
	c.Base.Check(v)
	v.If(c.OutputDir == "", &c.OutputDir, "is required")
	if c.Instance != "" {
		if err := place.CheckInstance(c.Instance); err != nil {
			v.Errorf(&c.Instance, "%v", err)
		}
	}
	v.If(c.MinRecords < 0, &c.MinRecords, "must be >= 0, got %d", c.MinRecords)
	v.If(c.MaxRecords > producer.MaxRecordsLimit, &c.MaxRecords, "must be at most %d, got %d", producer.MaxRecordsLimit, c.MaxRecords)
	v.If(c.MinRecords > c.MaxRecords, &c.MinRecords, "%d is greater than %s %d", c.MinRecords, v.Name(&c.MaxRecords), c.MaxRecords)
	v.If(c.Sleep < 0, &c.Sleep, "must be >= 0, got %s", c.Sleep)
	v.If(c.Duration < 0, &c.Duration, "must be >= 0 (0 = run until stopped), got %s", c.Duration)
	v.If(c.MaxFiles < 0, &c.MaxFiles, "must be >= 0 (0 = no limit), got %d", c.MaxFiles)
	if c.StartAt != "" {
		_, err := time.Parse(time.RFC3339Nano, c.StartAt)
		v.If(err != nil, &c.StartAt, "must be an instant in RFC 3339 (2026-12-02T16:00:00.5Z), got %q", c.StartAt)
	}
	share := true
	for _, r := range []*float64{&c.BadRate, &c.DuplicateRate} {
		if math.IsNaN(*r) || *r < 0 || *r >= 1 {
			v.Errorf(r, "%v is outside [0, 1): it is a share of the rows", *r)
			share = false
		}
	}
	v.If(share && c.BadRate+c.DuplicateRate >= 1, &c.DuplicateRate, "%v + %s %v must be below 1: duplicates repeat valid rows, so some rows must be valid",
		c.DuplicateRate, v.Name(&c.BadRate), c.BadRate)
	return v.Err()
}
