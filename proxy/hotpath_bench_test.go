package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/portcullis-dev/portcullis/authn"
)

// BenchmarkRouteMatch looks paths up in a table of 50 routes, some bound
// to a host, as a gateway in front of many services would have.
func BenchmarkRouteMatch(b *testing.B) {
	var rs []*route
	for i := range 50 {
		r := &route{name: fmt.Sprint("r", i), prefix: fmt.Sprintf("/svc%d/api/v%d", i, i%3)}
		if i%5 == 0 {
			r.host = "internal.example.com"
		}
		rs = append(rs, r)
	}
	rs = append(rs, &route{name: "root", prefix: "/"})
	t := newRouteTable(rs)
	paths := []string{"/svc7/api/v1/orders/42", "/svc49/api/v1", "/svc0/api/v0/x", "/static/app.js", "/svc25/api/v1/deep/er/path"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if t.match("app.example.com", paths[i%len(paths)]) == nil {
			b.Fatal("no route")
		}
		i++
	}
}

// BenchmarkHeaderRewrite strips spoofable headers and portcullis' cookies
// from a browser's request and sets three identity headers: the header work
// of rewrite, on a copy of the inbound headers ("copy" is that copy alone).
func BenchmarkHeaderRewrite(b *testing.B) {
	in := http.Header{
		"Accept":                    {"text/html,application/xhtml+xml"},
		"Accept-Encoding":           {"gzip, deflate, br"},
		"Accept-Language":           {"en-GB,en;q=0.9"},
		"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
		"Cookie":                    {"theme=dark; _portcullis=AAAA; _portcullis_1=BBBB; lang=en"},
		"X-Auth-Request-User":       {"mallory"},
		"X_Forwarded_User":          {"mallory"},
		"Referer":                   {"https://app.example.com/"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Upgrade-Insecure-Requests": {"1"},
	}
	protected := newHeaderSet(alwaysProtected, []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups"})
	ids := identityHeaders(map[string]string{"X-Auth-Request-User": "sub", "X-Auth-Request-Email": "email", "X-Auth-Request-Groups": "groups"})
	id := &authn.Identity{Subject: "alice", Claims: map[string]any{"sub": "alice", "email": "alice@example.com", "groups": []any{"admin", "dev"}}}
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = in.Clone()
		}
	})
	b.Run("rewrite", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h := in.Clone()
			protected.strip(h)
			removeCookiesWithPrefix(h, "_portcullis")
			setIdentity(h, ids, id)
			if h.Get("X-Auth-Request-User") != "alice" || h.Get("X_Forwarded_User") != "" {
				b.Fatal("rewrite wrong")
			}
		}
	})
}

// BenchmarkTransport sends body-less requests to a loopback upstream
// through h1Transport and through the http.Transport it falls back to.
func BenchmarkTransport(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"http.Transport", newTransport(0)},
		{"h1Transport", newH1Transport(newTransport(0), u.Host, 0)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 512)
			for b.Loop() {
				req, _ := http.NewRequest("GET", up.URL+"/x", nil)
				res, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := res.Body.Read(buf); err != nil {
						break
					}
				}
				res.Body.Close()
			}
		})
	}
}
