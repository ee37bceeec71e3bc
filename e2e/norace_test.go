//go:build !race

package e2e_test

// raceEnabled slows every browser step down, so the timeouts grow.
const raceEnabled = false
