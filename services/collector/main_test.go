package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/maintest"
)

func TestMain(m *testing.M) { maintest.Main(m, main) }

// GNU screen sets WINDOW (to 0, 1, ...) in every shell it opens; it is not the collector's
// window, and a bare INTERVAL or WATCH_DIR is not a setting either.
func TestABareVariableOfTheShellIsNotASetting(t *testing.T) {
	code, _, stderr := maintest.Run(t, []string{"WINDOW=1", "INTERVAL=soon", "STATEMENT_TIMEOUT=x"},
		"healthcheck", "--http-addr", maintest.Healthy(t))
	if code != 0 {
		t.Errorf("exit %d: %s; a bare variable was read as a setting", code, stderr)
	}
}

func TestBadSettingsExit2AsAProcess(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"COLLECTOR_WINDOW=soon"}, `COLLECTOR_WINDOW="soon"`},
		{[]string{"DATABASE_URL=postgres://127.0.0.1:1/x", "COLLECTOR_INTERVAL=0"}, "COLLECTOR_INTERVAL (--interval) must be > 0"},
		{[]string{"DATABASE_URL=postgres://127.0.0.1:1/x", "LOG_LEVEL=loud"}, "LOG_LEVEL (--log-level) must be"},
		{nil, "DATABASE_URL (--database-url) is required"},
	} {
		code, _, stderr := maintest.Run(t, tc.env)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.env, code, stderr, tc.want)
		}
	}
}

func TestVersionPrintsTheBuild(t *testing.T) { maintest.CheckVersion(t, "collector") }

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"--help"}, &out, &out)
	if !config.IsHelp(err) {
		t.Fatalf("--help: %v", err)
	}
	for _, s := range []string{"COLLECTOR_HTTP_ADDR", "--watch-dir", "COLLECTOR_INTERVAL", "COLLECTOR_WINDOW", "DATABASE_URL", "LOG_LEVEL", `":8083"`, `"5s"`, `"/data/incoming"`} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help lacks %s:\n%s", s, out.String())
		}
	}
}

func TestHealthcheckFailsWithoutServer(t *testing.T) {
	if err := run([]string{"healthcheck", "--http-addr", "127.0.0.1:1"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("healthcheck passed with nothing listening")
	}
}

func TestSessionSettings(t *testing.T) {
	u, err := withSessionSettings("postgres://u@h:5432/db?sslmode=disable&lock_timeout=50", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"statement_timeout=5000", "lock_timeout=50", "application_name=ecomstream-collector", "sslmode=disable", "idle_in_transaction_session_timeout=10000"} {
		if !strings.Contains(u, s) {
			t.Errorf("%s lacks %s", u, s)
		}
	}
	d, err := withSessionSettings("host=h dbname=db", time.Second)
	if err != nil || !strings.Contains(d, " statement_timeout=1000") || !strings.Contains(d, " lock_timeout=1000") {
		t.Errorf("keyword DSN: %q, %v", d, err)
	}
}

// A database URL that does not parse (a password with a bare '%', say) stops the
// collector with what is wrong, never with the password: net/url's error quotes the
// whole URL, with or without the migration first.
func TestAMalformedDatabaseURLIsNeverEchoedWithItsPassword(t *testing.T) {
	for _, migrate := range []string{"true", "false"} {
		code, stdout, stderr := maintest.Run(t, []string{"DATABASE_URL=postgres://u:s3cr3t%zz@127.0.0.1:1/db",
			"COLLECTOR_MIGRATE_AT_START=" + migrate, "COLLECTOR_HTTP_ADDR=127.0.0.1:0"})
		if code == 0 || strings.Contains(stdout+stderr, "s3cr3t") {
			t.Errorf("migrate at start %s: exit %d, output %s%s; want a failure without the password", migrate, code, stdout, stderr)
		}
	}
}
