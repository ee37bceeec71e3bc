package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// h1Upstream is a real upstream that counts the connections it accepted.
type h1Upstream struct {
	*httptest.Server
	conns atomic.Int32
}

func newH1Upstream(t *testing.T, h http.HandlerFunc) *h1Upstream {
	t.Helper()
	u := &h1Upstream{}
	u.Server = httptest.NewUnstartedServer(h)
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func newTestH1(t *testing.T, up *httptest.Server, timeout time.Duration) *h1Transport {
	t.Helper()
	u, _ := url.Parse(up.URL)
	h := newH1Transport(newTransport(timeout), u.Host, timeout)
	t.Cleanup(h.CloseIdleConnections)
	return h
}

func get(t *testing.T, rt http.RoundTripper, method, target string, hdr http.Header) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return res, "", err
	}
	return res, string(b), nil
}

func TestH1PoolsOneConnection(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.(http.Flusher).Flush()
			io.WriteString(w, "chunk")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "hello "+r.Method)
		}
	})
	h := newTestH1(t, up.Server, 0)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/", "hello GET"}, {"GET", "/chunked", "chunk"}, {"HEAD", "/", ""},
		{"GET", "/empty", ""}, {"GET", "/not-modified", ""}, {"DELETE", "/", "hello DELETE"},
		{"POST", "/", "hello POST"}, {"GET", "/", "hello GET"},
	} {
		res, body, err := get(t, h, tc.method, up.URL+tc.path, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if body != tc.want {
			t.Fatalf("%s %s: body %q, want %q (status %d)", tc.method, tc.path, body, tc.want, res.StatusCode)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections for sequential requests, want 1", n)
	}
}

func TestH1ForwardsHeadersAsIs(t *testing.T) {
	var got http.Header
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("X-Up", "1")
		io.WriteString(w, r.Host+" "+r.URL.RequestURI())
	})
	h := newTestH1(t, up.Server, 0)
	res, body, err := get(t, h, "GET", up.URL+"/a%2Fb/c?q=1&r=%20", http.Header{"X-Id": {"alice"}, "User-Agent": {""}})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(up.URL, "http://") + " /a%2Fb/c?q=1&r=%20"; body != want {
		t.Fatalf("upstream saw %q, want %q", body, want)
	}
	if res.Header.Get("X-Up") != "1" {
		t.Fatalf("response headers lost: %v", res.Header)
	}
	if got.Get("X-Id") != "alice" || got.Get("Accept-Encoding") != "" || got.Get("User-Agent") != "" {
		t.Fatalf("upstream got headers %v: want X-Id, no Accept-Encoding and no User-Agent added", got)
	}
}

func TestH1RefusesHeadersThatBreakFraming(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {})
	h := newTestH1(t, up.Server, 0)
	for _, hdr := range []http.Header{
		{"X-Id": {"alice\r\nX-Admin: yes"}},
		{"X-Id": {"a\nb"}},
		{"X Id": {"a"}},
		{"X-Id\r\nX-Admin": {"yes"}},
	} {
		if _, _, err := get(t, h, "GET", up.URL, hdr); err == nil {
			t.Fatalf("headers %q were sent", hdr)
		}
	}
	if n := up.conns.Load(); n != 0 {
		t.Fatalf("a refused request opened %d connections", n)
	}
}

// TestH1RetriesAStalePooledConnection closes every idle connection on the
// upstream's side: a replayable request is sent again on a fresh one; a
// request that may not be replayed is never sent on a dead connection.
func TestH1RetriesAStalePooledConnection(t *testing.T) {
	var served atomic.Int32
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	})
	h := newTestH1(t, up.Server, 0)
	for i, method := range []string{"GET", "GET", "POST", "PATCH", "HEAD"} {
		if i > 0 {
			up.CloseClientConnections() // the pooled connection dies while idle
			waitIdleClosed(t, h)
		}
		res, _, err := get(t, h, method, up.URL, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s after the upstream closed the idle connection: %v (conns %d)", method, err, up.conns.Load())
		}
	}
	if n := served.Load(); n != 5 {
		t.Fatalf("upstream served %d requests, want 5 (each exactly once)", n)
	}
}

// waitIdleClosed waits until the pooled connection has seen the upstream's
// FIN, so the next request surely finds a dead connection.
func waitIdleClosed(t *testing.T, h *h1Transport) {
	t.Helper()
	h.mu.Lock()
	idle := append([]*h1Conn(nil), h.idle...)
	h.mu.Unlock()
	for _, c := range idle {
		// A blocking read returns EOF once the FIN has arrived; the
		// pooled connection is then dead, which is what the test needs.
		one := make([]byte, 1)
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.conn.Read(one); err == nil {
			t.Fatal("idle connection received data")
		}
		c.conn.SetReadDeadline(time.Time{})
	}
}

func TestH1DoesNotPoolAfterConnectionClose(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	})
	h := newTestH1(t, up.Server, 0)
	for _, p := range []string{"/close", "/close", "/", "/"} {
		if _, _, err := get(t, h, "GET", up.URL+p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := up.conns.Load(); n != 3 {
		t.Fatalf("upstream saw %d connections, want 3 (two closed by it, one reused)", n)
	}
}

// rawUpstream answers each connection with fn, for responses net/http would
// not write.
func rawUpstream(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

func readHead(br *bufio.Reader) error {
	tp := textproto.NewReader(br)
	if _, err := tp.ReadLine(); err != nil {
		return err
	}
	_, err := tp.ReadMIMEHeader()
	return err
}

func rawTransport(t *testing.T, addr string, timeout time.Duration) *h1Transport {
	t.Helper()
	h := newH1Transport(newTransport(timeout), addr, timeout)
	t.Cleanup(h.CloseIdleConnections)
	return h
}

func TestH1CloseDelimitedBody(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if readHead(br) == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nall of it")
		}
	})
	h := rawTransport(t, addr, 0)
	for range 2 {
		_, body, err := get(t, h, "GET", "http://"+addr+"/", nil)
		if err != nil || body != "all of it" {
			t.Fatalf("body %q, err %v", body, err)
		}
	}
	if n := len(h.idle); n != 0 {
		t.Fatalf("%d close-delimited connections pooled", n)
	}
}

func TestH1Forwards1xxAndSkipsThem(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for readHead(br) == nil {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	h := rawTransport(t, addr, 0)
	var hints []string
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprint(code, " ", hdr.Get("Link")))
			return nil
		},
	}))
	res, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "ok" || len(hints) != 1 || hints[0] != "103 </a.css>; rel=preload" {
		t.Fatalf("status %d body %q hints %q", res.StatusCode, b, hints)
	}
}

func TestH1RefusesEndless1xxAndUnaskedUpgrade(t *testing.T) {
	for name, answer := range map[string]string{
		"1xx":     strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 10) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"101":     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
		"garbage": "SSH-2.0-OpenSSH\r\n\r\n",
		"headers": "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 2000) + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
				if readHead(br) == nil {
					io.WriteString(c, answer)
				}
			})
			h := rawTransport(t, addr, 0)
			if res, _, err := get(t, h, "GET", "http://"+addr+"/", nil); err == nil {
				t.Fatalf("accepted: status %d", res.StatusCode)
			}
		})
	}
}

func TestH1ResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		readHead(br)
		<-release
	})
	h := rawTransport(t, addr, 50*time.Millisecond)
	_, _, err := get(t, h, "GET", "http://"+addr+"/", nil)
	if !isTimeout(err) {
		t.Fatalf("err %v, want a timeout", err)
	}
}

func TestH1ClientGoneAbortsAndDropsConnection(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		readHead(br)
		close(started)
		<-release
	})
	h := rawTransport(t, addr, 0)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := h.RoundTrip(req)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if n := len(h.idle); n != 0 {
		t.Fatalf("aborted connection pooled")
	}
}

// TestH1ClosingAnUnreadBodyDoesNotDrainIt: a client that leaves mid-way
// through an endless response must not make the gateway read the rest.
func TestH1ClosingAnUnreadBodyDoesNotDrainIt(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	h := newTestH1(t, up.Server, 0)
	req, _ := http.NewRequest("GET", up.URL, nil)
	res, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { res.Body.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the body of an endless response did not return")
	}
	if n := len(h.idle); n != 0 {
		t.Fatal("half-read connection pooled")
	}
}

func TestH1ChunkedTrailers(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data")
		w.Header().Set("X-Sum", "42")
	})
	h := newTestH1(t, up.Server, 0)
	req, _ := http.NewRequest("GET", up.URL, nil)
	res, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "data" || res.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("body %q trailer %v", b, res.Trailer)
	}
	if len(h.idle) != 1 {
		t.Fatal("connection not pooled after a complete chunked response")
	}
}

func TestH1FallsBackForBodiesAndUpgrades(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	})
	h := newTestH1(t, up.Server, 0)
	req, _ := http.NewRequest("POST", up.URL, strings.NewReader("payload"))
	if !h.fast(mustReq(t, "GET", up.URL)) || h.fast(req) {
		t.Fatal("fast path chosen wrongly")
	}
	res, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "POST payload" {
		t.Fatalf("body %q", b)
	}
	up2 := mustReq(t, "GET", up.URL)
	up2.Header.Set("Upgrade", "websocket")
	other := mustReq(t, "GET", "http://example.invalid/")
	closing := mustReq(t, "GET", up.URL)
	closing.Close = true
	for _, r := range []*http.Request{up2, other, closing} {
		if h.fast(r) {
			t.Fatalf("fast path for %v", r)
		}
	}
}

func mustReq(t *testing.T, method, target string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestH1SweepsIdleConnections(t *testing.T) {
	up := newH1Upstream(t, func(w http.ResponseWriter, r *http.Request) {})
	h := newTestH1(t, up.Server, 0)
	now := time.Unix(1_700_000_000, 0)
	h.now = func() time.Time { return now }
	var wg sync.WaitGroup
	for range 3 { // three connections at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := get(t, h, "GET", up.URL, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	h.mu.Lock()
	n := len(h.idle)
	h.mu.Unlock()
	if n == 0 {
		t.Fatal("nothing pooled")
	}
	now = now.Add(h.idleTimeout + time.Second)
	h.sweep()
	if len(h.idle) != 0 || h.sweeper != nil {
		t.Fatalf("%d connections left after the idle timeout", len(h.idle))
	}
	// And a connection idle too long is never reused.
	get(t, h, "GET", up.URL, nil)
	before := up.conns.Load()
	now = now.Add(h.idleTimeout + time.Second)
	get(t, h, "GET", up.URL, nil)
	if up.conns.Load() != before+1 {
		t.Fatal("a connection idle past the timeout was reused")
	}
}
