// Package config loads a service's settings from environment variables (envconfig, one
// prefix per service) and then from command-line flags of the same meaning; a flag
// overrides its variable. Both are described by one struct:
//
//	type Config struct {
//	    HTTPAddr string `envconfig:"HTTP_ADDR" flag:"http-addr" default:":8081" desc:"..."`
//	}
//
// A field whose envconfig tag names a shared variable (DATABASE_URL, LOG_LEVEL) is found
// under the prefixed name first and under the bare name after it, which is envconfig's
// own fallback rule.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// ErrHelp is returned when --help was asked for; the caller exits 0.
var ErrHelp = flag.ErrHelp

// Load fills spec (a pointer to a struct) from the environment and then from args.
// usage receives the --help text and flag errors.
func Load(prefix string, spec any, args []string, usage io.Writer) error {
	if err := envconfig.Process(prefix, spec); err != nil {
		return fmt.Errorf("config from environment: %w", err)
	}
	fs := flag.NewFlagSet(prefix, flag.ContinueOnError)
	fs.SetOutput(usage)
	lines := register(fs, spec, func(f reflect.StructField) string { return envName(prefix, f) })
	fs.Usage = func() {
		fmt.Fprintf(usage, "Settings of %s (environment variable, flag; a flag overrides its variable):\n%s\n",
			strings.ToLower(prefix), strings.Join(lines, "\n"))
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// register adds a flag for every field of spec (a pointer to a struct) that has a flag
// tag, and returns one --help line per field; env names a field's variable ("" for none).
func register(fs *flag.FlagSet, spec any, env func(reflect.StructField) string) []string {
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	var lines []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("flag")
		if e := env(f); e != "" {
			lines = append(lines, fmt.Sprintf("  %-32s %-28s %s (default %q)", e, flagLabel(name), f.Tag.Get("desc"), f.Tag.Get("default")))
		} else {
			lines = append(lines, fmt.Sprintf("  %-28s %s (default %q)", flagLabel(name), f.Tag.Get("desc"), f.Tag.Get("default")))
		}
		if name == "" {
			continue
		}
		fs.Var(fieldValue{v.Field(i)}, name, f.Tag.Get("desc"))
	}
	return lines
}

// IsHelp tells whether err means the user asked for --help.
func IsHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

func envName(prefix string, f reflect.StructField) string {
	key := f.Tag.Get("envconfig")
	if key == "" {
		key = strings.ToUpper(f.Name)
	}
	if key == "DATABASE_URL" || key == "LOG_LEVEL" {
		return key
	}
	return prefix + "_" + key
}

func flagLabel(name string) string {
	if name == "" {
		return ""
	}
	return "--" + name
}

// fieldValue adapts one struct field to flag.Value.
type fieldValue struct{ v reflect.Value }

func (f fieldValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	return fmt.Sprint(f.v.Interface())
}

func (f fieldValue) Set(s string) error {
	if fv, ok := f.v.Addr().Interface().(flag.Value); ok {
		return fv.Set(s)
	}
	switch f.v.Interface().(type) {
	case time.Duration:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		f.v.SetInt(int64(d))
		return nil
	}
	switch f.v.Kind() {
	case reflect.String:
		f.v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.v.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.v.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.v.SetBool(b)
	default:
		return fmt.Errorf("unsupported setting type %s", f.v.Type())
	}
	return nil
}

// IsBoolFlag lets a bool flag be given without a value.
func (f fieldValue) IsBoolFlag() bool { return f.v.IsValid() && f.v.Kind() == reflect.Bool }

// parseDuration accepts Go durations ("10s") and bare seconds ("0.5"), because the
// report's commands give --sleep as fractional seconds.
func parseDuration(s string) (time.Duration, error) {
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(x * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// Seconds is a duration that also reads bare fractional seconds from the environment,
// so GENERATOR_SLEEP=0.5 and --sleep 0.5 mean the same.
type Seconds time.Duration

// Decode implements envconfig.Decoder.
func (s *Seconds) Decode(v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	*s = Seconds(d)
	return nil
}

// Set implements flag.Value.
func (s *Seconds) Set(v string) error { return s.Decode(v) }

func (s Seconds) String() string { return time.Duration(s).String() }

// D returns the value as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }
