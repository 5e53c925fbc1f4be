package scenario

import (
	"math/rand/v2"
	"testing"
)

// Against any answers (a machine whose rate drifts as its table grows passes and misses
// in any order), the ramp ends within MaxSteps, never offers a rate twice, offers whole
// rows per file, and bisects only strictly inside its bracket, so every pass stays below
// every miss: the best pass the report names lies below the miss it names.
func TestRampNextAgainstAnyAnswers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 20000 {
		r := Ramp{StartRate: float64(1 + rng.IntN(5000)), FilesPerSec: []float64{1, 3, 10, 250, 10000}[rng.IntN(5)],
			MaxSteps: rng.IntN(25), Doublings: rng.IntN(6), Climb: []float64{0, 1, 1.01, 1.25, 3}[rng.IntN(5)],
			Resolution: []float64{0, 0.01, 0.1, 0.5}[rng.IntN(4)]}
		pPass := rng.Float64()
		var done []Result
		seen := map[float64]bool{}
		for {
			rate, ok := r.Next(done)
			if !ok {
				break
			}
			if len(done) >= r.MaxSteps {
				t.Fatalf("%+v: step %d of at most %d", r, len(done)+1, r.MaxSteps)
			}
			if seen[rate] {
				t.Fatalf("%+v after %v: %v again", r, done, rate)
			}
			seen[rate] = true
			if rows := rate / r.FilesPerSec; rows < 1 || rows != float64(int(rows)) {
				t.Fatalf("%+v: %v is %v rows per file", r, rate, rows)
			}
			done = append(done, Result{Offered: rate, Passed: rng.Float64() < pPass})
		}
		for _, p := range done {
			for _, m := range done {
				if p.Passed && !m.Passed && p.Offered >= m.Offered {
					t.Fatalf("%+v: %v passed above the miss %v: %v", r, p.Offered, m.Offered, done)
				}
			}
		}
	}
}
