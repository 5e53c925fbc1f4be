// Package retry holds the ingester's retry rules in one place: how long to wait before
// the next attempt and when to give up. Every call site that waits or counts attempts
// takes a Policy from the runner's settings instead of writing its own literals, so a
// setting changes every place it should.
package retry

import (
	"math/rand/v2"
	"time"
)

// Policy is exponential backoff with jitter and an optional bound on attempts.
type Policy struct {
	// Base is the delay after the first failure; it doubles per attempt up to Max.
	Base, Max time.Duration
	// Attempts is how many failures are allowed before giving up (Exhausted); 0: never.
	Attempts int
	// Jitter spreads delays over [1-Jitter, 1+Jitter) of their value, so replicas and
	// files that failed together do not come back together. 0: none.
	Jitter float64
	// Rand returns a number in [0, 1) (tests fix it); math/rand/v2 when nil.
	Rand func() float64
}

// Delay is the wait before the attempt that follows the n-th failure (n >= 1).
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	if p.Jitter > 0 {
		r := rand.Float64
		if p.Rand != nil {
			r = p.Rand
		}
		d = time.Duration(float64(d) * (1 - p.Jitter + 2*p.Jitter*r()))
	}
	return d
}

// Exhausted tells whether n failures are the last one allowed.
func (p Policy) Exhausted(n int) bool { return p.Attempts > 0 && n >= p.Attempts }

// Policies are every retry rule of the ingester.
type Policies struct {
	// File: a file that failed for a reason of its own (an OS error reading it, a
	// statement the server refuses, a move that fails); after Attempts it is moved aside.
	File Policy
	// Database: the database is away; no file is to blame and no attempt is counted.
	Database Policy
	// Locked: how long a file another replica holds waits before it is looked at again.
	Locked time.Duration
	// Staging: batches that go straight through the staging table after a duplicate key
	// (duplicates come in runs).
	Staging int
}

// Defaults are the rules used where a setting is not given: a file is retried after
// 1 s doubling to 5 min, 10 attempts; the database after 100 ms doubling to 5 s.
func Defaults() Policies {
	return Policies{
		File:     Policy{Base: time.Second, Max: 5 * time.Minute, Attempts: 10, Jitter: 0.5},
		Database: Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2},
		Locked:   500 * time.Millisecond,
		Staging:  8,
	}
}
