package config

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ecomstream/ecomstream/services/common/buildinfo"
)

type serviceConfig struct {
	Base
	Window  time.Duration `envconfig:"WINDOW" flag:"window" default:"5m" desc:"sliding window"`
	Workers int           `envconfig:"WORKERS" flag:"workers" default:"2" desc:"parallel batches"`
}

func newService() serviceConfig {
	return serviceConfig{Base: Base{HTTPAddr: ":8083", DatabaseURL: "postgres://default/db"}}
}

func (c *serviceConfig) check() error {
	v := NewCheck("SVC", c)
	c.Base.Check(v)
	v.If(c.Workers < 1 || c.Workers > 64, &c.Workers, "must be 1 to 64")
	v.If(c.Window <= 0, &c.Window, "must be > 0")
	return v.Err()
}

func clearService(t *testing.T) {
	t.Helper()
	for _, k := range []string{"DATABASE_URL", "LOG_LEVEL", "HTTP_ADDR", "INSTANCE", "WINDOW", "WORKERS"} {
		t.Setenv(k, "")
		t.Setenv("SVC_"+k, "")
		unsetenv(k, "SVC_"+k)
	}
}

// A variable of the machine that happens to share a setting's name (GNU screen's WINDOW,
// a SLEEP or WORKERS left in the shell) must not change a service: only DATABASE_URL
// and LOG_LEVEL are read without the prefix.
func TestOnlyDatabaseURLAndLogLevelAreReadWithoutThePrefix(t *testing.T) {
	clearService(t)
	t.Setenv("WINDOW", "1")
	t.Setenv("WORKERS", "99")
	t.Setenv("HTTP_ADDR", ":1")
	t.Setenv("INSTANCE", "from-the-shell")
	t.Setenv("DATABASE_URL", "postgres://bare/db")
	t.Setenv("LOG_LEVEL", "debug")
	c := newService()
	if err := Load("SVC", &c, nil, &bytes.Buffer{}); err != nil {
		t.Fatalf("bare WINDOW=1 broke loading: %v", err)
	}
	if c.Window != 5*time.Minute || c.Workers != 2 || c.HTTPAddr != ":8083" || c.Instance != "" {
		t.Errorf("a bare variable was read: %+v", c)
	}
	if c.DatabaseURL != "postgres://bare/db" || c.LogLevel != "debug" {
		t.Errorf("bare DATABASE_URL / LOG_LEVEL not read: %+v", c.Base)
	}
	t.Setenv("SVC_WINDOW", "1m")
	t.Setenv("SVC_LOG_LEVEL", "warn")
	c = newService()
	if err := Load("SVC", &c, nil, &bytes.Buffer{}); err != nil || c.Window != time.Minute || c.LogLevel != "warn" {
		t.Errorf("prefixed variables: %+v %v", c, err)
	}
}

func TestTheBaseTakesEachServicesDefaultsAndShowsThemInHelp(t *testing.T) {
	clearService(t)
	c := newService()
	if err := Load("SVC", &c, nil, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8083" || c.DatabaseURL != "postgres://default/db" || c.LogLevel != "info" {
		t.Errorf("defaults: %+v", c.Base)
	}
	var out bytes.Buffer
	c = newService()
	if err := Load("SVC", &c, []string{"--help"}, &out); !IsHelp(err) || !Printed(err) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{`SVC_HTTP_ADDR`, `--http-addr`, `(default ":8083")`, "SVC_INSTANCE", "LOG_LEVEL", "--version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckNamesTheVariableAndTheFlagOfEveryBadSetting(t *testing.T) {
	clearService(t)
	c := newService()
	if err := Load("SVC", &c, []string{"--workers", "0", "--window", "0", "--log-level", "loud"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	err := c.check()
	if err == nil {
		t.Fatal("bad settings passed the check")
	}
	for _, want := range []string{"SVC_WORKERS (--workers) must be 1 to 64", "SVC_WINDOW (--window) must be > 0",
		`LOG_LEVEL (--log-level) must be debug, info, warn or error, got "loud"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	c = newService()
	if err := Load("SVC", &c, nil, &bytes.Buffer{}); err != nil || c.check() != nil {
		t.Errorf("the defaults do not pass the check: %v %v", err, c.check())
	}
}

func TestCheckRefusesAFieldOfAnotherStruct(t *testing.T) {
	c := newService()
	v := NewCheck("SVC", &c)
	other := newService()
	defer func() {
		if recover() == nil {
			t.Error("a field outside the checked struct was named")
		}
	}()
	v.Name(&other.Workers)
}

func TestVersionPrintsTheBuildAndStops(t *testing.T) {
	clearService(t)
	c := newService()
	var out bytes.Buffer
	err := Load("SVC", &c, []string{"--version"}, &out)
	if !Printed(err) || IsHelp(err) {
		t.Fatalf("--version: err %v, want ErrVersion", err)
	}
	if got := strings.TrimSpace(out.String()); got != buildinfo.Line("svc") {
		t.Errorf("--version printed %q, want %q", got, buildinfo.Line("svc"))
	}
}

// A duration reads the same from a variable as from a flag (bare seconds included).
func TestVariableAndFlagParseAlike(t *testing.T) {
	clearService(t)
	t.Setenv("SVC_WINDOW", "0.5")
	c := newService()
	if err := Load("SVC", &c, nil, &bytes.Buffer{}); err != nil || c.Window != 500*time.Millisecond {
		t.Errorf("SVC_WINDOW=0.5: %v %v", c.Window, err)
	}
	t.Setenv("SVC_WORKERS", "two")
	c = newService()
	err := Load("SVC", &c, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `SVC_WORKERS="two"`) {
		t.Errorf("SVC_WORKERS=two: %v, want an error naming the variable", err)
	}
}

func TestSettingsListsEmbeddedFieldsWithTheirNames(t *testing.T) {
	c := newService()
	got := map[string]Setting{}
	for _, s := range Settings("SVC", &c) {
		got[s.Env] = s
	}
	if s := got["DATABASE_URL"]; strings.Join(s.Names, ",") != "SVC_DATABASE_URL,DATABASE_URL" || s.Flag != "database-url" {
		t.Errorf("DATABASE_URL: %+v", s)
	}
	if s := got["SVC_WINDOW"]; strings.Join(s.Names, ",") != "SVC_WINDOW" || s.Default != "5m" || s.Set("bad") == nil {
		t.Errorf("SVC_WINDOW: %+v", s)
	}
	if len(got) != 6 {
		t.Errorf("%d settings, want 6: %v", len(got), got)
	}
}
