package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// hostRoutes protect all of admin.example and vip.tenant.example, make the
// other one-label names under tenant.example public, and add a public
// host-less /open beside the env's routes (app at / needs a token).
const hostRoutes = `  - name: adminhost
    host: admin.example
    path_prefix: /
    upstream: {{upstream}}
    forward_headers: {X-Auth-Request-User: sub}
  - name: open
    path_prefix: /open
    upstream: {{upstream}}
    auth: public
  - name: tenants
    host: "*.tenant.example"
    path_prefix: /
    upstream: {{upstream}}
    auth: public
  - name: viptenant
    host: VIP.tenant.example
    path_prefix: /
    upstream: {{upstream}}
`

// rawRequest sends one request as written (request line and headers) on a
// new connection and returns the response status and body.
func rawRequest(t *testing.T, addr string, lines ...string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, strings.Join(lines, "\r\n")+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestRoutingChoosesTheHostFirst(t *testing.T) {
	e := newEnv(t, hostRoutes)
	addr := strings.TrimPrefix(e.url, "http://")
	tok := e.mint("ES256", e.claims("alice"), nil)

	cases := []struct {
		host, path string
		want       int
	}{
		// The host's own route at / wins over the longer public prefix.
		{"admin.example", "/open/x", 401},
		{"ADMIN.EXAMPLE", "/open/x", 401},
		{"admin.example:80", "/open/x", 401},
		{"admin.example.", "/open/x", 401},
		{"Admin.Example.:8080", "/open", 401},
		// A host no route names falls to the host-less routes.
		{"localhost", "/open/x", 200},
		{"other.example", "/open/x", 200},
		{"other.example", "/x", 401}, // app at /
		// A wildcard stands for one label; an exact host beats it.
		{"a.tenant.example", "/x", 200},
		{"a.tenant.example", "/open/x", 200},
		{"vip.tenant.example", "/open/x", 401},
		{"a.b.tenant.example", "/x", 401},      // two labels: host-less app
		{"a.b.tenant.example", "/open/x", 200}, // host-less open
		{"tenant.example", "/x", 401},          // no label: host-less app
	}
	for _, c := range cases {
		code, body := rawRequest(t, addr, "GET "+c.path+" HTTP/1.1", "Host: "+c.host)
		if code != c.want {
			t.Errorf("Host %s, GET %s: %d, want %d (%q)", c.host, c.path, code, c.want, body)
		}
	}

	// With a token, admin.example's route is the one that answers.
	req, _ := http.NewRequest("GET", e.url+"/open/x", nil)
	req.Host = "admin.example"
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := e.echo(res)
	res.Body.Close()
	if u := got.Headers["X-Auth-Request-User"]; len(u) != 1 || u[0] != "alice" {
		t.Errorf("admin.example/open/x: identity %v, want alice from route adminhost", got.Headers)
	}

	// An absolute-form target routes by its own host, whatever Host says
	// (RFC 9112 §3.2.2).
	if code, body := rawRequest(t, addr, "GET http://admin.example/open/x HTTP/1.1", "Host: localhost"); code != 401 {
		t.Errorf("absolute-form admin.example target with Host: localhost: %d, want 401 (%q)", code, body)
	}
	if code, body := rawRequest(t, addr, "GET http://localhost/open/x HTTP/1.1", "Host: admin.example"); code != 200 {
		t.Errorf("absolute-form localhost target with Host: admin.example: %d, want 200 (%q)", code, body)
	}
}

func TestRoutingUnknownHostWithOnlyHostRoutes(t *testing.T) {
	idp, _ := testgw.NewIssuer(t)
	up := testgw.Upstream(t)
	g := testgw.Start(t, testgw.Options{Config: func(string) string {
		return fmt.Sprintf(`server: {listen: "127.0.0.1:0"}
admin: {listen: off}
issuers:
  - issuer: %[1]q
    audiences: [api]
routes:
  - name: a
    host: a.example
    path_prefix: /
    upstream: %[2]q
    auth: public
  - name: b
    host: "*.b.example"
    path_prefix: /docs
    upstream: %[2]q
    auth: public
`, idp.Issuer, up)
	}})
	addr := strings.TrimPrefix(g.URL, "http://")
	for _, c := range []struct {
		host, path string
		want       int
	}{
		{"a.example", "/anything", 200},
		{"x.b.example", "/docs/1", 200},
		{"x.b.example", "/other", 404}, // the host's routes only, none matches
		{"c.example", "/", 404},
		{"127.0.0.1", "/", 404},
	} {
		code, body := rawRequest(t, addr, "GET "+c.path+" HTTP/1.1", "Host: "+c.host)
		if code != c.want {
			t.Errorf("Host %s, GET %s: %d, want %d", c.host, c.path, code, c.want)
		}
		if code == 404 && strings.TrimSpace(body) != "not found" {
			t.Errorf("404 body %q: should say only not found", body)
		}
	}
}
