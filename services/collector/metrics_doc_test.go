package main

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ecomstream/ecomstream/services/collector/internal/collector"
	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/metrics"
)

// docs/metrics.md lists the metrics the collector registers, built as main builds them
// (described, not measured: nothing here reaches a database).
func TestMetricsDocIsCurrent(t *testing.T) {
	rec := metrics.NewRecorder(prometheus.NewRegistry())
	rec.MustRegister(collector.New(zerolog.Nop(), time.Second, collector.All(nil, collector.Settings{
		Window: time.Minute, WatchDir: t.TempDir(), QueryInterval: time.Minute})...))
	maintest.MetricsDoc(t, "collector", "ecomstream_collector_", rec)
}
