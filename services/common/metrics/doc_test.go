package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/metrics"
)

// docs/metrics.md lists what every service registers through metrics.Register.
func TestMetricsDocIsCurrent(t *testing.T) {
	rec := metrics.NewRecorder(prometheus.NewRegistry())
	metrics.Register(rec)
	maintest.MetricsDoc(t, "common", metrics.Namespace+"_", rec)
}

func TestRecorderTypesEveryKindOfMetric(t *testing.T) {
	rec := metrics.NewRecorder(prometheus.NewRegistry())
	a := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a_total", Help: "A | b."}, []string{"outcome"})
	a.WithLabelValues("done")
	a.WithLabelValues("failed")
	rec.MustRegister(
		a,
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "b", Help: "B."}),
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "c_seconds", Help: "C."}, []string{"x", "y"}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "d_total", Help: "D."}, func() float64 { return 1 }),
	)
	got := metrics.Table(rec.Docs())
	want := "| metric | type | labels | help |\n|---|---|---|---|\n" +
		"| `a_total` | counter | `outcome` = done, failed | A \\| b. |\n" +
		"| `b` | gauge |  | B. |\n" +
		"| `c_seconds` | histogram | `x`, `y` | C. |\n" +
		"| `d_total` | gauge |  | D. |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
