package proxy_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// BenchmarkHandlerChain runs the whole gateway handler (route match, path
// cleaning, token extraction and verification, header rewriting,
// ReverseProxy to a loopback upstream) beside a plain httputil.ReverseProxy
// with an equally tuned transport, in the same run. Compare ns/op of each
// sub-benchmark with "plain":
//
//	go test -run=^$ -bench=HandlerChain -benchmem ./proxy/
func BenchmarkHandlerChain(b *testing.B) {
	e := newEnv(b, `  - name: norules
    path_prefix: /norules
    upstream: {{upstream}}
  - name: rules
    path_prefix: /rules
    upstream: {{upstream}}
    rules:
      - deny: 'request.method == "DELETE"'
      - allow: '"admin" in scopes'
      - allow: 'request.path.startsWith("/rules/") && claims.sub != ""'
`)
	target, _ := url.Parse(e.up)
	plain := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	es := e.mint("ES256", e.claims("alice"), nil)
	rs := e.mint("RS256", e.claims("alice"), nil)
	e.warm()
	cases := []struct {
		name    string
		handler http.Handler
		path    string
		token   string
	}{
		{"plain", plain, "/orders/7", ""},
		{"public", e.gw, "/public/orders/7", ""},
		{"RS256", e.gw, "/orders/7", rs},
		{"ES256", e.gw, "/orders/7", es},
		// Three rules, the third deciding, on the cached token, and the
		// same route without them.
		{"RS256-norules", e.gw, "/norules/7", rs},
		{"RS256-rules", e.gw, "/rules/7", rs},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("GET", "http://gw.test"+c.path, nil)
					if c.token != "" {
						req.Header.Set("Authorization", "Bearer "+c.token)
					}
					rec := httptest.NewRecorder()
					c.handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
