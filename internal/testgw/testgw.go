// Package testgw holds the fixtures the gateway's tests share: a settable
// clock, alice's password hash, the configurations of a gateway with the
// built-in issuer and browser login or with token checks alone, a gateway
// served on loopback, an upstream that echoes what it received, a browser
// that logs in, and log sinks.
package testgw

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Username and Password are the credentials of alice, the built-in
// issuer's user in the login configurations.
const (
	Username = "alice"
	Password = "alice-password"
)

// Clock is a settable clock for a gateway's or an issuer's Now.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock that reads at until it is moved.
func NewClock(at time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(at.UnixNano())
	return c
}

// Now returns the clock's time in UTC.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock by d, backwards when d is negative.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var (
	hashOnce  sync.Once
	aliceHash string
)

// AliceHash returns the bcrypt hash of Password, made once per test binary
// at the lowest cost.
func AliceHash() string {
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		aliceHash = string(h)
	})
	return aliceHash
}
