package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves /metrics, /healthz (the process is up), /readyz
// (every issuer's keys are loaded) and, with an admin token, [RevokePath]
// and [ClientsPath]. It belongs on its own listener, never on the public
// one.
func (gw *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gw.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc(RevokePath, gw.revokeSessions)
	mux.HandleFunc(ClientsPath+"/{id}", gw.deleteClient)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if gw.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		g := gw.enter()
		waiting := g.notReady(r.Context())
		g.leave()
		if len(waiting) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "waiting for %s\n", strings.Join(waiting, ", "))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ListenAndServe listens on the configured proxy and admin addresses and
// serves until ctx is done, then shuts down gracefully. At once /readyz
// answers 503 and responses carry "Connection: close"; the listener keeps
// accepting and serving for server.shutdown_delay, so that load balancers
// that have not yet seen /readyz fail lose nothing; then it stops
// accepting, lets in-flight requests finish within server.shutdown_grace,
// closes the upgraded connections (WebSockets) still open when the grace
// ends, and returns once every handler has.
func (gw *Gateway) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", gw.base.Listen)
	if err != nil {
		return fmt.Errorf("proxy: listen %s: %w", gw.base.Listen, err)
	}
	var adminLn net.Listener
	if gw.base.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", gw.base.AdminListen); err != nil {
			ln.Close()
			return fmt.Errorf("proxy: listen admin %s: %w", gw.base.AdminListen, err)
		}
	}
	return gw.Serve(ctx, ln, adminLn)
}

// Serve is ListenAndServe on listeners the caller opened; adminLn may be
// nil. It closes both listeners.
func (gw *Gateway) Serve(ctx context.Context, ln, adminLn net.Listener) error {
	s := gw.base
	ln = limitConnections(ln, s.MaxConnections, gw.metrics.connsRefused)
	errLog := slog.NewLogLogger(gw.log.Handler(), slog.LevelWarn)
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          errLog,
		ConnContext:       gw.ConnContext,
	}
	tlsOn := s.TLSCertFile != ""
	if s.H2C && !tlsOn {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	if tlsOn {
		certs, err := newCertReloader(s.TLSCertFile, s.TLSKeyFile, s.Now, gw.log)
		if err != nil {
			ln.Close()
			if adminLn != nil {
				adminLn.Close()
			}
			return err
		}
		srv.TLSConfig = serverTLSConfig(certs)
		if s.ClientCAs != nil {
			srv.TLSConfig.ClientCAs = s.ClientCAs
			srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
			if s.RequireClientCert {
				srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
	}
	errc := make(chan error, 2)
	go func() {
		gw.log.Info("proxy listening", "addr", ln.Addr().String(), "tls", tlsOn, "h2c", s.H2C && !tlsOn)
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, "", "") // certificates from GetCertificate
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	var admin *http.Server
	if adminLn != nil {
		admin = &http.Server{
			Handler:           gw.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          errLog,
		}
		go func() {
			gw.log.Info("admin listening", "addr", adminLn.Addr().String())
			errc <- admin.Serve(adminLn)
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		gw.draining.Store(true)
		if d := s.ShutdownDelay; d > 0 {
			gw.log.Info("shutting down: not ready, still serving", "delay", d.String())
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case serveErr = <-errc:
				t.Stop()
			}
		}
	case serveErr = <-errc:
		gw.draining.Store(true)
	}
	gw.log.Info("shutting down: no new connections, draining", "grace", s.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	// Upgraded connections get what is left of the grace, then are closed.
	gw.upgrades.close(sctx)
	if admin != nil {
		err = errors.Join(err, admin.Shutdown(sctx))
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("proxy: serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("proxy: shutdown: %w", err)
	}
	return nil
}
