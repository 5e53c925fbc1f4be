package collector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// copyEvents loads n events of source with COPY, as the ingester does, their event_time
// spread over the last minute; ids come from seq so callers control uniqueness.
func copyEvents(ctx context.Context, db interface {
	CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
}, source string, seq, n int) error {
	rng := rand.New(rand.NewPCG(uint64(seq), 7))
	now := time.Now()
	types := []string{"view", "add_to_cart", "remove_from_cart", "purchase"}
	i := 0
	_, err := db.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"event_id", "event_time", "event_type", "user_id", "session_id", "product_id", "category", "price", "quantity", "source_file"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			id := fmt.Sprintf("00000000-0000-4000-8000-%012x", seq+i)
			i++
			return []any{id, now.Add(-time.Duration(rng.IntN(60000)) * time.Millisecond), types[rng.IntN(4)],
				int64(1 + rng.IntN(50)), "11111111-1111-4111-8111-111111111111", int64(1 + rng.IntN(20)),
				"books", "9.99", int32(1), source}, nil
		}))
	return err
}

func loadEvents(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	if err := copyEvents(context.Background(), pool, "load.csv", 1, n); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), "ANALYZE events"); err != nil {
		t.Fatal(err)
	}
}
