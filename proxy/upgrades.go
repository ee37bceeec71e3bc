package proxy

import (
	"context"
	"net/http"
	"sync"
)

// upgrades tracks the requests that may become upgraded connections
// (WebSockets and the like). http.Server.Shutdown neither waits for nor
// closes a connection once its handler has taken it over, so without this
// an upgraded connection would outlive Serve, its handler still running
// (and logging) after the gateway had stopped. Serve gives such
// connections the same grace as other requests, then closes them, and
// returns only once their handlers have.
type upgrades struct {
	ctx    context.Context // cancelled to close every upgraded connection
	cancel context.CancelFunc

	mu      sync.Mutex
	n       int           // requests begun and not ended
	closing bool          // no new upgrade requests
	drained chan struct{} // closed once closing and n is 0
}

func newUpgrades() *upgrades {
	u := &upgrades{drained: make(chan struct{})}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	return u
}

// begin registers an upgrade request and returns it with a context that
// ends when the request's does or when the gateway closes upgraded
// connections. ok is false once the gateway is shutting down.
func (u *upgrades) begin(r *http.Request) (_ *http.Request, end func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing {
		return r, nil, false
	}
	u.n++
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(u.ctx, cancel)
	return r.WithContext(ctx), func() {
		stop()
		cancel()
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.n--; u.n == 0 && u.closing {
			close(u.drained)
		}
	}, true
}

// close refuses new upgrade requests, waits until the running ones end or
// ctx does, then closes those left and waits for their handlers.
func (u *upgrades) close(ctx context.Context) {
	u.mu.Lock()
	if !u.closing {
		u.closing = true
		if u.n == 0 {
			close(u.drained)
		}
	}
	u.mu.Unlock()
	select {
	case <-u.drained:
		return
	case <-ctx.Done():
	}
	u.cancel() // ReverseProxy closes both sides when the request's context ends
	<-u.drained
}
