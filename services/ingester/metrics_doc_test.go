package main

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecomstream/ecomstream/services/common/maintest"
	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/ingester/internal/ingest"
	"github.com/ecomstream/ecomstream/services/ingester/internal/partition"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
	s3source "github.com/ecomstream/ecomstream/services/ingester/internal/source/s3"
)

// docs/metrics.md lists the metrics the ingester registers, built as main builds them
// (the pool connects lazily: nothing here reaches a database).
func TestMetricsDocIsCurrent(t *testing.T) {
	pool, err := pgxpool.New(t.Context(), "postgres://127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rec := metrics.NewRecorder(prometheus.NewRegistry())
	ingest.NewMetrics(rec, queue.New(memory.New(time.Now), time.Second), pool)
	partition.NewMetrics(rec)
	s3source.NewMetrics(rec) // a bucket source's, registered when INGESTER_SOURCE is a bucket
	maintest.MetricsDoc(t, "ingester", "ecomstream_ingester_", rec)
}
