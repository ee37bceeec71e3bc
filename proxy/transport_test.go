package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// special is an upstream with handlers for streaming, upgrades, slowness.
type special struct {
	url     string
	proceed chan struct{} // /sse waits on it between events; /slow waits on it
	slowIn  chan struct{} // /slow sends on it when a request arrives (if anyone listens)
}

func newSpecial(t *testing.T) *special {
	t.Helper()
	s := &special{proceed: make(chan struct{}), slowIn: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/sse/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-s.proceed
		fmt.Fprint(w, "data: two\n\n")
	})
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.slowIn <- struct{}{}:
		default:
		}
		select {
		case <-s.proceed:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "late")
	})
	mux.HandleFunc("/up/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get("X-Auth-Request-User") != "alice" {
			http.Error(w, "bad upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo: "+line)
		brw.Flush()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.url = "http://" + ln.Addr().String()
	return s
}

func specialRoutes(s *special) string {
	return fmt.Sprintf(`
  - name: sse
    path_prefix: /sse
    upstream: %[1]q
    forward_headers: {X-Auth-Request-User: sub}
  - name: slow
    path_prefix: /slow
    upstream: %[1]q
    auth: public
    timeout: 200ms
  - name: up
    path_prefix: /up
    upstream: %[1]q
    forward_headers: {X-Auth-Request-User: sub}
  - name: dead
    path_prefix: /dead
    upstream: http://127.0.0.1:1
    auth: public
`, s.url)
}

func TestServerSentEventsStream(t *testing.T) {
	s := newSpecial(t)
	e := newEnv(t, specialRoutes(s))
	res := e.do("GET", "/sse/feed", e.mint("ES256", e.claims("alice"), nil), nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	r := bufio.NewReader(res.Body)
	// The first event arrives while the upstream is still holding the
	// response open: the gateway does not buffer.
	line, err := r.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	close(s.proceed)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "data: two") {
		t.Errorf("second event missing: %q", rest)
	}
}

func TestWebSocketStyleUpgrade(t *testing.T) {
	s := newSpecial(t)
	e := newEnv(t, specialRoutes(s))
	tok := e.mint("ES256", e.claims("alice"), nil)

	// Without a token the upgrade is refused like any request.
	res := e.rawRequest("GET /up/x HTTP/1.1", "Host: gw.test", "Connection: Upgrade", "Upgrade: echo")
	if res.StatusCode != 401 {
		t.Fatalf("upgrade without token: %d", res.StatusCode)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /up/x HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\nAuthorization: Bearer %s\r\n\r\n", tok)
	br := bufio.NewReader(conn)
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d", res.StatusCode)
	}
	fmt.Fprint(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

func TestUpstreamFailures(t *testing.T) {
	s := newSpecial(t)
	e := newEnv(t, specialRoutes(s))
	res := e.do("GET", "/dead/x", "", nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || string(body) != "bad gateway\n" {
		t.Errorf("dead upstream: %d %q", res.StatusCode, body)
	}
	res = e.do("GET", "/slow/x", "", nil)
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusGatewayTimeout || string(body) != "gateway timeout\n" {
		t.Errorf("slow upstream: %d %q", res.StatusCode, body)
	}
	close(s.proceed)
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, "")
	post := func(n int, chunked bool) int {
		var body io.Reader = strings.NewReader(strings.Repeat("x", n))
		if chunked {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
		req, _ := http.NewRequest("POST", e.url+"/small/upload", body)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		n       int
		chunked bool
		want    int
	}{
		{1000, false, 200}, {1000, true, 200}, {2048, false, 413}, {4096, true, 413},
	} {
		if got := post(c.n, c.chunked); got != c.want {
			t.Errorf("POST %d bytes (chunked %v): %d, want %d", c.n, c.chunked, got, c.want)
		}
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	s := newSpecial(t)
	e := newEnv(t, strings.Replace(specialRoutes(s), "timeout: 200ms", "timeout: 30s", 1))
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Get(e.url + "/slow/x")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{status: res.StatusCode, body: string(b)}
	}()
	// Wait until the request is in flight (the upstream has it), then stop.
	<-s.slowIn
	e.cancel()
	close(s.proceed)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "late" {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if err := <-e.done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	e.done <- nil // for the env's cleanup
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(e.url, "http://"), time.Second); err == nil {
		t.Error("gateway still accepting after shutdown")
	}
}

// waitMetric polls the admin endpoint until the metrics contain want; the
// request path gives no other signal that a request has reached a point.
func waitMetric(t *testing.T, e *env, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if _, body := e.getAdmin("/metrics"); strings.Contains(body, want) {
			return
		}
	}
	t.Fatalf("metrics never showed %s", want)
}
