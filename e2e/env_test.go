package e2e_test

import (
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// gatewayConfig is a gateway with the built-in issuer and browser login on
// plain http loopback, so the session cookie is not Secure.
// %[1]s public URL, %[2]s upstream, %[3]s password hash.
var gatewayConfig = testgw.Login{LogLevel: "debug", ClientName: "Orders"}.YAML()

const (
	username = testgw.Username
	password = testgw.Password
	// sessionCookie is the session cookie's default name; without Secure
	// it has no __Host- prefix.
	sessionCookie = testgw.SessionCookie
)

// gateway is a running gateway with its upstream, in this process.
type gateway struct {
	base  string // public URL, http://127.0.0.1:PORT
	clock *testclock.Clock
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
	up := testgw.Serve(t, http.HandlerFunc(userPage))
	// The gateway's clock starts at the real time, so the cookies the
	// browser keeps expire when the gateway expects them to.
	g := &gateway{clock: testclock.New(time.Now()), log: &requestLog{}}
	s := testgw.Start(t, testgw.Options{Now: g.clock.Now, Logger: testgw.Logger(t, slog.LevelInfo, nil), Wrap: g.log.wrap,
		Config: func(base string) string { return fmt.Sprintf(gatewayConfig, base, up, testgw.AliceHash()) }})
	g.base = s.URL
	return g
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
