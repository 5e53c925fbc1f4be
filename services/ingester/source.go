package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/common/objstore"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source"
	s3source "github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
	"github.com/ecomstream/ecomstream/services/ingester/settings"
)

// newSource returns the source cfg names: a bucket for s3://BUCKET/PREFIX; nil for the
// input directory (the directory source is made where the runner is, as today).
// Endpoint and keys come from the AWS SDKs' standard variables, read by objstore.
func newSource(cfg *settings.Config, log zerolog.Logger, reg prometheus.Registerer) (source.Source, error) {
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
	return s3source.New(c, s3source.Options{
		Location: loc, ArchivePrefix: cfg.S3ArchivePrefix, FailedPrefix: cfg.S3FailedPrefix,
		ListInterval: cfg.RescanInterval, ListMinInterval: cfg.ListMinInterval(), NATSURL: cfg.NATSURL, NATSSubject: cfg.NATSSubject,
		NATSStream: cfg.NATSStream, NATSConsumer: consumer,
		Log: log, Metrics: s3source.NewMetrics(reg),
	})
}
