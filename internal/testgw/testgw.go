// Package testgw is the harness the gateway's tests share: alice's
// password hash, the configurations of a gateway with the
// built-in issuer and browser login or with token checks alone, a gateway
// served on loopback, an upstream that echoes what it received, a browser
// that logs in, and log sinks. The clock is package testclock.
package testgw

import (
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Username and Password are the credentials of alice, the built-in
// issuer's user in the login configurations.
const (
	Username = "alice"
	Password = "alice-password"
)

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
