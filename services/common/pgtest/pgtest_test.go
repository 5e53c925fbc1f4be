package pgtest

import (
	"fmt"
	"os"
	"testing"
)

// recorder is a testing.TB that notes how a test ended instead of ending it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	if r.fatal == "" && r.skip == "" {
		r.fatal = fmt.Sprintf(format, args...)
	}
}
func (r *recorder) Skipf(format string, args ...any) {
	if r.fatal == "" && r.skip == "" {
		r.skip = fmt.Sprintf(format, args...)
	}
}

// On a machine without PostgreSQL's server binaries a test that needs them skips with a
// message saying so, unless ECOMSTREAM_REQUIRE_POSTGRES makes that a failure (CI).
func TestWithoutServerBinariesRequireSkipsOrFailsInCI(t *testing.T) {
	t.Setenv("ECOMSTREAM_TEST_DATABASE_URL", "")
	t.Setenv(BinDirEnv, t.TempDir())
	t.Setenv(RequireEnv, "")
	os.Unsetenv(RequireEnv)
	r := &recorder{TB: t}
	Require(r)
	if r.fatal != "" || r.skip == "" {
		t.Errorf("without binaries: fatal %q, skip %q; want a skip", r.fatal, r.skip)
	}
	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	Require(r)
	if r.fatal == "" {
		t.Errorf("without binaries and %s=1: skip %q; want a failure", RequireEnv, r.skip)
	}
	t.Logf("skip message: %s", r.fatal)
}
