package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/generator/internal/producer"
)

// docs/metrics.md lists the metrics the generator registers (producer.New registers
// them on main's registry through NewMetrics).
func TestMetricsDocIsCurrent(t *testing.T) {
	rec := metrics.NewRecorder(prometheus.NewRegistry())
	producer.NewMetrics(rec)
	maintest.MetricsDoc(t, "generator", "ecomstream_generator_", rec)
}
