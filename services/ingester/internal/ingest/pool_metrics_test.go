package ingest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecomstream/ecomstream/services/common/metrics"
	"github.com/ecomstream/ecomstream/services/common/pgtest"
	"github.com/ecomstream/ecomstream/services/ingester/internal/queue"
)

// The pool's connection states are parts: they sum to the pool's size, so a sum over
// states (the dashboards' stacked panel) never counts a connection twice.
func TestPoolConnectionStatesSumToThePoolSize(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	idle, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle.Release()

	reg := metrics.NewRegistry()
	NewMetrics(reg, queue.New(nil, 0), pool)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, states := 0.0, map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "ecomstream_ingester_db_connections" {
			continue
		}
		for _, m := range mf.GetMetric() {
			states[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			sum += m.GetGauge().GetValue()
		}
	}
	if _, ok := states["total"]; ok {
		t.Errorf("a total among its parts: %v", states)
	}
	if states["acquired"] != 1 || sum != float64(pool.Stat().TotalConns()) {
		t.Errorf("states %v sum to %v, want acquired 1 and the pool's %d", states, sum, pool.Stat().TotalConns())
	}
	if problems, err := testutil.GatherAndLint(reg, "ecomstream_ingester_db_connections"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
