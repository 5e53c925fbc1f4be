// Command generator writes realistic e-commerce event CSV files into a directory, each
// placed atomically, at a fixed pace, with chosen shares of invalid and duplicate rows.
//
//	generator [flags]              run (see --help for every setting)
//	generator healthcheck [flags]  GET /healthz of a running generator; exit 0 or 1
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ecomstream/ecomstream/services/common/config"
	"github.com/ecomstream/ecomstream/services/common/httpserver"
	"github.com/ecomstream/ecomstream/services/common/logging"
	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/generator/internal/place"
	"github.com/ecomstream/ecomstream/services/generator/internal/producer"
	"github.com/ecomstream/ecomstream/services/generator/settings"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is main with its outcome as an exit code: 0 done, 1 failed, 2 bad settings.
func run(args []string, stdout, stderr io.Writer) int {
	healthcheck := len(args) > 0 && args[0] == "healthcheck"
	if healthcheck {
		args = args[1:]
	}
	s, err := load(args, stdout)
	if config.IsHelp(err) {
		fmt.Fprintln(stdout, "\nSubcommand:\n  generator healthcheck [flags]    GET /healthz on --http-addr; exit 0 if it answers 200, else 1")
		return 0
	}
	if config.Printed(err) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "generator: %v (see --help)\n", err)
		return 2
	}
	if healthcheck {
		if err := httpserver.Healthcheck(s.HTTPAddr); err != nil {
			fmt.Fprintf(stderr, "generator healthcheck: %v\n", err)
			return 1
		}
		return 0
	}

	if err := s.Validate(); err != nil {
		fmt.Fprintf(stderr, "generator: invalid settings:\n%v\n", err)
		return 2
	}
	instance := logging.Instance(s.Instance)
	log, err := logging.New(stderr, "generator", instance, s.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "generator: %v\n", err)
		return 2
	}
	out, err := output(&s)
	if err != nil {
		fmt.Fprintf(stderr, "generator: %s: %v\n", "GENERATOR_OUTPUT (--output)", err)
		return 2
	}
	// The settings passed; this checks the host name that stands in for an empty instance.
	cfg := s.Producer(instance)
	cfg.Output = out
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "generator: invalid settings:\n%v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reg := metrics.NewRegistry()
	p, err := producer.New(cfg, log, reg)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	srvCtx, stopServer := context.WithCancel(context.Background())
	ready := func(context.Context) error { return place.Writable(cfg.Dir) }
	if out != nil {
		ready = out.Ready
	}
	router := httpserver.Router(log, reg, ready)
	_, served, err := httpserver.Serve(srvCtx, log, s.HTTPAddr, router)
	if err != nil {
		stopServer()
		log.Error().Err(err).Str("addr", s.HTTPAddr).Msg("cannot listen")
		return 1
	}
	_, runErr := p.Run(ctx)
	stopServer()
	if err := <-served; err != nil {
		log.Error().Err(err).Msg("http server")
	}
	if runErr != nil {
		return 1
	}
	return 0
}

// output is the bucket --output names (nil for a directory, which then replaces
// --output-dir in s).
func output(s *settings.Config) (place.Output, error) {
	if s.Output == "" {
		return nil, nil
	}
	if !objstore.IsURL(s.Output) {
		s.OutputDir = s.Output
		return nil, nil
	}
	loc, err := objstore.Parse(s.Output)
	if err != nil {
		return nil, err
	}
	c, err := objstore.New(objstore.SettingsFromEnv())
	if err != nil {
		return nil, err
	}
	return place.Bucket{C: c, Loc: loc}, nil
}

// load reads the settings from the environment and args; a flag overrides its variable.
// usage receives --help and --version.
func load(args []string, usage io.Writer) (settings.Config, error) {
	var discard bytes.Buffer // flag errors are returned and printed by run
	s, err := settings.Load(args, &discard)
	if config.Printed(err) {
		_, _ = io.Copy(usage, &discard)
	}
	return s, err
}
