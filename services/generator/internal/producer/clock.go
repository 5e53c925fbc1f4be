package producer

import (
	"context"
	"time"
)

// Clock is the time the producer paces itself by. The service uses the machine's clock;
// tests give it a simulated one, so the schedule is checked by counting simulated
// instants rather than by timing a busy machine.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t, or earlier with ctx's error when ctx ends.
	SleepUntil(ctx context.Context, t time.Time) error
}

// SystemClock is the machine's clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// SleepUntil waits on a timer.
func (SystemClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
