package report

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// ranges are the maxima the tick tests try: the values that went wrong in real reports
// (a backlog of 1 or 2 files, 0.1+0.2, a 05:50 run), edge cases, and random spans over
// twelve orders of magnitude.
func ranges() []float64 {
	hs := []float64{0, -3, math.NaN(), math.Inf(1), 1, 2, 3, 0.6, 0.1 + 0.2, 0.2612, 1e-7, 7, 10, 99.8, 350, 700.4, 1e9, 83653}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		hs = append(hs, math.Pow(10, rng.Float64()*12-4))
	}
	return hs
}

// covers reports what is wrong with ticks as an axis for [0, hi] in at most n intervals.
func covers(ticks []float64, hi float64, n int) string {
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 1
	}
	switch {
	case len(ticks) < 2:
		return "fewer than two ticks"
	case ticks[0] != 0:
		return "does not start at 0"
	case ticks[len(ticks)-1] < hi:
		return "ends below the range"
	case ticks[len(ticks)-2] >= hi:
		return "has a tick interval past the range"
	case len(ticks)-1 > n:
		return "more intervals than asked for"
	}
	return ""
}

func TestNiceTicksAreRoundAndCoverTheRange(t *testing.T) {
	for _, hi := range ranges() {
		for _, n := range []int{3, 5, 8} {
			ts := NiceTicks(hi, n)
			if why := covers(ts, hi, n); why != "" {
				t.Fatalf("NiceTicks(%v, %d) = %v %s", hi, n, ts, why)
			}
			step := ts[1]
			e := math.Floor(math.Log10(step) + 1e-9)
			mant := step / math.Pow10(int(e))
			if math.Abs(mant-1) > 1e-9 && math.Abs(mant-2) > 1e-9 && math.Abs(mant-5) > 1e-9 {
				t.Fatalf("NiceTicks(%v, %d): step %v is not 1, 2 or 5 times a power of ten", hi, n, step)
			}
			for i, v := range ts {
				// Round: printed with no more decimals than the step has, so no
				// 0.6000000000000001 on an axis.
				label := tickLabel(v)
				if dec := len(label) - strings.IndexByte(label, '.') - 1; strings.Contains(label, ".") && float64(dec) > math.Max(-e, 0) {
					t.Fatalf("NiceTicks(%v, %d): tick %d prints as %s", hi, n, i, label)
				}
				if k := v / step; math.Abs(k-float64(i)) > 1e-9*float64(i+1) {
					t.Fatalf("NiceTicks(%v, %d): tick %v is not %d steps of %v", hi, n, v, i, step)
				}
			}
		}
	}
}

func TestCountTicksAreWholeNumbers(t *testing.T) {
	for _, hi := range ranges() {
		ts := CountTicks(hi, 5)
		if why := covers(ts, hi, 5); why != "" {
			t.Fatalf("CountTicks(%v, 5) = %v %s", hi, ts, why)
		}
		for _, v := range ts {
			if v != math.Trunc(v) {
				t.Fatalf("CountTicks(%v, 5) = %v: %v is not a whole number", hi, ts, v)
			}
		}
	}
	// A backlog of at most one file is read off an axis 0, 1: nothing in between.
	if got := CountTicks(1, 5); len(got) != 2 || got[1] != 1 {
		t.Errorf("CountTicks(1, 5) = %v, want [0 1]", got)
	}
}

func TestTimeTicksFallOnRoundClockTimes(t *testing.T) {
	for _, hi := range append(ranges(), 86400*3) {
		ts := TimeTicks(hi, 8)
		if why := covers(ts, hi, 8); why != "" {
			t.Fatalf("TimeTicks(%v, 8) = %v %s", hi, ts, why)
		}
		step := ts[1]
		if step < 1 {
			continue // a run under a second: ticks 0, 1 s
		}
		// Every tick a whole second; a step shorter than a minute divides it, a longer
		// one is whole minutes dividing an hour, or whole hours.
		round := math.Mod(60, step) == 0 || (math.Mod(step, 60) == 0 && (math.Mod(3600, step) == 0 || math.Mod(step, 3600) == 0))
		if !round {
			t.Fatalf("TimeTicks(%v, 8): step %v s does not land on round clock times", hi, step)
		}
		for _, v := range ts {
			if v != math.Trunc(v) {
				t.Fatalf("TimeTicks(%v, 8): tick %v is not a whole second", hi, v)
			}
		}
	}
	// The run of the issue: 05:50 of data is drawn to 06:00 in minutes, not in 50 s steps.
	if got := TimeTicks(350, 8); len(got) != 7 || got[1] != 60 {
		t.Errorf("TimeTicks(350, 8) = %v, want 0, 60, ..., 360", got)
	}
}

func TestTimeRangeIsTheLatestMomentOfAnyChart(t *testing.T) {
	r := &Report{Timeline: []Point{{T: 5}, {T: 300}}, Resources: Resources{Samples: []ResourceSample{{T: 0}, {T: 312.5}}},
		Steps: []Step{{Index: 1}, {Index: 2, Start: 200}}}
	if got := TimeRange(r); got != 312.5 {
		t.Errorf("TimeRange = %v, want the last resource sample's 312.5", got)
	}
	r.Timeline = append(r.Timeline, Point{T: 350})
	if got := TimeRange(r); got != 350 {
		t.Errorf("TimeRange = %v, want the timeline's 350", got)
	}
	if got := TimeRange(&Report{}); got != 0 {
		t.Errorf("TimeRange of an empty report = %v", got)
	}
}

func TestLatencyTicksPrintShort(t *testing.T) {
	for _, hi := range ranges() {
		for _, v := range NiceTicks(hi, 5) {
			if l := LatencyTick(v); len(l) > 9 {
				t.Fatalf("LatencyTick(%v) = %q", v, l)
			}
		}
	}
	if got := strconv.Quote(LatencyTick(0.6)); got != `"600 ms"` {
		t.Errorf("LatencyTick(0.6) = %s", got)
	}
}
