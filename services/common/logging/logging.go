// Package logging builds the JSON logger every service uses: zerolog with the service
// and instance on every line, so logs from many replicas can be told apart.
package logging

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/replica"
)

// New returns a logger writing JSON lines to w at the given level (debug, info, warn,
// error); an unknown level is an error rather than a silent default.
func New(w io.Writer, service, instance, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(strings.TrimSpace(level)))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Nop(), &levelError{level}
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().
		Str("service", service).Str("instance", instance).Logger(), nil
}

type levelError struct{ level string }

func (e *levelError) Error() string {
	return "unknown log level " + `"` + e.level + `"` + " (want debug, info, warn or error)"
}

// Instance names this process among replicas: the explicit setting, else its replica name
// (compose: ingester-2, package replica), else the host name, else the pid. The name is
// recorded as the replica's (replica.Set), so ecomstream_build_info carries it too.
func Instance(explicit string) string {
	name := explicit
	if name == "" {
		// Under compose the host name is a container ID; the replica's name reads better.
		name = replica.Lookup()
	}
	if name == "" {
		if h, err := os.Hostname(); err == nil {
			name = h
		}
	}
	if name == "" {
		name = "pid" + itoa(os.Getpid())
	}
	replica.Set(name)
	return name
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
