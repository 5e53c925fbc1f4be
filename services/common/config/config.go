// Package config loads a service's settings from environment variables (one prefix per
// service) and then from command-line flags of the same meaning; a flag overrides its
// variable. Both are described by one struct, in the envconfig tag convention:
//
//	type Config struct {
//	    config.Base // DATABASE_URL, LOG_LEVEL, HTTP_ADDR, INSTANCE
//	    Workers int `envconfig:"WORKERS" flag:"workers" default:"2" desc:"..."`
//	}
//
// A setting is read only under its prefixed name (INGESTER_WORKERS), except the two that
// every service shares with the machine, DATABASE_URL and LOG_LEVEL, which are read under
// the prefixed name first and the bare name after it. (envconfig's own rule reads every
// setting under its bare name too, so a WINDOW set by GNU screen or a SLEEP left in the
// shell changed a service; this package reads the environment itself for that reason.)
//
// A field's default is its `default` tag, or else the value the struct held before Load:
// that is how a service gives a field of the shared Base its own default (the HTTP port).
// The variable and the flag parse the same way (Setting.Set), so GENERATOR_SLEEP=0.5 and
// --sleep 0.5 mean the same. Check names a bad setting by its variable and its flag.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ecomstream/ecomstream/services/common/buildinfo"
)

// Base is the settings every service shares. A service's Config embeds it and sets the
// defaults that differ between services (HTTPAddr, DatabaseURL) before Load.
type Base struct {
	DatabaseURL string `envconfig:"DATABASE_URL" flag:"database-url" desc:"PostgreSQL URL"`
	LogLevel    string `envconfig:"LOG_LEVEL" flag:"log-level" default:"info" desc:"debug, info, warn or error"`
	HTTPAddr    string `envconfig:"HTTP_ADDR" flag:"http-addr" desc:"address of /healthz, /readyz and /metrics"`
	Instance    string `envconfig:"INSTANCE" flag:"instance" desc:"name of this replica in logs (and file names, the ledger); empty = the host name"`
}

// Check adds what is wrong with the shared settings to c.
func (b *Base) Check(c *Check) {
	switch strings.ToLower(strings.TrimSpace(b.LogLevel)) {
	case "debug", "info", "warn", "error":
	default:
		c.Errorf(&b.LogLevel, "must be debug, info, warn or error, got %q", b.LogLevel)
	}
	c.If(b.HTTPAddr == "", &b.HTTPAddr, "is required")
}

// shared are the variables read under their bare name too.
var shared = map[string]bool{"DATABASE_URL": true, "LOG_LEVEL": true}

// ErrHelp is returned when --help was asked for; the caller exits 0.
var ErrHelp = flag.ErrHelp

// ErrVersion is returned when --version was asked for (and printed); the caller exits 0.
var ErrVersion = errors.New("version printed")

// IsHelp tells whether err means the user asked for --help.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

// Printed tells whether err means Load printed what was asked (--help or --version) and
// the program should exit 0.
func Printed(err error) bool { return IsHelp(err) || errors.Is(err, ErrVersion) }

// Load fills spec (a pointer to a struct) from its defaults, the environment and then
// args. usage receives the --help and --version text and flag errors.
func Load(prefix string, spec any, args []string, usage io.Writer) error {
	settings := Settings(prefix, spec)
	if err := apply(settings, os.LookupEnv); err != nil {
		return err
	}
	fs := flag.NewFlagSet(prefix, flag.ContinueOnError)
	fs.SetOutput(usage)
	lines := register(fs, settings)
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Settings of %s (environment variable, flag; a flag overrides its variable):\n%s\n  %-61s %s\n",
			strings.ToLower(prefix), strings.Join(lines, "\n"), "--version", "print the version, commit and Go version, and exit")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(usage, buildinfo.Line(strings.ToLower(prefix)))
		return ErrVersion
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// Environ fills spec as Load does from an environment other than this process's: lookup
// answers a variable (os.LookupEnv for the process's own). Tools use it to see what a
// deployment's environment makes of a program's settings.
func Environ(prefix string, spec any, lookup func(string) (string, bool)) error {
	return apply(Settings(prefix, spec), lookup)
}

// apply sets every setting to its default and then to its variable, where one is set.
func apply(settings []Setting, lookup func(string) (string, bool)) error {
	for _, s := range settings {
		if d, ok := s.field.Tag.Lookup("default"); ok {
			if err := s.Set(d); err != nil {
				return fmt.Errorf("default of %s: %w", s.Env, err)
			}
		}
	}
	var errs []error
	for _, s := range settings {
		for _, name := range s.Names {
			v, ok := lookup(name)
			if !ok {
				continue
			}
			if err := s.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
			break
		}
	}
	return errors.Join(errs...)
}

// register adds a flag for every setting that has one and returns one --help line per
// setting.
func register(fs *flag.FlagSet, settings []Setting) []string {
	var lines []string
	for _, s := range settings {
		lines = append(lines, fmt.Sprintf("  %-32s %-28s %s (default %q)", s.Env, flagLabel(s.Flag), s.Desc, s.Default))
		if s.Flag != "" {
			fs.Var(s.value, s.Flag, s.Desc)
		}
	}
	return lines
}

func flagLabel(name string) string {
	if name == "" {
		return ""
	}
	return "--" + name
}
