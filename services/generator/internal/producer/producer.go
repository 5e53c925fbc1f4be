// Package producer is the generator's loop: on a fixed schedule it builds a file of shop
// events (with the invalid and duplicate rows asked for), places it atomically, counts it
// in the metrics, and stops cleanly on a signal, after --max-files or after --duration.
package producer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
	"github.com/ecomstream/ecomstream/services/generator/internal/place"
	"github.com/ecomstream/ecomstream/services/generator/internal/rows"
	"github.com/ecomstream/ecomstream/services/generator/internal/traffic"
)

// Rows are generated in chunks of chunkRows and written whenever flushBytes have piled
// up: an ordinary file (under 1 MiB) is one write, a huge one needs no more memory.
const (
	chunkRows  = 2048
	flushBytes = 1 << 20
)

// Why a run ended.
const (
	StopMaxFiles = "max_files"
	StopDuration = "duration"
	StopSignal   = "signal"
	StopError    = "error"
)

// Summary is what a run placed.
type Summary struct {
	Files   int64
	Rows    rows.Counts
	Bytes   int64
	Elapsed time.Duration
	Reason  string
}

// Producer writes the files. It is not safe for concurrent use.
type Producer struct {
	cfg     Config
	clock   Clock
	log     zerolog.Logger
	metrics *Metrics
	seed    uint64
	rng     *rand.Rand
	mixer   *rows.Mixer
	header  []byte
	buf     []byte
	seq     uint64
	sum     Summary
}

// New validates cfg, prepares the output directory (creating it, removing this
// instance's dotfiles left by a killed run) and builds the shop.
func New(cfg Config, log zerolog.Logger, reg prometheus.Registerer) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Progress <= 0 {
		cfg.Progress = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Traffic == (traffic.Params{}) {
		cfg.Traffic = traffic.DefaultParams()
	}
	if cfg.Output == nil {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("output directory: %w", err)
		}
		stale, err := place.RemoveStale(cfg.Dir, cfg.Instance)
		if err != nil {
			return nil, err
		}
		if len(stale) > 0 {
			log.Warn().Strs("files", stale).Msg("removed unfinished files of an earlier run")
		}
		cfg.Output = place.Dir(cfg.Dir)
	}
	seed := cfg.Seed
	for seed == 0 {
		seed = rand.Uint64() >> 1 // fits --seed (an int64), so the logged seed can be given back
	}
	// The instance is part of the stream's identity: replicas given the same --seed
	// still write different events (the same event_id twice would be a duplicate
	// nobody asked for).
	h := fnv.New64a()
	_, _ = h.Write([]byte(cfg.Instance))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	p := &Producer{
		cfg:     cfg,
		clock:   cfg.Clock,
		log:     log,
		metrics: NewMetrics(reg),
		seed:    seed,
		rng:     rng,
		header:  event.HeaderLine(),
	}
	p.mixer = rows.New(traffic.New(rng, cfg.Traffic), rng, cfg.BadRate, cfg.DuplicateRate, rows.DefaultRing)
	return p, nil
}

// Seed is the seed in use (the configured one, or the random one drawn for this run).
func (p *Producer) Seed() uint64 { return p.seed }

// Summary is what has been placed so far.
func (p *Producer) Summary() Summary { return p.sum }

// Run writes files on the schedule until ctx ends (a signal), --max-files or
// --duration; each of these is a clean stop. It logs the run's summary line and
// returns an error only when a file could not be placed.
func (p *Producer) Run(ctx context.Context) (Summary, error) {
	// --start-at: the schedule begins then, so that generators started one after another
	// place their first files together, once their start-up (and its CPU) is behind them.
	if !p.cfg.StartAt.IsZero() {
		if err := p.clock.SleepUntil(ctx, p.cfg.StartAt); err != nil {
			p.sum.Reason = StopSignal
			p.logSummary(nil)
			return p.sum, nil
		}
	}
	start := p.clock.Now()
	p.log.Info().Str("output", p.cfg.Output.String()).Int("min_records", p.cfg.MinRecords).Int("max_records", p.cfg.MaxRecords).
		Float64("sleep_seconds", p.cfg.Sleep.Seconds()).Float64("bad_rate", p.cfg.BadRate).
		Float64("duplicate_rate", p.cfg.DuplicateRate).Int64("max_files", p.cfg.MaxFiles).
		Float64("duration_seconds", p.cfg.Duration.Seconds()).Uint64("seed", p.seed).Msg("generator started")

	// Without --duration the run has no end of its own; a far instant keeps one code path.
	end := start.Add(100 * 365 * 24 * time.Hour)
	if p.cfg.Duration > 0 {
		end = start.Add(p.cfg.Duration)
	}
	last := progressMark{at: start}
	nextProgress := start.Add(p.cfg.Progress)

	// The schedule is fixed: file k is due at start + k·sleep, however long writing
	// took, so the rate is what --sleep asks for. A late file is written at once and the
	// lag is exposed, not silently absorbed.
	due := start
	var err error
loop:
	for {
		if p.cfg.MaxFiles > 0 && p.sum.Files >= p.cfg.MaxFiles {
			p.sum.Reason = StopMaxFiles
			break
		}
		// Wait for the file's turn, logging progress meanwhile; the next file may be
		// due after --duration, and then the run is complete at its end.
		wake := earliest(due, end)
		now := p.clock.Now()
		waited := now.Before(wake)
		for now.Before(wake) {
			if err := p.clock.SleepUntil(ctx, earliest(wake, nextProgress)); err != nil {
				p.sum.Reason = StopSignal
				break loop
			}
			if now = p.clock.Now(); !now.Before(nextProgress) {
				last = p.progress(last, now)
				nextProgress = nextProgress.Add(p.cfg.Progress)
			}
		}
		if !now.Before(end) {
			p.sum.Reason = StopDuration
			break
		}
		if ctx.Err() != nil {
			p.sum.Reason = StopSignal
			break
		}
		if p.cfg.Sleep > 0 {
			behind := 0.0
			if !waited {
				behind = now.Sub(due).Seconds()
			}
			p.metrics.Behind.Set(behind)
		}
		if _, err = p.WriteFile(ctx); err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				p.sum.Reason = StopSignal
				err = nil
			} else {
				p.sum.Reason = StopError
			}
			break
		}
		if p.cfg.Sleep > 0 {
			due = due.Add(p.cfg.Sleep)
		} else {
			due = p.clock.Now()
		}
	}
	p.sum.Elapsed = p.clock.Now().Sub(start)
	p.logSummary(err)
	return p.sum, err
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

type progressMark struct {
	at      time.Time
	records int64
}

func (p *Producer) progress(last progressMark, now time.Time) progressMark {
	n := p.sum.Rows.Total()
	rate := float64(n-last.records) / now.Sub(last.at).Seconds()
	p.log.Info().Int64("files", p.sum.Files).Int64("records", n).Float64("rows_per_second", round1(rate)).
		Int64("bytes", p.sum.Bytes).Msg("progress")
	return progressMark{at: now, records: n}
}

func (p *Producer) logSummary(err error) {
	s := p.sum
	ev := p.log.Info()
	if err != nil {
		ev = p.log.Error().Err(err)
	}
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Rows.Total()) / s.Elapsed.Seconds()
	}
	ev.Int64("files", s.Files).Int64("records", s.Rows.Total()).Int64("valid", s.Rows.Valid).
		Int64("invalid", s.Rows.Invalid).Int64("duplicate", s.Rows.Duplicate).Int64("bytes", s.Bytes).
		Float64("elapsed_seconds", round1(s.Elapsed.Seconds())).Float64("rows_per_second", round1(rate)).
		Str("reason", s.Reason).Uint64("seed", p.seed).Msg("generator finished")
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// WriteFile builds and places one file of between --min-records and --max-records
// rows and returns its name. A file is placed whole or not at all: on an error, or when
// ctx ends while a huge file is still being written, its dotfile is removed and none of
// its rows count.
func (p *Producer) WriteFile(ctx context.Context) (string, error) {
	n := p.cfg.MinRecords
	if span := p.cfg.MaxRecords - p.cfg.MinRecords; span > 0 {
		n += p.rng.IntN(span + 1)
	}
	start := p.clock.Now()
	p.seq++
	name := place.Name(p.cfg.Instance, p.seq, start) + compress.Ext(p.cfg.Compress)
	f, err := p.cfg.Output.Create(ctx, name)
	if err != nil {
		return "", err
	}
	// The rows go through the compressor (a pass-through for none) into the dotfile;
	// the stream is closed before the rename, so a placed file is a whole stream.
	w, err := compress.Writer(p.cfg.Compress, f)
	if err != nil {
		f.Abort()
		return "", err
	}
	buf := append(p.buf[:0], p.header...)
	var c rows.Counts
	now := start
	for left := n; left > 0; {
		k := min(left, chunkRows)
		var cc rows.Counts
		buf, cc = p.mixer.AppendRows(buf, k, now)
		c = c.Add(cc)
		left -= k
		if len(buf) >= flushBytes && left > 0 {
			if _, err := w.Write(buf); err != nil {
				f.Abort()
				return "", err
			}
			buf = buf[:0]
			if err := ctx.Err(); err != nil {
				f.Abort()
				return "", fmt.Errorf("file %s abandoned: %w", name, err)
			}
			now = p.clock.Now()
		}
	}
	if _, err := w.Write(buf); err != nil {
		f.Abort()
		return "", err
	}
	if err := w.Close(); err != nil {
		f.Abort()
		return "", fmt.Errorf("compress %s: %w", name, err)
	}
	p.buf = buf[:0]
	if err := f.Commit(); err != nil {
		return "", err
	}
	took := p.clock.Now().Sub(start)
	size := f.Size()
	p.metrics.placed(c, size, took.Seconds())
	p.sum.Files++
	p.sum.Rows = p.sum.Rows.Add(c)
	p.sum.Bytes += size
	p.log.Debug().Str("file", name).Int64("records", c.Total()).Int64("valid", c.Valid).
		Int64("invalid", c.Invalid).Int64("duplicate", c.Duplicate).Int64("bytes", size).
		Float64("duration_seconds", took.Seconds()).Msg("file placed")
	return name, nil
}
