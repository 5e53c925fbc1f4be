package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	HTTPAddr    string        `envconfig:"HTTP_ADDR" flag:"http-addr" default:":8081" desc:"listen address"`
	MinRecords  int           `envconfig:"MIN_RECORDS" flag:"min-records" default:"100" desc:"fewest rows per file"`
	Sleep       Seconds       `envconfig:"SLEEP" flag:"sleep" default:"1" desc:"pause between files, seconds"`
	Interval    time.Duration `envconfig:"INTERVAL" flag:"interval" default:"10s" desc:"rescan interval"`
	BadRate     float64       `envconfig:"BAD_RATE" flag:"bad-rate" default:"0" desc:"share of invalid rows"`
	Once        bool          `envconfig:"ONCE" flag:"once" default:"false" desc:"one file and exit"`
	DatabaseURL string        `envconfig:"DATABASE_URL" flag:"database-url" default:"postgres://localhost/x" desc:"database"`
	EnvOnly     string        `envconfig:"ENV_ONLY" default:"e" desc:"no flag for this one"`
}

// clearEnv unsets the variables the tests read (restored at the end of the test), so a
// DATABASE_URL of the machine running the tests does not leak in.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"DATABASE_URL", "TEST_DATABASE_URL", "TEST_HTTP_ADDR", "TEST_MIN_RECORDS", "TEST_SLEEP",
		"TEST_INTERVAL", "TEST_BAD_RATE", "TEST_ONCE", "TEST_ENV_ONLY"} {
		t.Setenv(k, "")
		unsetenv(k)
	}
}

// unsetenv removes variables t.Setenv has saved (and restores at the end of the test).
func unsetenv(keys ...string) {
	for _, k := range keys {
		os.Unsetenv(k)
	}
}

func load(t *testing.T, args ...string) (testConfig, string, error) {
	t.Helper()
	var c testConfig
	var out bytes.Buffer
	err := Load("TEST", &c, args, &out)
	return c, out.String(), err
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, _, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	want := testConfig{HTTPAddr: ":8081", MinRecords: 100, Sleep: Seconds(time.Second), Interval: 10 * time.Second,
		DatabaseURL: "postgres://localhost/x", EnvOnly: "e"}
	if c != want {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestEnvThenFlag(t *testing.T) {
	clearEnv(t)
	t.Setenv("TEST_HTTP_ADDR", ":9000")
	t.Setenv("TEST_MIN_RECORDS", "50")
	t.Setenv("TEST_SLEEP", "0.5")
	t.Setenv("TEST_BAD_RATE", "0.1")
	t.Setenv("TEST_ONCE", "true")
	t.Setenv("TEST_ENV_ONLY", "from-env")

	c, _, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9000" || c.MinRecords != 50 || c.Sleep.D() != 500*time.Millisecond || c.BadRate != 0.1 || !c.Once || c.EnvOnly != "from-env" {
		t.Errorf("environment not applied: %+v", c)
	}

	// A flag overrides its variable; the others keep the environment's value.
	c, _, err = load(t, "--http-addr", ":9100", "-min-records=200", "--sleep", "0.25", "--once=false")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9100" || c.MinRecords != 200 || c.Sleep.D() != 250*time.Millisecond || c.Once {
		t.Errorf("flags did not override: %+v", c)
	}
	if c.BadRate != 0.1 || c.EnvOnly != "from-env" {
		t.Errorf("environment lost where no flag was given: %+v", c)
	}
}

func TestSeconds(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"0.5", 500 * time.Millisecond}, {"1", time.Second}, {"0.1", 100 * time.Millisecond}, {"2.25", 2250 * time.Millisecond},
		{"0", 0}, {"1500ms", 1500 * time.Millisecond}, {"2s", 2 * time.Second}, {"1m", time.Minute}} {
		t.Run(tc.in, func(t *testing.T) {
			t.Setenv("TEST_SLEEP", tc.in)
			c, _, err := load(t)
			if err != nil || c.Sleep.D() != tc.want {
				t.Errorf("env %q: %v %v, want %v", tc.in, c.Sleep.D(), err, tc.want)
			}
			t.Setenv("TEST_SLEEP", "7")
			c, _, err = load(t, "--sleep", tc.in)
			if err != nil || c.Sleep.D() != tc.want {
				t.Errorf("flag %q: %v %v, want %v", tc.in, c.Sleep.D(), err, tc.want)
			}
		})
	}
	var s Seconds
	if err := s.Set("soon"); err == nil {
		t.Error("Seconds accepted \"soon\"")
	}
	if s = Seconds(1500 * time.Millisecond); s.String() != "1.5s" {
		t.Errorf("String %q", s.String())
	}
	// A plain time.Duration flag reads bare seconds too.
	c, _, err := load(t, "--interval", "0.5")
	if err != nil || c.Interval != 500*time.Millisecond {
		t.Errorf("--interval 0.5: %v %v", c.Interval, err)
	}
	c, _, err = load(t, "--interval", "30s")
	if err != nil || c.Interval != 30*time.Second {
		t.Errorf("--interval 30s: %v %v", c.Interval, err)
	}
}

func TestSharedVariableFallback(t *testing.T) {
	clearEnv(t)
	t.Setenv("DATABASE_URL", "postgres://bare/db")
	c, _, err := load(t)
	if err != nil || c.DatabaseURL != "postgres://bare/db" {
		t.Errorf("bare DATABASE_URL: %q %v", c.DatabaseURL, err)
	}
	t.Setenv("TEST_DATABASE_URL", "postgres://prefixed/db")
	c, _, err = load(t)
	if err != nil || c.DatabaseURL != "postgres://prefixed/db" {
		t.Errorf("prefixed variable must win: %q %v", c.DatabaseURL, err)
	}
	c, _, err = load(t, "--database-url", "postgres://flag/db")
	if err != nil || c.DatabaseURL != "postgres://flag/db" {
		t.Errorf("flag must win: %q %v", c.DatabaseURL, err)
	}
}

func TestHelp(t *testing.T) {
	clearEnv(t)
	for _, arg := range []string{"--help", "-h", "-help"} {
		_, out, err := load(t, arg)
		if !IsHelp(err) || err != ErrHelp {
			t.Fatalf("%s: err %v, want ErrHelp", arg, err)
		}
		for _, want := range []string{"Settings of test", "TEST_HTTP_ADDR", "--http-addr", "listen address", `(default ":8081")`,
			"TEST_SLEEP", "--sleep", "DATABASE_URL", "TEST_ENV_ONLY"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: help lacks %q:\n%s", arg, want, out)
			}
		}
		if strings.Contains(out, "TEST_DATABASE_URL") || strings.Contains(out, "--env-only") {
			t.Errorf("%s: help names a variable or flag that is not the documented one:\n%s", arg, out)
		}
	}
}

func TestErrors(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--min-records", "many"},
		{"--sleep", "soon"},
		{"--bad-rate", "x"},
		{"--once=maybe"},
		{"stray-argument"},
		{"--env-only", "x"},
	} {
		if _, _, err := load(t, args...); err == nil || IsHelp(err) {
			t.Errorf("%q: err %v, want an error", args, err)
		}
	}
	t.Setenv("TEST_MIN_RECORDS", "many")
	if _, _, err := load(t); err == nil || !strings.Contains(err.Error(), `TEST_MIN_RECORDS="many"`) {
		t.Errorf("bad variable: %v", err)
	}
	t.Setenv("TEST_MIN_RECORDS", "1")
	t.Setenv("TEST_SLEEP", "soon")
	if _, _, err := load(t); err == nil {
		t.Error("TEST_SLEEP=soon accepted")
	}
}
