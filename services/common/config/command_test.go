package config

import (
	"bytes"
	"strings"
	"testing"
)

type testCommand struct {
	JSON  bool `flag:"json" default:"false" desc:"machine-readable output"`
	Limit int  `flag:"limit" default:"20" desc:"at most this many"`
}

func command(t *testing.T, args ...string) (testConfig, testCommand, []string, string, error) {
	t.Helper()
	var c testConfig
	var cmd testCommand
	var out bytes.Buffer
	pos, err := Command("TEST", &c, &cmd, "Usage: test thing [flags] NAME", args, &out)
	return c, cmd, pos, out.String(), err
}

func TestCommandReadsSettingsAsLoadDoesAndItsOwnFlags(t *testing.T) {
	clearEnv(t)
	t.Setenv("TEST_MIN_RECORDS", "7")
	t.Setenv("DATABASE_URL", "postgres://from-env/x")
	c, cmd, pos, _, err := command(t, "--json", "--http-addr", ":9", "a.csv", "--limit=3", "--", "-b.csv")
	if err != nil {
		t.Fatal(err)
	}
	if c.MinRecords != 7 || c.HTTPAddr != ":9" || c.DatabaseURL != "postgres://from-env/x" || c.Interval.String() != "10s" {
		t.Errorf("settings %+v: want the environment's, the flag's and the defaults", c)
	}
	if !cmd.JSON || cmd.Limit != 3 {
		t.Errorf("command flags %+v, want json and limit 3", cmd)
	}
	if strings.Join(pos, "|") != "a.csv|-b.csv" {
		t.Errorf("positional %q, want a.csv and -b.csv (after --)", pos)
	}
	_, cmd, pos, _, err = command(t)
	if err != nil || cmd.Limit != 20 || cmd.JSON || len(pos) != 0 {
		t.Errorf("no arguments: %+v %q %v; want the command's defaults", cmd, pos, err)
	}
}

func TestCommandHelpShowsAboutFlagsAndSettings(t *testing.T) {
	clearEnv(t)
	_, _, _, out, err := command(t, "--help")
	if !IsHelp(err) {
		t.Fatalf("err %v, want ErrHelp", err)
	}
	for _, want := range []string{"Usage: test thing", "--json", "--limit", "at most this many", "TEST_HTTP_ADDR", "--http-addr", "DATABASE_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TEST_JSON") || strings.Contains(out, "TEST_LIMIT") {
		t.Errorf("a command flag is shown with a variable it does not read:\n%s", out)
	}
	if _, _, _, _, err := command(t, "--limit", "many"); err == nil {
		t.Error("--limit many accepted")
	}
}
