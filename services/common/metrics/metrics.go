// Package metrics holds what every service's metrics share: the namespace, a private
// registry with the standard process and Go collectors (process_cpu_seconds_total,
// process_resident_memory_bytes: the names every exporter uses), and the latency buckets.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ecomstream/ecomstream/services/common/buildinfo"
	"github.com/ecomstream/ecomstream/services/common/replica"
)

// Namespace prefixes every metric of the product (ecomstream_<service>_<name>).
const Namespace = "ecomstream"

// NewRegistry returns a private registry (never the global one) with process CPU and
// memory and the Go runtime collectors, which the Resources dashboard reads.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	Register(reg)
	return reg
}

// Register adds what every service exports (process, Go runtime, build info) to reg.
func Register(reg prometheus.Registerer) {
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		buildInfo(),
	)
}

// buildInfo is ecomstream_build_info, constant 1 with what was deployed as labels
// (postgres_exporter's convention), so a dashboard can tell which replica runs what;
// `--version` prints the same values (package buildinfo). Its replica label is the
// replica's readable name, the instance name of its logs (package replica): the
// dashboards show it in place of an address.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Constant 1, labelled with the version, revision and Go version of the binary and the replica's name (compose: ingester-2).",
		ConstLabels: prometheus.Labels{
			"version": buildinfo.Version, "revision": buildinfo.Revision(), "goversion": buildinfo.GoVersion(), "replica": replica.Name(),
		},
	})
	g.Set(1)
	return g
}

// LatencyBuckets resolve milliseconds (our normal case) and the report's 0-10-20-30-40-60 s
// bands (Spark's normal case) in one histogram.
var LatencyBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10, 20, 30, 40, 60, 90, 120,
}

// NativeBucketFactor adds a native histogram alongside the classic buckets for Prometheus
// servers that scrape them.
const NativeBucketFactor = 1.1
