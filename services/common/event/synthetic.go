package event

import (
	"math/rand/v2"
	"time"
)

// syntheticCategories are a few of the generator's categories, one with a space.
var syntheticCategories = []string{"books", "beauty", "baby", "jewelry", "office products", "electronics", "toys"}

// AppendSyntheticCSV appends rows valid events with random ids, times within the hour
// after t0 (microseconds, as the generator writes them) and generator-like values: the
// rows of benchmarks and bulk baselines, which need many distinct valid rows fast.
func AppendSyntheticCSV(dst []byte, rng *rand.Rand, rows int, t0 time.Time) []byte {
	for range rows {
		e := Event{
			EventTime:  t0.Add(time.Duration(rng.Int64N(int64(time.Hour)))).Truncate(time.Microsecond),
			EventType:  Types[rng.IntN(len(Types))],
			UserID:     1 + rng.Int64N(100000),
			ProductID:  1 + rng.Int64N(5000),
			Category:   syntheticCategories[rng.IntN(len(syntheticCategories))],
			PriceCents: rng.Int64N(100000),
			Quantity:   int32(1 + rng.IntN(3)),
		}
		for k := range e.EventID {
			e.EventID[k], e.SessionID[k] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		dst = AppendCSV(dst, &e)
	}
	return dst
}
