package retry

import (
	"testing"
	"time"
)

func TestDelayDoublesUpToTheMaximum(t *testing.T) {
	p := Policy{Base: time.Second, Max: 5 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestJitterSpreadsDelaysAroundTheirValue(t *testing.T) {
	for _, c := range []struct {
		r    float64
		want time.Duration
	}{{0, 500 * time.Millisecond}, {0.5, time.Second}, {0.999, 1499 * time.Millisecond}} {
		p := Policy{Base: time.Second, Max: time.Minute, Jitter: 0.5, Rand: func() float64 { return c.r }}
		if got := p.Delay(1); got.Round(time.Millisecond) != c.want {
			t.Errorf("jitter at %v: %s, want %s", c.r, got, c.want)
		}
	}
}

func TestExhaustedAtTheBoundAndNeverWithoutOne(t *testing.T) {
	p := Policy{Attempts: 3}
	if p.Exhausted(2) || !p.Exhausted(3) {
		t.Fatal("a bound of 3 must allow 2 failures and stop at the third")
	}
	if (Policy{}).Exhausted(1 << 20) {
		t.Fatal("no bound: never exhausted")
	}
}
