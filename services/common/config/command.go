package config

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/kelseyhightower/envconfig"
)

// Command loads the arguments of a service's subcommand (`ingester status --json`): the
// service's settings into spec exactly as Load does (environment, then flags), the
// command's own flags into cmd (a pointer to a struct tagged `flag`, `default` and
// `desc` like spec; they have no environment variable), and returns the positional
// arguments, which may stand before, between or after the flags ("--" ends the flags).
// about is printed above the flags by --help.
func Command(prefix string, spec, cmd any, about string, args []string, usage io.Writer) ([]string, error) {
	if err := envconfig.Process(prefix, spec); err != nil {
		return nil, fmt.Errorf("config from environment: %w", err)
	}
	if err := defaults(cmd); err != nil {
		return nil, err
	}
	fs := flag.NewFlagSet(prefix, flag.ContinueOnError)
	fs.SetOutput(usage)
	own := register(fs, cmd, func(reflect.StructField) string { return "" })
	settings := register(fs, spec, func(f reflect.StructField) string { return envName(prefix, f) })
	if len(own) == 0 {
		own = []string{"  (none)"}
	}
	fs.Usage = func() {
		fmt.Fprintf(usage, "%s\n\nFlags of this command:\n%s\n\nSettings of %s (environment variable, flag; a flag overrides its variable):\n%s\n",
			strings.TrimSpace(about), strings.Join(own, "\n"), strings.ToLower(prefix), strings.Join(settings, "\n"))
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// defaults sets every field of spec to its `default` tag.
func defaults(spec any) error {
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if d, ok := t.Field(i).Tag.Lookup("default"); ok {
			if err := (fieldValue{v.Field(i)}).Set(d); err != nil {
				return fmt.Errorf("default of %s: %w", t.Field(i).Name, err)
			}
		}
	}
	return nil
}
