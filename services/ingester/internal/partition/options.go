package partition

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options are the partitioning and retention settings (the ingester's
// INGESTER_PARTITION_* and *_RETENTION settings, validated by its settings package).
type Options struct {
	Width     time.Duration // range of one partition; default a day
	Ahead     int           // partitions kept ready beyond the current one
	Retention time.Duration // events: partitions wholly older than this are dropped; 0 = keep
	// The ledger and the rejected rows have their own windows (0 = keep). Keeping the
	// ledger at least as long as the events keeps a replayed old file a no-op.
	LedgerRetention   time.Duration
	RejectedRetention time.Duration
	Interval          time.Duration // how often the maintenance loop runs
	// LockTimeout bounds how long DDL waits for a table lock, so a partition change
	// queued behind a long batch never stalls the batches queued behind it; it is tried
	// again on the next pass.
	LockTimeout time.Duration
}

// Defaults are the settings' defaults.
var Defaults = Options{Width: 24 * time.Hour, Ahead: 7, Interval: 10 * time.Minute, LockTimeout: 2 * time.Second}

// Retention is a window of time written as Go durations ("36h") or whole days ("30d");
// "off", "" and "0" mean no retention. It reads from the environment and from a flag
// alike (flag.Value).
type Retention time.Duration

// Set parses s.
func (r *Retention) Set(s string) error {
	s = strings.TrimSpace(strings.ToLower(s))
	switch {
	case s == "" || s == "off" || s == "0":
		*r = 0
		return nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 {
			return fmt.Errorf("retention %q: want whole days like 30d, a duration like 36h, or off", s)
		}
		*r = Retention(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("retention %q: want whole days like 30d, a duration like 36h, or off", s)
	}
	*r = Retention(d)
	return nil
}

// String prints whole days as "30d" and 0 as "off".
func (r Retention) String() string {
	d := time.Duration(r)
	switch {
	case d == 0:
		return "off"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
