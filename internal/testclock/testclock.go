// Package testclock is a settable clock for the tests of every package:
// pass its Now where a component takes a clock, and move it with Advance
// instead of sleeping.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// New returns a clock that reads at until it is moved.
func New(at time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(at.UnixNano())
	return c
}

// Now returns the clock's time in UTC.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock by d, backwards when d is negative.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
