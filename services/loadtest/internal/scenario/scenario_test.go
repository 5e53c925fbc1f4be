package scenario

import (
	"slices"
	"testing"
	"time"
)

func TestPresetsAreTheReports(t *testing.T) {
	for name, want := range map[string]float64{"baseline": 37.5, "high-load": 700, "stress": 10000} {
		s, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.OfferedRate(); got != want {
			t.Errorf("%s offers %v rows/s, want %v", name, got, want)
		}
	}
	if _, err := Preset("nope"); err == nil {
		t.Error("an unknown scenario must be an error")
	}
}

func TestOverrides(t *testing.T) {
	s, _ := Preset("stress")
	s, err := s.Apply(Overrides{Duration: time.Minute, Generators: 4, Ingesters: 2, TriggerInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration != time.Minute || s.Generators != 4 || s.Ingesters != 2 || s.TriggerInterval != 10*time.Second || s.OfferedRate() != 40000 {
		t.Fatalf("%+v", s)
	}
	if _, err := s.Apply(Overrides{MinRecords: 10, MaxRecords: 5}); err == nil {
		t.Error("min > max must be refused")
	}
}

func TestRamp(t *testing.T) {
	s, _ := Preset("max")
	s, err := s.Apply(Overrides{Duration: 2 * time.Minute, StepDuration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ramp.MaxSteps != 6 || s.Duration != 2*time.Minute {
		t.Fatalf("%+v %+v", s, s.Ramp)
	}
	st := s.Ramp.StepFor(3, 10000, 2)
	if st.RowsPerFile != 1000 || st.Sleep != 200*time.Millisecond || st.Offered != 10000 {
		t.Fatalf("%+v", st)
	}
	// The preset's own ramp is not shared between callers.
	again, _ := Preset("max")
	if again.Ramp.StepDuration != 30*time.Second {
		t.Fatal("Apply changed the preset")
	}
}

// ramp plays the preset's ramp against a machine whose answers are given per offered
// rate (a rate not listed passes below knee and misses from it), and returns the offered
// rates in the order the ramp chose them.
func ramp(t *testing.T, r Ramp, knee float64, answers map[float64]bool) []float64 {
	t.Helper()
	var done []Result
	var rates []float64
	for {
		rate, ok := r.Next(done)
		if !ok {
			return rates
		}
		if len(rates) > r.MaxSteps {
			t.Fatalf("more than MaxSteps steps: %v", rates)
		}
		passed, set := answers[rate]
		if !set {
			passed = rate < knee
		}
		rates = append(rates, rate)
		done = append(done, Result{Offered: rate, Passed: passed})
	}
}

// The max preset doubles four times, climbs by a quarter, then bisects the gap between
// the last pass and the first miss until it is at most 10 % of the pass.
func TestRampClimbsThenBisectsToTheResolution(t *testing.T) {
	s, _ := Preset("max")
	r := *s.Ramp
	for _, c := range []struct {
		name    string
		knee    float64
		answers map[float64]bool
		want    []float64
	}{
		{"knee between 50k and 62.5k", 58000, nil,
			// 56,250 passes: gap 6,250 = 11 % of it; 59,380 misses: gap 3,130 = 5.6 %.
			[]float64{2500, 5000, 10000, 20000, 40000, 50000, 62500, 56250, 59380}},
		{"knee between 40k and 50k", 44000, nil,
			// 45,000 misses: gap 5,000 = 12.5 % of 40,000; 42,500 passes: 2,500 = 5.9 %.
			[]float64{2500, 5000, 10000, 20000, 40000, 50000, 45000, 42500}},
		{"the first step misses", 1000, nil, []float64{2500}},
		{"a doubling misses", 15000, nil,
			// 10,000 → 20,000 misses: 15,000 misses, 12,500 passes, 13,750 passes (gap 1,250 = 9 %).
			[]float64{2500, 5000, 10000, 20000, 15000, 12500, 13750}},
		{"never misses: MaxSteps bound the climb", 1e9, nil,
			[]float64{2500, 5000, 10000, 20000, 40000, 50000, 62500, 78130, 97660, 122080}},
		{"a bisecting step misses below an earlier pass's neighbour", 0,
			// The table grew: 45,000 misses although 40,000 passed and a lower miss
			// replaces 50,000 as the bracket's top.
			map[float64]bool{2500: true, 5000: true, 10000: true, 20000: true, 40000: true, 50000: false, 45000: false, 42500: true},
			[]float64{2500, 5000, 10000, 20000, 40000, 50000, 45000, 42500}},
	} {
		if got := ramp(t, r, c.knee, c.answers); !slices.Equal(got, c.want) {
			t.Errorf("%s: offered %v, want %v", c.name, got, c.want)
		}
	}
}

// MaxSteps (DURATION / STEP_DURATION) ends the bisection too, and a resolution of 0
// bisects down to the rows a file can carry.
func TestRampStopsAtMaxStepsAndAtTheRowsPerFile(t *testing.T) {
	r := Ramp{StartRate: 100, FilesPerSec: 10, MaxSteps: 5, Doublings: 10, Climb: 2}
	if got, want := ramp(t, r, 285, nil), []float64{100, 200, 400, 300, 250}; !slices.Equal(got, want) {
		t.Errorf("offered %v, want %v", got, want)
	}
	r.MaxSteps = 20
	// 280 passes, 290 misses: no whole number of rows per file lies between.
	if got, want := ramp(t, r, 285, nil), []float64{100, 200, 400, 300, 250, 280, 290}; !slices.Equal(got, want) {
		t.Errorf("offered %v, want %v", got, want)
	}
}
