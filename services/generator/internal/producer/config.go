package producer

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/generator/internal/place"
	"github.com/ecomstream/ecomstream/services/generator/internal/traffic"
)

// Config is what the producer needs of the service's settings.
type Config struct {
	Dir           string
	Output        place.Output // a bucket, say; when nil, the directory Dir
	Instance      string
	MinRecords    int
	MaxRecords    int
	Sleep         time.Duration // between file starts; 0 = as fast as possible
	BadRate       float64
	DuplicateRate float64
	MaxFiles      int64         // stop after this many files; 0 = never
	Duration      time.Duration // stop after this long; 0 = never
	Seed          uint64        // 0 = a random seed (logged, so a run can be repeated)
	Progress      time.Duration // interval of the progress log line; 10s when 0
	Clock         Clock         // SystemClock when nil; tests simulate time
	Traffic       traffic.Params
	Compress      string // none (or empty), gzip or zstd: the files are .csv, .csv.gz or .csv.zst
	// StartAt is the instant of the first file (zero: at once); --duration counts from it.
	StartAt time.Time
}

// MaxRecordsLimit bounds rows per file (about 15 GB of CSV).
const MaxRecordsLimit = 100_000_000

// Validate explains the first setting that cannot work, by its flag name.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" && c.Output == nil {
		errs = append(errs, errors.New("--output-dir is empty"))
	}
	if err := place.CheckInstance(c.Instance); err != nil {
		errs = append(errs, fmt.Errorf("--instance: %w", err))
	}
	if c.MinRecords < 0 {
		errs = append(errs, fmt.Errorf("--min-records %d is negative", c.MinRecords))
	}
	if c.MaxRecords > MaxRecordsLimit {
		errs = append(errs, fmt.Errorf("--max-records %d is above the limit of %d", c.MaxRecords, MaxRecordsLimit))
	}
	if c.MinRecords > c.MaxRecords {
		errs = append(errs, fmt.Errorf("--min-records %d is greater than --max-records %d", c.MinRecords, c.MaxRecords))
	}
	if c.Sleep < 0 {
		errs = append(errs, fmt.Errorf("--sleep %s is negative", c.Sleep))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %s is negative (0 = run until stopped)", c.Duration))
	}
	if c.MaxFiles < 0 {
		errs = append(errs, fmt.Errorf("--max-files %d is negative (0 = no limit)", c.MaxFiles))
	}
	rate := func(flag string, r float64) {
		if math.IsNaN(r) || r < 0 || r >= 1 {
			errs = append(errs, fmt.Errorf("%s %v is outside [0, 1): it is a share of the rows", flag, r))
		}
	}
	switch c.Compress {
	case "", compress.None, compress.Gzip, compress.Zstd:
	default:
		errs = append(errs, fmt.Errorf("--compress %q: want none, gzip or zstd", c.Compress))
	}
	rate("--bad-rate", c.BadRate)
	rate("--duplicate-rate", c.DuplicateRate)
	if c.BadRate+c.DuplicateRate >= 1 {
		errs = append(errs, fmt.Errorf("--bad-rate %v + --duplicate-rate %v must be below 1: duplicates repeat valid rows, so some rows must be valid",
			c.BadRate, c.DuplicateRate))
	}
	return errors.Join(errs...)
}
