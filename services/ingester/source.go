package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/ingester/internal/listturn"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	s3source "github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
	"github.com/ecomstream/ecomstream/services/ingester/settings"
)

// newSource returns the source cfg names: a bucket for s3://BUCKET/PREFIX; nil for the
// input directory (the directory source is made where the runner is, as today).
// Endpoint and keys come from the AWS SDKs' standard variables, read by objstore. The
// replicas of one bucket prefix take turns at its periodic listing in the database of
// pool (nil: this replica makes every listing).
func newSource(cfg *settings.Config, log zerolog.Logger, reg prometheus.Registerer, pool *pgxpool.Pool) (source.Source, error) {
	if cfg.Source == "" {
		return nil, nil
	}
	loc, err := objstore.Parse(cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("INGESTER_SOURCE (--source): %w", err)
	}
	c, err := objstore.New(objstore.SettingsFromEnv())
	if err != nil {
		return nil, err
	}
	consumer := cfg.NATSConsumer
	if consumer == "" {
		// One consumer per bucket prefix, whatever else shares the subject.
		consumer = s3source.ConsumerName(loc)
	}
	o := s3source.Options{
		Location: loc, ArchivePrefix: cfg.S3ArchivePrefix, FailedPrefix: cfg.S3FailedPrefix,
		ListInterval: cfg.RescanInterval, ListMinInterval: cfg.ListMinInterval(), NATSURL: cfg.NATSURL, NATSSubject: cfg.NATSSubject,
		NATSStream: cfg.NATSStream, NATSConsumer: consumer,
		Log: log, Metrics: s3source.NewMetrics(reg)}
	if pool != nil {
		turns := &listturn.Turns{Pool: pool, Source: loc.String()}
		o.Turn, o.TurnFailed = listingTurn(turns, log), turnFailed(turns, log)
	}
	return s3source.New(c, o)
}

// listingTurn asks turns whether this replica makes the periodic listing. When the
// database cannot say, it lists (the safe side: a listing too many costs a request);
// that is logged once until an answer comes again.
func listingTurn(turns *listturn.Turns, log zerolog.Logger) func(context.Context, time.Duration) bool {
	failing := false // Discover asks from one goroutine
	return func(ctx context.Context, within time.Duration) bool {
		ok, err := turns.Take(ctx, within)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				log.Warn().Err(err).Msg("cannot take a listing turn; listing every interval until the database answers")
			}
			failing = true
			return true
		case err != nil:
			return false // stopping
		}
		failing = false
		return ok
	}
}

// turnFailed hands back a turn whose listing failed (listturn.Turns.Give).
func turnFailed(turns *listturn.Turns, log zerolog.Logger) func(context.Context) {
	return func(ctx context.Context) {
		if err := turns.Give(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("listing turn not handed back; the other replicas take it at their next interval")
		}
	}
}
