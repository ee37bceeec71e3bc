package testgw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/serve"
)

// Listen opens a listener on a free loopback port, closed when the test
// ends, and returns it with its base URL, http://127.0.0.1:port.
func Listen(t testing.TB) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln, "http://" + ln.Addr().String()
}

// Serve serves h on a free loopback port until the test ends and returns
// its base URL.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, base := Listen(t)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve %s: %v", base, err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return base
}

// Echoed is what the echoing upstream received.
type Echoed struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

// Echo is an upstream's handler: it reads the request body and answers
// with what it received, as the JSON of an [Echoed].
func Echo(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Echoed{Method: r.Method, URI: r.RequestURI, Host: r.Host, Headers: r.Header})
}

// Upstream serves [Echo] on a free loopback port until the test ends and
// returns its base URL.
func Upstream(t testing.TB) string {
	t.Helper()
	return Serve(t, http.HandlerFunc(Echo))
}

// Options says how Start runs a gateway.
type Options struct {
	// Config returns the configuration's YAML given the gateway's base URL.
	Config func(base string) string
	// Env holds the values of the configuration's ${NAME} references; a
	// name it lacks is unset.
	Env map[string]string
	// Listener is where the gateway serves; nil opens a free loopback port.
	Listener net.Listener
	// Admin serves the admin endpoints on a second loopback port.
	Admin bool
	// Now, Sleep, Logger and HTTPClient are passed to serve.New.
	Now        func() time.Time
	Sleep      func(context.Context, time.Duration)
	Logger     *slog.Logger
	HTTPClient *http.Client
	// Wrap, when set, puts a handler in front of the gateway, served by a
	// plain http.Server instead of the gateway's own; Admin is ignored then.
	Wrap func(http.Handler) http.Handler
}

// Gateway is a gateway serving on loopback. It stops when the test ends,
// which fails the test if serving returned an error.
type Gateway struct {
	*serve.Server
	URL      string // base URL, http://127.0.0.1:port
	Addr     string // host:port
	AdminURL string // base URL of the admin endpoints, "" unless Options.Admin

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start parses the configuration, builds the gateway and serves it until
// the test ends.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	ln := o.Listener
	if ln == nil {
		ln, _ = Listen(t)
	}
	g := &Gateway{URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), done: make(chan struct{})}
	cfg, err := config.Parse("gateway.yaml", []byte(o.Config(g.URL)), func(name string) (string, bool) {
		v, ok := o.Env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.Server, err = serve.New(ctx, serve.Options{Config: cfg, Logger: o.Logger, Now: o.Now, Sleep: o.Sleep, HTTPClient: o.HTTPClient})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var admin net.Listener
	if o.Admin && o.Wrap == nil {
		admin, g.AdminURL = Listen(t)
	}
	go func() {
		defer close(g.done)
		g.err = g.serve(ctx, ln, admin, o.Wrap)
	}()
	t.Cleanup(func() {
		g.Cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return g
}

func (g *Gateway) serve(ctx context.Context, ln, admin net.Listener, wrap func(http.Handler) http.Handler) error {
	if wrap == nil {
		return g.Server.Serve(ctx, ln, admin)
	}
	srv := &http.Server{Handler: wrap(g.Server), ReadHeaderTimeout: 10 * time.Second}
	defer context.AfterFunc(ctx, func() { _ = srv.Close() })()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Cancel ends the gateway's context: it stops taking connections and lets
// the requests in flight finish.
func (g *Gateway) Cancel() { g.cancel() }

// Wait waits until the gateway has stopped serving and returns what
// serving returned.
func (g *Gateway) Wait() error {
	<-g.done
	return g.err
}
