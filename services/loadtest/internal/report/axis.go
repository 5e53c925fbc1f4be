package report

import (
	"math"
	"strconv"
)

// The charts' axes. A tick a person reads is a round number: a multiple of 1, 2 or 5
// times a power of ten, a whole number for things that are counted, and a whole number
// of minutes (or a fraction of one that divides it) for time. Each tick is computed as
// k × step from integers, never by adding steps, so 0.6 prints as 0.6 and not as the
// 0.6000000000000001 that 0.2+0.2+0.2 is.

// NiceTicks returns ticks from 0 to at least hi, a 1-2-5 step apart, with at most n
// intervals. A hi that is not a positive finite number gives the ticks of [0, 1].
func NiceTicks(hi float64, n int) []float64 {
	return ticks(hi, n, math.Inf(-1))
}

// CountTicks is NiceTicks for a quantity that only takes whole values (files, rows): the
// step is at least 1, so no tick falls between two possible values.
func CountTicks(hi float64, n int) []float64 {
	return ticks(hi, n, 0)
}

// ticks finds the smallest step m·10^e (m in 1, 2, 5; e ≥ minExp) whose ticks cover
// [0, hi] in at most n intervals.
func ticks(hi float64, n int, minExp float64) []float64 {
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 1
	}
	n = max(n, 1)
	e := math.Max(math.Floor(math.Log10(hi/float64(n))), minExp)
	for ; ; e++ {
		for _, m := range []int64{1, 2, 5} {
			k := int64(math.Ceil(hi/tick(1, m, e) - 1e-9))
			if tick(k, m, e) < hi {
				k++
			}
			if k <= int64(n) {
				out := make([]float64, k+1)
				for i := range out {
					out[i] = tick(int64(i), m, e)
				}
				return out
			}
		}
	}
}

// tick is k·m·10^e as the float64 nearest to that decimal: for e < 0 a division of two
// exactly represented integers, which IEEE 754 rounds correctly.
func tick(k, m int64, e float64) float64 {
	if e >= 0 {
		return float64(k*m) * math.Pow10(int(e))
	}
	return float64(k*m) / math.Pow10(int(-e))
}

// timeSteps are the tick spacings of a time axis (seconds): each divides a minute or is
// a whole number of minutes that divides an hour, so ticks fall on round clock times.
var timeSteps = []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600}

// TimeTicks returns ticks from 0 to at least hi seconds with at most n intervals, on
// round clock times (a minute, 30 s, 5 min ...); beyond an hour per step, whole hours.
func TimeTicks(hi float64, n int) []float64 {
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 1
	}
	n = max(n, 1)
	for _, step := range timeSteps {
		if k := math.Ceil(hi/step - 1e-9); k <= float64(n) {
			return multiples(step, int(k))
		}
	}
	hours := CountTicks(hi/3600, n)
	return multiples(3600*hours[1], len(hours)-1)
}

func multiples(step float64, k int) []float64 {
	out := make([]float64, k+1)
	for i := range out {
		out[i] = float64(i) * step
	}
	return out
}

// TimeRange is where every time chart of r ends (seconds since the start): the latest
// moment any of them has data for, so the throughput, latency, backlog and resource
// charts share one x axis and a moment sits at the same place on each.
func TimeRange(r *Report) float64 {
	var end float64
	for _, p := range r.Timeline {
		end = math.Max(end, p.T)
	}
	for _, s := range r.Resources.Samples {
		end = math.Max(end, s.T)
	}
	for _, st := range r.Steps {
		end = math.Max(end, st.Start)
	}
	return end
}

// tickLabel prints a round tick with no more digits than it has ("0.6", "1500").
func tickLabel(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
