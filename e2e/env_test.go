package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/proxy"
)

// gatewayConfig is a gateway with the built-in issuer and browser login on
// plain http loopback, so the session cookie is not Secure.
// %[1]s public URL, %[2]s upstream, %[3]s password hash.
const gatewayConfig = `
server: {listen: "127.0.0.1:0", public_url: "%[1]s"}
admin: {listen: off}
log: {level: debug}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [demo-api]
    algorithms: [ES256]
issuer:
  url: "%[1]s/idp"
  clients:
    - id: portcullis
      name: "Orders"
      secret: gateway-secret-0123456789
      first_party: true
      redirect_uris: ["%[1]s/oauth2/callback"]
      post_logout_redirect_uris: ["%[1]s/"]
      scopes: [openid, profile, email, offline_access, read]
      audiences: [demo-api]
  users:
    - username: alice
      password_hash: %[3]q
      claims: {email: alice@example.com, groups: [admin]}
  scopes: {read: "Read your data"}
login:
  issuer: "%[1]s/idp"
  client_id: portcullis
  client_secret: gateway-secret-0123456789
  scopes: [openid, profile, email, offline_access, read]
  cookie: {secret: "cookie-secret-0123456789-0123456789-abc", secure: false}
routes:
  - name: app
    path_prefix: /
    upstream: %[2]q
    require_scopes: [read]
    forward_headers: {X-Auth-Request-User: sub}
`

const (
	username = "alice"
	password = "alice-password"
	// sessionCookie is the session cookie's default name; without Secure
	// it has no __Host- prefix.
	sessionCookie = "_portcullis"
)

var (
	hashOnce     sync.Once
	passwordHash string
)

// clock is the gateway's settable clock. It starts at the real time, so the
// cookies the browser keeps expire when the gateway expects them to.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// gateway is a running gateway with its upstream, in this process.
type gateway struct {
	base  string // public URL, http://127.0.0.1:PORT
	clock *clock
	log   *requestLog
}

// requestLog records the method and path of every request the gateway
// receives from the browser. The code exchange and the refresh never appear:
// they go to the built-in issuer inside the process.
type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

type request struct {
	line         string // "GET /idp/authorize"
	wroteSession bool   // the response set the session cookie
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		wrote := false
		for _, v := range w.Header().Values("Set-Cookie") {
			c, err := http.ParseSetCookie(v)
			wrote = wrote || err == nil && c.Name == sessionCookie && c.Value != "" && c.MaxAge > 0
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, request{r.Method + " " + r.URL.Path, wrote})
		l.mu.Unlock()
	})
}

// mark returns a position in the log for since.
func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// since returns the requests recorded after mark.
func (l *requestLog) since(mark int) []string {
	return l.filter(mark, func(request) bool { return true })
}

// sessionWrites returns the requests after mark whose response set the
// session cookie.
func (l *requestLog) sessionWrites(mark int) []string {
	return l.filter(mark, func(r request) bool { return r.wroteSession })
}

func (l *requestLog) filter(mark int, keep func(request) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs[mark:] {
		if keep(r) {
			out = append(out, r.line)
		}
	}
	return out
}

// loginPages counts the login pages shown after mark.
func (l *requestLog) loginPages(mark int) int {
	n := 0
	for _, r := range l.since(mark) {
		if r == "GET /idp/authorize" {
			n++
		}
	}
	return n
}

// startGateway starts the upstream and the gateway on loopback ports; both
// stop when the test ends.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		passwordHash = string(h)
	})
	up := serve(t, http.HandlerFunc(userPage))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{base: "http://" + ln.Addr().String(), clock: &clock{}, log: &requestLog{}}
	g.clock.ns.Store(time.Now().UnixNano())
	yml := fmt.Sprintf(gatewayConfig, g.base, up, passwordHash)
	cfg, err := config.Parse("e2e.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gw, err := proxy.New(ctx, proxy.Config{Config: cfg, Logger: log, Now: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.log.wrap(gw), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return g
}

// serve serves h on a fresh loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("upstream: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Orders</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}</style>
</head><body>
<h1>Hello, <span id="user">{{.User}}</span></h1>
<p>Asked for: <code id="uri">{{.URI}}</code></p>
<p><a href="/oauth2/sign_out">Sign out</a></p>
</body></html>`))

// userPage is the upstream application: it has no authentication of its own
// and shows the identity the gateway forwarded.
func userPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = page.Execute(w, map[string]string{
		"User": r.Header.Get("X-Auth-Request-User"),
		"URI":  r.RequestURI,
	})
}

// testWriter sends the gateway's log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
