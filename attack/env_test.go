package attack_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/serve"
)

// newClock returns a settable test clock at at.
func newClock(at time.Time) *testclock.Clock { return testclock.New(at) }

// recorder is a real HTTP upstream that answers with what it received and
// remembers every request URI, so a test can prove what never arrived.
type recorder struct {
	URL  string
	mu   sync.Mutex
	uris []string
}

func newRecorder(t testing.TB) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.URL = testgw.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.uris = append(rec.uris, r.Method+" "+r.RequestURI)
		rec.mu.Unlock()
		testgw.Echo(w, r)
	}))
	return rec
}

// saw reports whether any request URI the upstream received contains s.
func (r *recorder) saw(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.uris {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}

// count is the number of requests the upstream received.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.uris)
}

// trap is an attacker's server that counts every request it gets: a
// gateway that follows jku, x5u or a URL kid would show up here.
type trap struct {
	URL  string
	hits atomic.Int64
}

func newTrap(t testing.TB) *trap {
	t.Helper()
	tr := &trap{}
	tr.URL = testgw.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tr.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	return tr
}

// gateway is a running portcullis on a loopback port.
type gateway struct {
	url  string // base URL, http://127.0.0.1:port
	addr string // host:port
	gw   *serve.Server
	logs *testgw.LogBuffer // everything it logged, at debug level
	held atomic.Int64      // answers held back (recorded, not waited for)
}

// startGateway parses the configuration yml(base) and serves it until the
// test ends; base is the gateway's own URL, for public_url and issuer.url.
func startGateway(t testing.TB, clk *testclock.Clock, yml func(base string) string) *gateway {
	t.Helper()
	g := &gateway{logs: &testgw.LogBuffer{}}
	s := testgw.Start(t, testgw.Options{Config: yml, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sleep:  func(context.Context, time.Duration) { g.held.Add(1) }})
	g.url, g.addr, g.gw = s.URL, s.Addr, s.Server
	return g
}

// send makes one request with Go's client (no redirects followed).
func send(t testing.TB, method, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// bearer is a header with an Authorization: Bearer token.
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// raw sends a hand-written HTTP/1.1 request (lines joined with CRLF, then a
// blank line), so header spellings Go's client would canonicalise reach the
// gateway as written, and reads one response.
func raw(t testing.TB, addr string, lines ...string) (*http.Response, string) {
	t.Helper()
	return rawBytes(t, addr, strings.Join(lines, "\r\n")+"\r\n\r\n")
}

// rawBytes writes req on a fresh connection and reads one response.
func rawBytes(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// exchange writes req on a fresh connection and reads every response the
// gateway sends until it closes the connection, returning their statuses;
// a connection closed without an answer gives none.
func exchange(t testing.TB, addr, req string) []int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return nil
	}
	br := bufio.NewReader(conn)
	var statuses []int
	for {
		// A connection kept open after a keep-alive answer is given a
		// bounded time to show a second answer; the smuggled requests
		// carry "Connection: close", so a gateway that reads them closes
		// right after answering, and one that does not closes before.
		if len(statuses) > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
		if res.Close {
			return statuses
		}
	}
}

// decodeEcho decodes the upstream's echo from a 200 response body.
func decodeEcho(t testing.TB, res *http.Response, body string) testgw.Echoed {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; WWW-Authenticate %q; body %.200q", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}
	var got testgw.Echoed
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("upstream echo: %v: %.200q", err, body)
	}
	return got
}

// leaks are what a response body must never show: Go error text, panics,
// stack traces and internal package paths.
var leaks = regexp.MustCompile(`goroutine \d|panic|runtime\.|\.go:\d|github\.com/|golang-jwt|json: |illegal base64|crypto/|x509:|unexpected EOF|<nil>`)

// expectDenied checks a token rejection: exact status, the RFC 6750 error
// code (none for a request without a token), no body or header echoing the
// token, and no internal error text.
func expectDenied(t testing.TB, res *http.Response, body string, status int, code, token string) string {
	t.Helper()
	wa := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d (WWW-Authenticate %q, body %.200q)", res.StatusCode, status, wa, body)
	}
	if status == 401 || status == 403 || code != "" {
		if !strings.HasPrefix(wa, `Bearer realm="`) {
			t.Fatalf("WWW-Authenticate %q, want a Bearer challenge", wa)
		}
		if code == "" && strings.Contains(wa, "error=") {
			t.Fatalf("WWW-Authenticate %q has an error code for a request without a token", wa)
		}
		if code != "" && !strings.Contains(wa, `error="`+code+`"`) {
			t.Fatalf("WWW-Authenticate %q, want error=%q", wa, code)
		}
	}
	noLeak(t, res, body, token)
	return wa
}

// noLeak checks that neither the body nor any header echoes token (when it
// is long enough to recognise) or carries Go error text.
func noLeak(t testing.TB, res *http.Response, body, token string) {
	t.Helper()
	if m := leaks.FindString(body); m != "" {
		t.Errorf("body shows internal detail %q: %.300q", m, body)
	}
	if len(token) >= 16 {
		for _, part := range strings.Split(token, ".") {
			if len(part) < 16 {
				continue
			}
			if strings.Contains(body, part) {
				t.Errorf("body echoes the token")
			}
			for name, vs := range res.Header {
				for _, v := range vs {
					if strings.Contains(v, part) {
						t.Errorf("header %s echoes the token", name)
					}
				}
			}
		}
	}
}

// rawEcho sends a hand-written request and decodes the upstream's echo.
func rawEcho(t testing.TB, addr string, lines ...string) testgw.Echoed {
	t.Helper()
	res, body := raw(t, addr, lines...)
	return decodeEcho(t, res, body)
}
