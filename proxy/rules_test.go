package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// ruleRoutes exercise methods, CORS preflights and rules; {{upstream}} is
// the echo upstream.
const ruleRoutes = `  - name: docs
    path_prefix: /docs
    upstream: {{upstream}}
    methods: [GET, HEAD, DELETE]
    forward_headers: {X-Auth-Request-User: sub}
    rules:
      - name: staff-read
        allow: 'request.method in ["GET", "HEAD"] && "staff" in claims.groups'
      - allow: 'request.method == "DELETE" && "admin" in claims.groups'
      - deny: 'true'
  - name: users
    path_prefix: /users
    upstream: {{upstream}}
    rules:
      - name: own
        allow: 'request.path.startsWith("/users/" + claims.sub + "/")'
  - name: office
    path_prefix: /office
    upstream: {{upstream}}
    rules:
      - allow: 'claims.client_id == "cli" && cidr("127.0.0.0/8").containsIP(request.remote_ip)'
  - name: branch
    path_prefix: /branch
    upstream: {{upstream}}
    rules:
      - allow: 'claims.client_id == "cli" && cidr("10.0.0.0/8").containsIP(request.remote_ip)'
  - name: cors
    path_prefix: /cors
    upstream: {{upstream}}
    methods: [GET]
    cors_preflight: pass
  - name: tenant
    path_prefix: /tenant
    upstream: {{upstream}}
    auth: optional
    rules:
      - allow: 'request.headers["x-org"] == "acme" && !("authorization" in request.headers) && !("x-tenant" in request.headers)'
      - allow: 'has(claims.sub)'
  - name: lan
    path_prefix: /lan
    upstream: {{upstream}}
    auth: public
    rules:
      - allow: 'cidr("10.0.0.0/8").containsIP(request.remote_ip)'
`

func TestRules(t *testing.T) {
	e := newEnv(t, ruleRoutes)
	claims := func(sub string, kv ...any) map[string]any {
		c := e.claims(sub)
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	staff := e.mint("ES256", claims("alice", "groups", []string{"staff"}), nil)
	admin := e.mint("ES256", claims("root", "groups", []string{"admin"}), nil)
	bob := e.mint("ES256", claims("bob"), nil)
	cli := e.mint("ES256", claims("svc", "client_id", "cli"), nil)
	preflight := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"GET"}}

	for _, tc := range []struct {
		method, path, token string
		hdr                 http.Header
		want                int
		challenge           string // in WWW-Authenticate
	}{
		// "anyone in staff may GET, only admins may DELETE"
		{"GET", "/docs/a", staff, nil, 200, ""},
		{"HEAD", "/docs/a", staff, nil, 200, ""},
		{"DELETE", "/docs/a", staff, nil, 403, `error="insufficient_scope", error_description="denied by rule 2"`},
		{"DELETE", "/docs/a", admin, nil, 200, ""},
		{"GET", "/docs/a", admin, nil, 403, `error_description="denied by rule 2"`},
		{"GET", "/docs/a", "", nil, 401, `Bearer realm=`},
		// Methods come before the token: no token, still 405.
		{"POST", "/docs/a", "", nil, 405, ""},
		{"PUT", "/docs/a", admin, nil, 405, ""},
		// "a user may only reach /users/<own sub>/…", on the cleaned path.
		{"GET", "/users/bob/avatar", bob, nil, 200, ""},
		{"GET", "/users/alice/avatar", bob, nil, 403, `error_description="no rule allows the request"`},
		{"GET", "/users/bob/../alice/avatar", bob, nil, 403, ""},
		{"GET", "/users/bob", bob, nil, 403, ""},
		// "this client_id only, and only from the office network"
		{"GET", "/office/x", cli, nil, 200, ""},
		{"GET", "/office/x", bob, nil, 403, ""},
		{"GET", "/branch/x", cli, nil, 403, ""},
		// An X-Forwarded-For from an untrusted client changes nothing.
		{"GET", "/branch/x", cli, http.Header{"X-Forwarded-For": {"10.1.2.3"}}, 403, ""},
		// CORS preflights pass without a token; other OPTIONS do not.
		{"OPTIONS", "/cors/x", "", preflight, 200, ""},
		{"OPTIONS", "/cors/x", "", nil, 405, ""},
		{"GET", "/cors/x", "", nil, 401, ""},
		{"GET", "/cors/x", bob, nil, 200, ""},
		// An optional route: rules on headers for anonymous callers, a
		// token otherwise; an anonymous caller the rules refuse is asked
		// for a token.
		{"GET", "/tenant/x", "", http.Header{"X-Org": {"acme"}}, 200, ""},
		// X-Tenant is an identity header (of app): stripped, the rule never sees it.
		{"GET", "/tenant/x", "", http.Header{"X-Org": {"acme"}, "X-Tenant": {"acme"}}, 200, ""},
		{"GET", "/tenant/x", "", nil, 401, `Bearer realm=`},
		{"GET", "/tenant/x", bob, nil, 200, ""},
		// A public route's rules see the request only.
		{"GET", "/lan/x", "", nil, 403, ""},
	} {
		res := e.do(tc.method, tc.path, tc.token, tc.hdr)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d (%s; %s)", tc.method, tc.path, res.StatusCode, tc.want, res.Header.Get("WWW-Authenticate"), body)
			continue
		}
		if got := res.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) {
			t.Errorf("%s %s: WWW-Authenticate %q, want %q in it", tc.method, tc.path, got, tc.challenge)
		}
		if tc.want == 405 && res.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
	if res := e.do("POST", "/docs", "", nil); res.Header.Get("Allow") != "GET, HEAD, DELETE" {
		t.Errorf("Allow %q", res.Header.Get("Allow"))
	}
	// The upstream sees who passed the rules, and never the rules' input.
	if got := http.Header(e.echo(e.do("GET", "/docs/a", staff, nil)).Headers).Get("X-Auth-Request-User"); got != "alice" {
		t.Errorf("identity after the rules: %q", got)
	}

	// Decisions are counted per rule, and the default as "default".
	_, metrics := e.getAdmin("/metrics")
	for _, want := range []string{
		`portcullis_rule_decisions_total{decision="allow",route="docs",rule="staff-read"} 3`,
		`portcullis_rule_decisions_total{decision="allow",route="docs",rule="1"} 1`,
		`portcullis_rule_decisions_total{decision="deny",route="docs",rule="2"} 2`,
		`portcullis_rule_decisions_total{decision="deny",route="users",rule="default"} 3`,
		`portcullis_rule_decisions_total{decision="allow",route="users",rule="own"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(e.logs.String(), `msg="request denied" route=docs reason=rule detail="denied by rule 2"`) {
		t.Errorf("no log line for the denial:\n%s", e.logs.String())
	}
}

// TestRulesOnForwardAuth asks forward-auth (served without a login
// section too) about the original requests: the same methods and rules.
func TestRulesOnForwardAuth(t *testing.T) {
	e := newEnv(t, ruleRoutes)
	staff := e.mint("ES256", withClaim(e.claims("alice"), "groups", []string{"staff"}), nil)
	admin := e.mint("ES256", withClaim(e.claims("root"), "groups", []string{"admin"}), nil)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/oauth2/auth/docs/a", staff, 200},
		{"DELETE", "/oauth2/auth/docs/a", staff, 403},
		{"DELETE", "/oauth2/auth/docs/a", admin, 200},
		{"POST", "/oauth2/auth/docs/a", admin, 403}, // not one of the methods: 403 for a proxy, with Allow
		{"GET", "/oauth2/auth/users/root/x", admin, 200},
		{"GET", "/oauth2/auth/users/alice/x", admin, 403},
		{"GET", "/oauth2/auth/lan/x", "", 403},
		{"GET", "/oauth2/auth/docs/a", "", 401},
	} {
		res := e.do(tc.method, tc.path, tc.token, nil)
		if res.StatusCode != tc.want {
			body, _ := io.ReadAll(res.Body)
			t.Errorf("%s %s: %d, want %d (%s)", tc.method, tc.path, res.StatusCode, tc.want, body)
		}
		if tc.method == "POST" && res.Header.Get("Allow") != "GET, HEAD, DELETE" {
			t.Errorf("forward-auth method refusal: Allow %q", res.Header.Get("Allow"))
		}
		if tc.want == 200 && tc.path == "/oauth2/auth/docs/a" && tc.token == staff && res.Header.Get("X-Auth-Request-User") != "alice" {
			t.Errorf("forward-auth answer: X-Auth-Request-User %q", res.Header.Get("X-Auth-Request-User"))
		}
	}
}

func withClaim(c map[string]any, k string, v any) map[string]any {
	c[k] = v
	return c
}

// TestRuleDenialPage: a signed-in browser that a rule refuses gets the
// access-denied page naming the rule; an API client with the same session
// the RFC 6750 answer.
func TestRuleDenialPage(t *testing.T) {
	e := newLoginEnvWith(t, func(y string) string {
		return strings.Replace(y, "    on_unauthenticated: deny\n",
			"    on_unauthenticated: deny\n    rules:\n      - {name: not-alice, deny: 'claims.sub == \"alice\"'}\n      - allow: 'true'\n", 1)
	})
	b := newBrowser(t)
	if res, body := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	res, body := b.do("GET", e.base+"/api/items", nil, nil)
	if res.StatusCode != http.StatusForbidden || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "Access denied") || !strings.Contains(body, "denied by rule not-alice") {
		t.Fatalf("browser refused by a rule: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	res, _ = b.do("GET", e.base+"/api/items", nil, http.Header{"Accept": {"application/json"}})
	if got := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusForbidden ||
		!strings.Contains(got, `error="insufficient_scope", error_description="denied by rule not-alice"`) {
		t.Fatalf("API client refused by a rule: %d %q", res.StatusCode, got)
	}
}

// readmeRoutes returns the routes of the first YAML block of README.md's
// section heading, with every upstream replaced by {{upstream}}.
func readmeRoutes(t *testing.T, heading string) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	_, block, ok := strings.Cut(sec, "```yaml\n")
	if !ok {
		t.Fatalf("README.md's %q has no YAML block", heading)
	}
	block, _, _ = strings.Cut(block, "```")
	_, routes, ok := strings.Cut(block, "routes:\n")
	if !ok {
		t.Fatalf("README.md's %q block has no routes", heading)
	}
	return regexp.MustCompile(`(?m)^(\s+upstream:).*$`).ReplaceAllString(routes, "$1 {{upstream}}")
}

// TestReadmeRulesExample runs the rules example of README.md as written.
func TestReadmeRulesExample(t *testing.T) {
	e := newEnv(t, readmeRoutes(t, "## Methods and rules"))
	mint := func(sub string, kv ...any) string {
		c := e.claims(sub)
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return e.mint("ES256", c, nil)
	}
	staff := mint("alice", "groups", []string{"staff"})
	admin := mint("root", "groups", []string{"admin"})
	reports := mint("svc", "client_id", "reports")
	ask := func(method, path, token, remote string, hdr http.Header) int {
		req := httptest.NewRequest(method, "http://gw.test"+path, nil)
		req.RemoteAddr = remote
		for k, v := range hdr {
			req.Header[k] = v
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.gw.ServeHTTP(rec, req)
		return rec.Code
	}
	const client, proxy = "192.0.2.1:4000", "10.99.0.1:4000" // 10.99.0.0/16 is trusted
	office := http.Header{"X-Forwarded-For": {"10.20.3.4"}}
	for _, tc := range []struct {
		method, path, token, remote string
		hdr                         http.Header
		want                        int
	}{
		{"GET", "/docs/a", staff, client, nil, 200},
		{"HEAD", "/docs/a", staff, client, nil, 200},
		{"DELETE", "/docs/a", staff, client, nil, 403},
		{"DELETE", "/docs/a", admin, client, nil, 200},
		{"DELETE", "/docs/alice/draft", staff, client, nil, 200},
		{"GET", "/docs/bob/draft", staff, client, nil, 200}, // staff may read anything
		{"DELETE", "/docs/bob/draft", staff, client, nil, 403},
		{"GET", "/docs/a", reports, proxy, office, 200},
		{"GET", "/docs/a", reports, client, office, 403}, // X-Forwarded-For from an untrusted client
		{"GET", "/docs/a", reports, proxy, http.Header{"X-Forwarded-For": {"10.21.0.1"}}, 403},
		{"POST", "/docs/a", admin, client, nil, 405},
		{"OPTIONS", "/docs/a", "", client, http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"DELETE"}}, 200},
		{"GET", "/docs/a", "", client, nil, 401},
	} {
		if got := ask(tc.method, tc.path, tc.token, tc.remote, tc.hdr); got != tc.want {
			t.Errorf("%s %s from %s: %d, want %d", tc.method, tc.path, tc.remote, got, tc.want)
		}
	}
}
