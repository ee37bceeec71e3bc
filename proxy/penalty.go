package proxy

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// connState is what the gateway remembers about one client connection: how
// many requests in a row failed authentication on it.
type connState struct{ fails atomic.Int32 }

type connKey struct{}

// ConnContext gives every client connection its own state; it is the
// http.Server's ConnContext. Without it (a server that does not set it)
// failed authentications are never delayed.
func (gw *Gateway) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

func connOf(r *http.Request) *connState {
	cs, _ := r.Context().Value(connKey{}).(*connState)
	return cs
}

// Failures in a row a connection is allowed before its answers slow down,
// and the first delay; each further failure doubles it up to
// server.auth_failure_delay.
const (
	freeFailures = 8
	firstDelay   = 25 * time.Millisecond
)

// failureDelay is how long the n-th failure in a row waits.
func failureDelay(n int32, most time.Duration) time.Duration {
	if most <= 0 || n <= freeFailures {
		return 0
	}
	shift := min(n-freeFailures-1, 16)
	return min(firstDelay<<shift, most)
}

// authSucceeded clears the connection's run of failures.
func authSucceeded(r *http.Request) {
	if cs := connOf(r); cs != nil && cs.fails.Load() != 0 {
		cs.fails.Store(0)
	}
}

// slowDown counts a failed authentication on the request's connection and,
// once the connection has failed too often in a row, holds the answer back.
// A client that sends bad token after bad token, as a flood does, then gets
// few answers and costs the gateway almost nothing, while the connections of
// valid traffic are never slowed. It returns early when the client leaves.
// A connection from a trusted proxy carries many clients' requests: holding
// it back would stall them all, so it is never slowed (limit clients at that
// proxy instead).
func (g *generation) slowDown(r *http.Request) {
	cs := connOf(r)
	if cs == nil || g.isTrusted(r.RemoteAddr) {
		return
	}
	d := failureDelay(cs.fails.Add(1), g.failureDelayMax)
	if d == 0 {
		return
	}
	g.metrics.authDelays.Inc()
	g.sleep(r.Context(), d)
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
