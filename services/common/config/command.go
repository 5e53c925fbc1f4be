package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// Command loads the arguments of a service's subcommand (`ingester status --json`): the
// service's settings into spec exactly as Load does (environment, then flags), the
// command's own flags into cmd (a pointer to a struct tagged `flag`, `default` and
// `desc` like spec; they have no environment variable), and returns the positional
// arguments, which may stand before, between or after the flags ("--" ends the flags).
// about is printed above the flags by --help.
func Command(prefix string, spec, cmd any, about string, args []string, usage io.Writer) ([]string, error) {
	settings := Settings(prefix, spec)
	if err := apply(settings, os.LookupEnv); err != nil {
		return nil, err
	}
	fs := flag.NewFlagSet(prefix, flag.ContinueOnError)
	fs.SetOutput(usage)
	own, err := commandFlags(fs, cmd)
	if err != nil {
		return nil, err
	}
	lines := register(fs, settings)
	if len(own) == 0 {
		own = []string{"  (none)"}
	}
	fs.Usage = func() {
		fmt.Fprintf(usage, "%s\n\nFlags of this command:\n%s\n\nSettings of %s (environment variable, flag; a flag overrides its variable):\n%s\n",
			strings.TrimSpace(about), strings.Join(own, "\n"), strings.ToLower(prefix), strings.Join(lines, "\n"))
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

// commandFlags sets every field of cmd (a pointer to a struct) to its `default` tag,
// registers its flag and returns its --help lines.
func commandFlags(fs *flag.FlagSet, cmd any) ([]string, error) {
	v := reflect.ValueOf(cmd).Elem()
	t := v.Type()
	var lines []string
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), fieldValue{v.Field(i)}
		if d, ok := f.Tag.Lookup("default"); ok {
			if err := fv.Set(d); err != nil {
				return nil, fmt.Errorf("default of %s: %w", f.Name, err)
			}
		}
		name := f.Tag.Get("flag")
		lines = append(lines, fmt.Sprintf("  %-28s %s (default %q)", flagLabel(name), f.Tag.Get("desc"), f.Tag.Get("default")))
		if name != "" {
			fs.Var(fv, name, f.Tag.Get("desc"))
		}
	}
	return lines, nil
}
