// Package serve is portcullis' composition root. It turns a validated
// configuration into each package's own settings (authn's issuers and key
// sets, the built-in issuer, the browser login, the gateway's routes and
// listeners), wires them into a [proxy.Gateway], and owns reload: it builds
// the next generation, swaps it in, and closes what the replaced one alone
// opened once its last request has ended. Only this package and the
// command read package config.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/oidcclient"
	"github.com/portcullis-dev/portcullis/proxy"
	"go.opentelemetry.io/otel/trace"
)

// Options configures a [Server].
type Options struct {
	// Config is the validated configuration. Required.
	Config *config.Config
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches discovery documents and key sets; nil means a
	// client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for token checks and metrics; nil means time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, whichever comes first; it
	// holds back answers to connections that keep failing authentication.
	// nil means a timer.
	Sleep func(ctx context.Context, d time.Duration)
	// Getenv reads the OTEL_* variables that turn tracing on or off; nil
	// means os.Getenv. (The OTLP exporter reads its own OTEL_EXPORTER_OTLP_*
	// variables from the process's environment.)
	Getenv func(string) string
	// Version is the service.version of traces.
	Version string
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
}

// Server is a running gateway and the configuration it was built from. Its
// embedded [proxy.Gateway] serves; Server replaces what it serves on
// [Server.Reload].
type Server struct {
	*proxy.Gateway
	ctx     context.Context
	opts    Options
	log     *slog.Logger
	keySets *remoteCache
	tracing *telemetry.Tracing // nil: tracing is off
	// DPoP proofs seen and the key of server nonces outlive reloads, so a
	// reload never lets a proof be used twice or a nonce go stale.
	dpopReplay dpop.ReplayCache
	dpopNonces *dpop.Nonces

	mu  sync.Mutex // serialises reloads
	cur *generation

	// fileMu serialises ReloadFile; digest is what it last loaded or
	// refused as invalid (see loadWithDigest), digestErr why.
	fileMu      sync.Mutex
	digest      [32]byte
	digestKnown bool
	digestErr   error
}

// generation is what one configuration opened: a replaced generation
// closes what the next one does not share.
type generation struct {
	cfg      *config.Config
	builtin  *builtin                // nil without an issuer section; kept while the section is unchanged
	sessions *oidcclient.RedisStore  // login.session_store on Redis; kept while its URL is
	memory   *oidcclient.MemoryStore // login.session_store: memory; kept across reloads
	// logouts keeps back-channel logouts of cookie sessions in memory,
	// across reloads; logoutsRedis in Redis, kept while its URL is.
	logouts      *oidcclient.MemoryLogouts
	logoutsRedis *oidcclient.RedisStore
	remotes      []*jwks.Remote     // key sets it reads (shared through keySets)
	cancel       context.CancelFunc // stops the login's background work
}

// New builds the gateway for opts.Config. Issuers' key sets start loading
// in the background on ctx, which bounds their lifetime; New never waits
// for a remote issuer.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("serve: no configuration")
	}
	opts.defaults()
	s := &Server{ctx: ctx, opts: opts, log: opts.Logger, keySets: newRemoteCache(ctx),
		dpopReplay: dpop.NewMemoryReplay(0, opts.Now), dpopNonces: dpop.NewNonces(nil, 0, opts.Now)}
	if r := opts.Config.Server.DPoP.ReplayStore; r != "" && r != config.StoreMemory {
		rr, err := dpop.NewRedisReplay(r, opts.Now)
		if err != nil {
			return nil, fmt.Errorf("serve: server.dpop.replay_store %s: %w", config.RedactStore(r), err)
		}
		context.AfterFunc(ctx, func() { _ = rr.Close() })
		s.dpopReplay = rr
	}
	tr, err := telemetry.New(ctx, tracingConfig(opts.Config, opts, func(reason string, n int) {
		s.CountTraceDrop(reason, n) // s.Gateway is set before any span ends
	}))
	if err != nil {
		return nil, fmt.Errorf("serve: telemetry.tracing: %w", err)
	}
	s.tracing = tr
	pc := listeners(opts.Config, opts)
	if f := opts.Config.Server.TLS.ClientCAFile; f != "" {
		if pc.ClientCAs, err = caPool(f, "server.tls.client_ca_file"); err != nil {
			if tr != nil {
				_ = tr.Shutdown(context.Background())
			}
			return nil, fmt.Errorf("serve: %w", err)
		}
		pc.RequireClientCert = opts.Config.Server.TLS.ClientAuth == "require"
	}
	if tr != nil {
		pc.Tracing = &proxy.Tracing{Tracer: tr.Tracer(), Propagator: tr.Propagator(), Trust: traceTrust(opts.Config)}
		s.log.Info("tracing on", "endpoint", tracingEndpoint(opts.Config, opts))
	}
	s.Gateway = proxy.New(ctx, pc)
	g, spec, err := s.build(opts.Config, nil)
	if err == nil {
		err = s.Gateway.Swap(spec)
	}
	if err != nil {
		g.closeUnshared(nil)
		s.keySets.retain(nil)
		if tr != nil {
			_ = tr.Shutdown(context.Background())
		}
		return nil, err
	}
	s.cur = g
	return s, nil
}

// listeners is the gateway's listener configuration.
func listeners(c *config.Config, o Options) proxy.Config {
	sv := c.Server
	pc := proxy.Config{
		Listen: sv.Listen, TLSCertFile: sv.TLS.CertFile, TLSKeyFile: sv.TLS.KeyFile,
		ReadHeaderTimeout: sv.ReadHeaderTimeout.D(), ReadTimeout: sv.ReadTimeout.D(),
		WriteTimeout: sv.WriteTimeout.D(), IdleTimeout: sv.IdleTimeout.D(), MaxHeaderBytes: sv.MaxHeaderBytes, H2C: sv.H2C,
		MaxConnections: sv.MaxConnections,
		ShutdownDelay:  sv.ShutdownDelay.D(), ShutdownGrace: sv.ShutdownGrace.D(),
		Logger: o.Logger, Now: o.Now, Sleep: o.Sleep,
	}
	if c.Admin.Listen != "off" {
		pc.AdminListen = c.Admin.Listen
	}
	return pc
}

// Reload replaces the configuration atomically: requests already running
// finish with the old one, every later request sees the new one whole. Key
// sets of unchanged issuers, an unchanged built-in issuer and session
// stores are kept. The listeners and server settings (addresses, timeouts,
// TLS files) are those of the first configuration; changing them needs a
// restart. If the new configuration cannot be built the old one stays, what
// the attempt opened is closed, and the error is returned.
func (s *Server) Reload(c *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur
	if old.cfg.Server.Listen != c.Server.Listen || old.cfg.Admin.Listen != c.Admin.Listen || old.cfg.Server.TLS != c.Server.TLS ||
		old.cfg.Server.H2C != c.Server.H2C {
		s.log.Warn("reload: listener addresses, TLS files and h2c change only on restart")
	}
	g, spec, err := s.build(c, old)
	if err == nil {
		// What the old configuration alone holds is closed once its
		// requests in flight have ended: a replaced issuer's rotation and
		// store, a session store the new one does not share, the login's
		// refreshes.
		err = s.Gateway.Swap(spec, func() { old.closeUnshared(g) })
	}
	if err != nil {
		g.closeUnshared(old)
		s.keySets.retain(old.remotes)
		s.CountReload("error")
		return fmt.Errorf("serve: reload: %w", err)
	}
	if g.builtin != nil {
		// A kept issuer serves the resources of the new routes.
		g.builtin.iss.SetResources(c.ProtectedResources())
	}
	s.cur = g
	s.keySets.retain(g.remotes)
	s.CountReload("ok")
	s.log.Info("configuration reloaded", "routes", len(c.Routes), "issuers", len(c.Issuers))
	return nil
}

// closeUnshared closes what g opened that keep (nil: nothing) does not
// share. g may be partly built.
func (g *generation) closeUnshared(keep *generation) {
	if g == nil {
		return
	}
	if keep == nil {
		keep = &generation{}
	}
	if g.cancel != nil {
		g.cancel()
	}
	if b := g.builtin; b != nil && b != keep.builtin {
		b.close()
	}
	if st := g.sessions; st != nil && st != keep.sessions {
		_ = st.Close()
	}
	if st := g.logoutsRedis; st != nil && st != keep.logoutsRedis {
		_ = st.Close()
	}
}

// closeStore closes an issuer store that holds connections (Redis).
func closeStore(st any) {
	if c, ok := st.(io.Closer); ok {
		_ = c.Close()
	}
}

// tracer is the tracer the gateway's parts trace with; nil when tracing is
// off.
func (s *Server) tracer() trace.Tracer {
	if s.tracing == nil {
		return nil
	}
	return s.tracing.Tracer()
}

// FlushTraces exports every span ended so far; without tracing it does
// nothing.
func (s *Server) FlushTraces(ctx context.Context) error {
	if s.tracing == nil {
		return nil
	}
	return s.tracing.ForceFlush(ctx)
}

// StopTracing exports what is left and stops tracing, at exit.
func (s *Server) StopTracing(ctx context.Context) error {
	if s.tracing == nil {
		return nil
	}
	return s.tracing.Shutdown(ctx)
}
