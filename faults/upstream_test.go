package faults_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testgw"
)

const bodySize = 1 << 20

// bigUpstream serves bodySize bytes at /cl with a Content-Length and at
// /chunked without one (chunked encoding), and a short body elsewhere.
func bigUpstream(t *testing.T) string {
	body := bytes.Repeat([]byte("0123456789abcdef"), bodySize/16)
	return testgw.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cl":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		case "/chunked":
		default:
			_, _ = w.Write([]byte("short"))
			return
		}
		w.WriteHeader(200)
		for b := body; len(b) > 0; b = b[16<<10:] {
			_, _ = w.Write(b[:16<<10])
			if f, ok := w.(http.Flusher); ok && r.URL.Path == "/chunked" {
				f.Flush()
			}
		}
	}))
}

// upstreamGateway serves a public route to the upstream behind l, with a
// 1s route timeout.
func upstreamGateway(t *testing.T, l *link) *testgw.Gateway {
	t.Helper()
	return testgw.Start(t, testgw.Options{Config: func(base string) string {
		return testgw.ServerSection("127.0.0.1:0", base, "") + fmt.Sprintf(`routes:
  - name: app
    path_prefix: /
    upstream: "http://%s"
    auth: public
    timeout: 1s
`, l.Addr)
	}})
}

// An upstream cut, reset or slowed mid-body never turns into a complete
// looking 200: the client sees a read error (the gateway cuts its
// connection too), or the whole body; an upstream silent before its
// headers answers 504 within the route timeout.
func TestUpstreamFaults(t *testing.T) {
	cases := []struct {
		name, typ string
		attrs     map[string]any
		// whole: the body arrives complete; headersLost: no headers come
		// at all (504).
		whole, headersLost bool
	}{
		{"latency 100ms", "latency", map[string]any{"latency": 100}, true, false},
		{"latency 2s", "latency", map[string]any{"latency": 2000}, false, true},
		{"latency 30s", "latency", map[string]any{"latency": 30000}, false, true},
		{"black hole", "timeout", map[string]any{"timeout": 0}, false, true},
		{"bandwidth 1KB/s", "bandwidth", map[string]any{"rate": 1}, true, false},
		{"slicer", "slicer", map[string]any{"average_size": 4096, "size_variation": 2048, "delay": 10}, true, false},
		{"cut after 100 KB", "limit_data", map[string]any{"bytes": 100 << 10}, false, false},
		{"reset after 20ms", "reset_peer", map[string]any{"timeout": 20}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := bigUpstream(t)
			l := newLink(t, "upstream", hostPort(t, up))
			g := upstreamGateway(t, l)
			l.toxic(t, tc.typ, "downstream", tc.attrs)
			paths := []string{"/cl", "/chunked"}
			if tc.headersLost || tc.typ == "bandwidth" {
				// A short answer: a megabyte held back by a latency toxic
				// takes minutes to drain when the test ends.
				paths = []string{"/short"}
			}
			for _, path := range paths {
				start := time.Now()
				res, err := http.Get(g.URL + path)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				n, rerr := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				took := time.Since(start)
				switch {
				case tc.headersLost:
					if res.StatusCode != http.StatusGatewayTimeout || took > 2*time.Second {
						t.Errorf("%s: %d after %v, want 504 within the route timeout", path, res.StatusCode, took)
					}
				case tc.whole && path == "/short":
					if res.StatusCode != 200 || rerr != nil || n != int64(len("short")) {
						t.Errorf("%s: %d, %d bytes, %v; want the short body", path, res.StatusCode, n, rerr)
					}
				case tc.whole:
					if res.StatusCode != 200 || rerr != nil || n != bodySize {
						t.Errorf("%s: %d, %d bytes, %v; want the whole body", path, res.StatusCode, n, rerr)
					}
				default:
					// Cut mid-body: whatever the status, never a clean end
					// short of the body.
					if rerr == nil && n != bodySize && res.StatusCode == 200 {
						t.Errorf("%s: 200 with %d of %d bytes and a clean end", path, n, bodySize)
					}
					if res.StatusCode == 200 && rerr == nil && n == bodySize {
						t.Errorf("%s: the whole body came through the cut", path)
					}
				}
			}
		})
	}
}
