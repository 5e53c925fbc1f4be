// Package servertest is what the throwaway servers of the tests (pgtest's PostgreSQL,
// s3test's versitygw and NATS) share: a free loopback port, the end of a server's log for
// an error message, and the rule that a missing server skips a test on a developer's
// machine but fails it in CI.
package servertest

import (
	"net"
	"os"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail is the last 2,000 bytes of a server's log file, for an error message.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Missing skips tb because a server (what) cannot be run here (err says why), or fails it
// when the variable requireEnv is set: CI sets it, so CI never passes by skipping.
func Missing(tb testing.TB, requireEnv, what string, err error) {
	tb.Helper()
	if os.Getenv(requireEnv) != "" {
		tb.Fatalf("%v (%s is set: a real %s is required)", err, requireEnv, what)
	}
	tb.Skipf("needs a real %s: %v", what, err)
}
