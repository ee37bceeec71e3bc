package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/jwks"
)

// Gateway is the JWT-enforcing reverse proxy. It is an http.Handler, safe
// for concurrent use, and its configuration can be replaced while it runs
// ([Gateway.Reload]). Build it with [New].
type Gateway struct {
	cur     atomic.Pointer[gateway]
	ctx     context.Context
	base    Config
	cfg     *config.Config // the first configuration: listeners and server settings
	log     *slog.Logger
	metrics *metrics
	keySets *remoteCache
	reloads *prometheus.CounterVec
	mu      sync.Mutex // serialises reloads
	// accessLog writes one line per request; off when the logger would
	// drop Info lines anyway.
	accessLog bool
	upgrades  *upgrades
	// draining is set once shutdown has begun: /readyz answers 503.
	draining atomic.Bool
	// fileMu serialises ReloadFile; digest is what it last loaded or
	// refused as invalid (see loadWithDigest), digestErr why.
	fileMu      sync.Mutex
	digest      [32]byte
	digestKnown bool
	digestErr   error
}

// New builds a Gateway from a validated configuration. Issuers' key sets
// start loading in the background on ctx, which bounds their lifetime; New
// never waits for a remote issuer.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Config == nil {
		return nil, errors.New("proxy: no configuration")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	gw := &Gateway{ctx: ctx, base: cfg, cfg: cfg.Config, log: cfg.Logger, keySets: newRemoteCache(ctx), upgrades: newUpgrades()}
	gw.accessLog = cfg.Logger.Enabled(ctx, slog.LevelInfo) && cfg.Logger.Handler() != slog.DiscardHandler
	gw.metrics = newMetrics(func() []keySetInfo { return gw.cur.Load().keySetInfo() },
		func() []cacheInfo { return gw.cur.Load().cacheInfo() })
	gw.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_config_reloads_total",
		Help: "Configuration reloads by result (ok, invalid, error).",
	}, []string{"result"})
	gw.metrics.reg.MustRegister(gw.reloads)
	g, err := gw.build(cfg.Config, nil)
	if err != nil {
		return nil, err
	}
	gw.cur.Store(g)
	return gw, nil
}

func (gw *Gateway) build(c *config.Config, prev *gateway) (*gateway, error) {
	ctx, cancel := context.WithCancel(gw.ctx)
	cfg := gw.base
	cfg.Config = c
	g, err := newGateway(ctx, gw.ctx, cfg, gw.metrics, gw.keySets, prev)
	if err != nil {
		cancel()
		return nil, err
	}
	g.cancel = cancel
	return g, nil
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

// Reload replaces the configuration atomically: requests already running
// finish with the old one, every later request sees the new one whole. Key
// sets of unchanged issuers and an unchanged built-in issuer are kept. The
// listeners and server settings (addresses, timeouts, TLS files) are those
// of the first configuration; changing them needs a restart. If the new
// configuration cannot be built the old one stays and the error is
// returned.
func (gw *Gateway) Reload(c *config.Config) error {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	old := gw.cur.Load()
	if !reflect.DeepEqual(old.cfg.Server.Listen, c.Server.Listen) || !reflect.DeepEqual(old.cfg.Admin, c.Admin) ||
		!reflect.DeepEqual(old.cfg.Server.TLS, c.Server.TLS) {
		gw.log.Warn("reload: listener addresses and TLS files change only on restart")
	}
	g, err := gw.build(c, old)
	if err != nil {
		gw.reloads.WithLabelValues("error").Inc()
		return fmt.Errorf("proxy: reload: %w", err)
	}
	gw.cur.Store(g)
	gw.keySets.retain(g.remotes)
	// What the old configuration alone holds is closed once its requests
	// in flight have ended: a replaced issuer's rotation and store, a
	// session store the new one does not share, the login's refreshes.
	if b := old.builtin; b != nil && b != g.builtin {
		old.closers = append(old.closers, b.stop, closeStore(b.store))
	}
	if s := old.login.sessionsStore(); s != nil && s != g.login.sessionsStore() {
		old.closers = append(old.closers, func() { _ = s.Close() })
	}
	old.retire()
	old.retireAfter()
	gw.reloads.WithLabelValues("ok").Inc()
	gw.log.Info("configuration reloaded", "routes", len(c.Routes), "issuers", len(c.Issuers))
	return nil
}

// enter returns the current configuration with a request counted on it;
// the caller calls its leave when done.
func (gw *Gateway) enter() *gateway {
	for {
		if g := gw.cur.Load(); g.enter() {
			return g
		}
	}
}

// closeStore closes an issuer store that holds connections (Redis).
func closeStore(s any) func() {
	return func() {
		if c, ok := s.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// ReloadFailed counts a configuration that was refused before it reached
// Reload (it did not parse or validate).
func (gw *Gateway) ReloadFailed() { gw.reloads.WithLabelValues("invalid").Inc() }

// retire lets a replaced configuration go: idle upstream connections are
// closed (requests in flight keep theirs).
func (g *gateway) retire() {
	for _, rt := range g.routes.all {
		if t, ok := rt.proxy.Transport.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}
}

// remoteCache keeps issuers' key sets across reloads, keyed by everything
// that configures them.
type remoteCache struct {
	ctx context.Context
	mu  sync.Mutex
	m   map[string]*remoteEntry
}

type remoteEntry struct {
	r      *jwks.Remote
	cancel context.CancelFunc
}

func newRemoteCache(ctx context.Context) *remoteCache {
	return &remoteCache{ctx: ctx, m: map[string]*remoteEntry{}}
}

// get returns the running key set for cfg, starting one if needed.
func (c *remoteCache) get(cfg jwks.RemoteConfig) *jwks.Remote {
	key := fmt.Sprintf("%s|%s|%v|%v|%v", cfg.Issuer, cfg.JWKSURI, cfg.MinAge, cfg.MaxAge, cfg.RefetchInterval)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		return e.r
	}
	ctx, cancel := context.WithCancel(c.ctx)
	r := jwks.NewRemote(ctx, cfg)
	go r.Run()
	c.m[key] = &remoteEntry{r: r, cancel: cancel}
	return r
}

// retain stops every key set not in used.
func (c *remoteCache) retain(used []*jwks.Remote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		keep := false
		for _, r := range used {
			keep = keep || r == e.r
		}
		if !keep {
			e.cancel()
			delete(c.m, k)
		}
	}
}

var _ http.Handler = (*Gateway)(nil)

// ReloadFile loads, validates and applies a configuration file. An invalid
// file is refused whole: every error is logged, counted in
// portcullis_config_reloads_total{result="invalid"}, and the running
// configuration stays. A file that, with every file it names (issuer key
// files, upstream CA files), is the same as at the last reload or refusal
// is not reloaded again: one edit seen by the file watch and by a SIGHUP
// counts once.
func (gw *Gateway) ReloadFile(path string) error {
	gw.fileMu.Lock()
	defer gw.fileMu.Unlock()
	c, digest, err := loadWithDigest(path)
	if gw.digestKnown && digest == gw.digest {
		gw.log.Info("configuration unchanged since the last reload; nothing to do", "path", path)
		return gw.digestErr
	}
	gw.digest, gw.digestKnown, gw.digestErr = digest, true, err
	if err != nil {
		gw.ReloadFailed()
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				gw.log.Error("reload refused", "error", e.Error())
			}
		} else {
			gw.log.Error("reload refused", "error", err)
		}
		return err
	}
	if err := gw.Reload(c); err != nil {
		gw.log.Error("reload failed", "error", err)
		gw.digestKnown = false // it may have been passing; try again next time
		return err
	}
	return nil
}

// loadWithDigest loads path and returns, besides the configuration, the
// SHA-256 of the file and of each file the configuration names whose
// contents a reload reads. For a file that does not load, the digest is
// that of its bytes alone.
func loadWithDigest(path string) (*config.Config, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("config: %w", err)
	}
	h := sha256.New()
	h.Write(data)
	c, err := config.Parse(path, data, os.LookupEnv)
	if err == nil {
		var named []string
		if c.Issuer != nil {
			named = append(named, c.Issuer.Signing.KeyFiles...)
		}
		for _, r := range c.Routes {
			if r.UpstreamCAFile != "" {
				named = append(named, r.UpstreamCAFile)
			}
		}
		for _, f := range named {
			b, _ := os.ReadFile(f)
			fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(b))
			h.Write(b)
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return c, d, err
}

// WatchFile reloads path whenever its contents change, checking every
// interval (a poll: it works the same on every filesystem, including the
// symlink swaps of a Kubernetes ConfigMap volume) until ctx is done. The
// configuration running when it starts is taken to be path's.
func (gw *Gateway) WatchFile(ctx context.Context, path string, interval time.Duration) {
	last, _ := fileDigest(path)
	gw.fileMu.Lock()
	if !gw.digestKnown {
		_, gw.digest, _ = loadWithDigest(path)
		gw.digestKnown = true
	}
	gw.fileMu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d, err := fileDigest(path)
		if err != nil || d == last {
			continue
		}
		last = d
		gw.log.Info("configuration file changed; reloading", "path", path)
		_ = gw.ReloadFile(path)
	}
}

// fileDigest is the SHA-256 of a file's contents.
func fileDigest(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}
