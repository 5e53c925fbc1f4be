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
)

// settings are the generator's environment variables (prefix GENERATOR) and flags.
type settings struct {
	DatabaseURL   string         `envconfig:"DATABASE_URL" flag:"database-url" desc:"postgres URL (unused by the generator)"`
	LogLevel      string         `envconfig:"LOG_LEVEL" flag:"log-level" default:"info" desc:"debug, info, warn or error"`
	HTTPAddr      string         `envconfig:"HTTP_ADDR" flag:"http-addr" default:":8081" desc:"address of /healthz, /readyz, /metrics"`
	OutputDir     string         `envconfig:"OUTPUT_DIR" flag:"output-dir" default:"/data/incoming" desc:"where files are placed (created if missing)"`
	Output        string         `envconfig:"OUTPUT" flag:"output" desc:"a directory or s3://BUCKET/PREFIX (wins over --output-dir); S3 endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION"`
	MinRecords    int            `envconfig:"MIN_RECORDS" flag:"min-records" default:"50" desc:"rows per file, at least"`
	MaxRecords    int            `envconfig:"MAX_RECORDS" flag:"max-records" default:"100" desc:"rows per file, at most (uniform between)"`
	Sleep         config.Seconds `envconfig:"SLEEP" flag:"sleep" default:"2" desc:"seconds between files, fractional (0.5) or a duration (500ms)"`
	BadRate       float64        `envconfig:"BAD_RATE" flag:"bad-rate" default:"0" desc:"share of deliberately invalid rows, in [0, 1)"`
	DuplicateRate float64        `envconfig:"DUPLICATE_RATE" flag:"duplicate-rate" default:"0" desc:"share of rows repeating an earlier valid row, in [0, 1)"`
	MaxFiles      int64          `envconfig:"MAX_FILES" flag:"max-files" default:"0" desc:"stop after this many files (0 = never)"`
	Duration      config.Seconds `envconfig:"DURATION" flag:"duration" default:"0" desc:"stop after this long, e.g. 20s or 1m (0 = never)"`
	Instance      string         `envconfig:"INSTANCE" flag:"instance" desc:"name of this replica in file names and logs; empty = the host name"`
	Seed          int64          `envconfig:"SEED" flag:"seed" default:"0" desc:"random seed, for a repeatable stream (0 = random)"`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is main with its outcome as an exit code: 0 done, 1 failed, 2 bad settings.
func run(args []string, stdout, stderr io.Writer) int {
	healthcheck := len(args) > 0 && args[0] == "healthcheck"
	if healthcheck {
		args = args[1:]
	}
	s, err := load(args)
	if config.IsHelp(err) {
		fmt.Fprint(stdout, usage())
		fmt.Fprintln(stdout, "\nSubcommand:\n  generator healthcheck [flags]    GET /healthz on --http-addr; exit 0 if it answers 200, else 1")
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

	instance := logging.Instance(s.Instance)
	log, err := logging.New(stderr, "generator", instance, s.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "generator: --log-level: %v\n", err)
		return 2
	}
	out, err := output(&s)
	if err != nil {
		fmt.Fprintf(stderr, "generator: --output: %v\n", err)
		return 2
	}
	cfg := producer.Config{
		Dir:           s.OutputDir,
		Output:        out,
		Instance:      instance,
		MinRecords:    s.MinRecords,
		MaxRecords:    s.MaxRecords,
		Sleep:         s.Sleep.D(),
		BadRate:       s.BadRate,
		DuplicateRate: s.DuplicateRate,
		MaxFiles:      s.MaxFiles,
		Duration:      s.Duration.D(),
		Seed:          uint64(s.Seed),
	}
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
func output(s *settings) (place.Output, error) {
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
func load(args []string) (settings, error) {
	var s settings
	var discard bytes.Buffer // --help is printed by run, flag errors are returned
	err := config.Load("GENERATOR", &s, args, &discard)
	return s, err
}

// usage is the --help text.
func usage() string {
	var b bytes.Buffer
	var s settings
	_ = config.Load("GENERATOR", &s, []string{"--help"}, &b)
	return b.String()
}
