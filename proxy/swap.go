package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/issuer"
)

// Gateway is the JWT-enforcing reverse proxy. It is an http.Handler, safe
// for concurrent use, and what it serves can be replaced while it runs
// ([Gateway.Swap]). Build it with [New].
type Gateway struct {
	cur     atomic.Pointer[generation]
	ctx     context.Context
	base    Config
	log     *slog.Logger
	metrics *metrics
	reloads *prometheus.CounterVec
	mu      sync.Mutex // serialises swaps
	// accessLog writes one line per request; off when the logger would
	// drop Info lines anyway.
	accessLog bool
	upgrades  *upgrades
	// draining is set once shutdown has begun: /readyz answers 503.
	draining atomic.Bool
	tracing  *Tracing // nil: requests are not traced
}

// New returns a Gateway with its listeners configured by cfg, serving
// nothing yet (every path is 404) until the first [Gateway.Swap].
func New(ctx context.Context, cfg Config) *Gateway {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	gw := &Gateway{ctx: ctx, base: cfg, log: cfg.Logger, upgrades: newUpgrades()}
	if cfg.Tracing.on() {
		gw.tracing = cfg.Tracing
	}
	gw.accessLog = cfg.Logger.Enabled(ctx, slog.LevelInfo) && cfg.Logger.Handler() != slog.DiscardHandler
	gw.metrics = newMetrics(func() []keySetInfo { return gw.cur.Load().keySetInfo() },
		func() []cacheInfo { return gw.cur.Load().cacheInfo() })
	gw.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_config_reloads_total",
		Help: "Configuration reloads by result (ok, invalid, error).",
	}, []string{"result"})
	gw.metrics.reg.MustRegister(gw.reloads)
	g, _ := gw.newGeneration(Spec{})
	gw.cur.Store(g)
	return gw
}

// Swap builds the gateway for s and puts it in place of the one serving:
// requests already running finish with the old one, every later request
// sees the new one whole. Once the old one's last request has ended its
// idle upstream connections are closed and each of retire runs, once:
// that is where the caller closes what only the old Spec used. If s cannot
// be built, nothing changes and retire never runs.
func (gw *Gateway) Swap(s Spec, retire ...func()) error {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	g, err := gw.newGeneration(s)
	if err != nil {
		return err
	}
	old := gw.cur.Swap(g)
	old.closers = append(old.closers, old.closeIdle)
	old.closers = append(old.closers, retire...)
	old.retireAfter()
	return nil
}

// newGeneration builds the generation for s with gw's clock, logger and
// metrics.
func (gw *Gateway) newGeneration(s Spec) (*generation, error) {
	g, err := newGeneration(s, gw.log, gw.base.Now, gw.base.Sleep, gw.metrics)
	if g != nil {
		g.readTimeout, g.writeTimeout = gw.base.ReadTimeout, gw.base.WriteTimeout
		g.tracing = gw.tracing
	}
	return g, err
}

// ServeHTTP hands the request to the current configuration.
func (gw *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if gw.draining.Load() && !isUpgrade(r) {
		// Shutting down: this connection closes after the answer (HTTP/2:
		// GOAWAY), so its client opens a new one, to a pod that stays.
		// Idle connections are left alone until the listener closes: closing
		// one under a client about to reuse it would fail that request. An
		// upgrade keeps its own Connection: Upgrade; its connection is never
		// reused for HTTP anyway.
		w.Header().Set("Connection", "close")
	}
	if isUpgrade(r) {
		var (
			end func()
			ok  bool
		)
		if r, end, ok = gw.upgrades.begin(r); !ok {
			w.Header().Set("Connection", "close")
			gw.cur.Load().plainStatus(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		defer end()
	}
	gw.serve(w, r)
}

// Ready reports whether every issuer's keys are loaded and the built-in
// issuer's store answers.
func (gw *Gateway) Ready() bool { return gw.cur.Load().Ready() }

// enter returns the current configuration with a request counted on it;
// the caller calls its leave when done.
func (gw *Gateway) enter() *generation {
	for {
		if g := gw.cur.Load(); g.enter() {
			return g
		}
	}
}

// CountReload counts a configuration reload by its result: "ok",
// "invalid" (it did not parse or validate) or "error" (it could not be
// built).
func (gw *Gateway) CountReload(result string) { gw.reloads.WithLabelValues(result).Inc() }

// CountKeyFetch counts a fetch of issuer's key set by its result.
func (gw *Gateway) CountKeyFetch(issuer, result string) {
	gw.metrics.jwksFetches.WithLabelValues(issuer, result).Inc()
}

// CountLoginFailure counts a failed login, at the built-in issuer or the
// browser login, by its reason.
func (gw *Gateway) CountLoginFailure(reason string) { gw.metrics.loginFailed(reason) }

// CountTraceDrop counts n spans that were not exported, for reason
// "export" (the exporter failed) or "queue_full".
func (gw *Gateway) CountTraceDrop(reason string, n int) {
	gw.metrics.traceDrops.WithLabelValues(reason).Add(float64(n))
}

// CountBackchannelLogout counts a back-channel logout: direction "sent"
// (by the built-in issuer) or "received" (by the gateway), and its result.
func (gw *Gateway) CountBackchannelLogout(direction, result string) {
	gw.metrics.backchannelLogouts.WithLabelValues(direction, result).Inc()
}

// Issuer returns the built-in issuer being served, or nil when there is
// none.
func (gw *Gateway) Issuer() *issuer.Issuer {
	if b := gw.cur.Load().builtin; b != nil {
		return b.iss
	}
	return nil
}

// closeIdle closes a replaced configuration's idle upstream connections
// (requests in flight keep theirs).
func (g *generation) closeIdle() {
	for _, rt := range g.routes.all {
		if t, ok := rt.proxy.Transport.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}
}

var _ http.Handler = (*Gateway)(nil)
