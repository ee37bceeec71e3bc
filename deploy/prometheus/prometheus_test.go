package prometheus_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/peers"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

func promtool(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	bin := peers.Find(t, false, "promtool")
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRules(t *testing.T) {
	out := promtool(t, nil, "check", "rules", "portcullis.rules.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	out = promtool(t, nil, "test", "rules", "portcullis.rules.test.yaml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// routes: an upstream nobody listens on, and a public route.
const routes = `  - name: down
    path_prefix: /down
    upstream: "http://%s"
    auth: public
  - name: open
    path_prefix: /open
    upstream: %%[2]q
    auth: public
`

func TestMetricsLint(t *testing.T) {
	peers.Find(t, false, "promtool")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	up := testgw.Upstream(t)
	cfg := testgw.Login{Routes: fmt.Sprintf(routes, closed)}.YAML()
	g := testgw.Start(t, testgw.Options{Logger: slog.New(slog.DiscardHandler), Config: func(base string) string {
		return fmt.Sprintf(cfg, base, up, testgw.AliceHash())
	}})
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr http.Header) {
		req, _ := http.NewRequest("GET", g.URL+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// The workload: a sign-in, requests with its session, without one and
	// with a bad token, forward-auth answers, an unreachable upstream and
	// a wrong password.
	b := testgw.NewBrowser(t)
	if res, _ := b.Visit(g.URL, g.URL+"/"); res.StatusCode != 200 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	get("/", http.Header{"Authorization": {"Bearer not.a.token"}})
	get("/", http.Header{"Accept": {"application/json"}})
	get("/open/x", nil)
	get("/down/x", nil)
	get("/oauth2/auth", http.Header{"X-Forwarded-Uri": {"/open/x"}})
	mallory := testgw.NewBrowser(t)
	page := mallory.LoginPage(g.URL + "/oauth2/start?rd=/")
	form := testgw.HiddenFields(page)
	form.Set("username", testgw.Username)
	form.Set("password", "wrong password")
	mallory.Do("POST", g.URL+"/idp/authorize", form, nil)

	rec := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	scrape := rec.Body.Bytes()
	for _, family := range []string{
		"portcullis_requests_total", "portcullis_request_duration_seconds_bucket", "portcullis_auth_failures_total",
		"portcullis_login_failures_total", "portcullis_upstream_errors_total", "portcullis_upstream_duration_seconds_bucket",
		"portcullis_authn_duration_seconds_bucket", "portcullis_jwks_ready", "portcullis_cache_lookups_total",
		`portcullis_login_failures_total{reason="bad_password"} 1`,
	} {
		if !bytes.Contains(scrape, []byte("\n"+family)) {
			t.Errorf("the workload left no %s to check", family)
		}
	}
	out := promtool(t, scrape, "check", "metrics")
	if strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics found problems:\n%s", out)
	}
}
