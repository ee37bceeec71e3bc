package forwardauth_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis-dev/portcullis/internal/peers"
)

// answerNames are the headers of a real forward-auth answer for a valid
// token that some proxy must copy onto the request: everything but the
// headers of the answer itself.
func answerNames(t *testing.T) []string {
	t.Helper()
	e := start(t, func(*testing.T, string, string) *peers.Process { return nil })
	tok := e.token(t, "dave", "read", nil)
	res, _ := send(t, "GET", "http://"+e.PortcullisAddr+"/oauth2/auth",
		http.Header{"Authorization": {"Bearer " + tok}, "X-Original-Url": {e.Base + "/orders"}})
	if res.StatusCode != 200 {
		t.Fatalf("forward-auth answered %d", res.StatusCode)
	}
	own := map[string]bool{"Cache-Control": true, "Date": true, "Content-Length": true, "Content-Type": true,
		"X-Request-Id": true, "Set-Cookie": true}
	var out []string
	for name := range res.Header {
		if !own[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	if !slices.Contains(out, "X-Auth-Request-User") || !slices.Contains(out, "Cookie") {
		t.Fatalf("answer headers %q lack the identity or Cookie", out)
	}
	return out
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEveryConfigCopiesTheWholeAnswer: no example may forget a header that
// portcullis answers, or the client's copy of it would reach the app.
func TestEveryConfigCopiesTheWholeAnswer(t *testing.T) {
	names := answerNames(t)

	nginx := readFile(t, "nginx.conf")
	caddy := readFile(t, "Caddyfile")
	var dyn struct {
		HTTP struct {
			Middlewares map[string]struct {
				ForwardAuth struct {
					Regex string `yaml:"authResponseHeadersRegex"`
				} `yaml:"forwardAuth"`
			} `yaml:"middlewares"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join("traefik", "dynamic.yaml"))), &dyn); err != nil {
		t.Fatal(err)
	}
	traefik := regexp.MustCompile(dyn.HTTP.Middlewares["portcullis"].ForwardAuth.Regex)
	envoy := envoyFilter(t)

	for _, name := range names {
		lower := strings.ToLower(name)
		if !regexp.MustCompile(`(?m)^\s*proxy_set_header\s+` + regexp.QuoteMeta(name) + `\s+\$pc_`).MatchString(nginx) {
			t.Errorf("nginx.conf does not set %s from the answer", name)
		}
		if !regexp.MustCompile(`copy_headers[^\n]*\s` + regexp.QuoteMeta(name) + `(\s|$)`).MatchString(caddy) {
			t.Errorf("Caddyfile does not copy %s", name)
		}
		for _, spelling := range []string{name, strings.ReplaceAll(name, "-", "_"), lower} {
			if !traefik.MatchString(spelling) {
				t.Errorf("traefik/dynamic.yaml: authResponseHeadersRegex does not match %s", spelling)
			}
		}
		if !slices.Contains(envoy.upstream, lower) {
			t.Errorf("envoy.yaml: allowed_upstream_headers lacks %s", lower)
		}
	}
	// Authorization comes only when a route forwards the token: each
	// example removes the client's.
	if !regexp.MustCompile(`(?m)^\s*proxy_set_header\s+Authorization\s+\$pc_authz;`).MatchString(nginx) {
		t.Error("nginx.conf does not replace Authorization with the answer's")
	}
	if !regexp.MustCompile(`(?m)^\s*request_header -Authorization$`).MatchString(caddy) {
		t.Error("Caddyfile does not remove the client's Authorization")
	}
	if !traefik.MatchString("Authorization") {
		t.Error("traefik/dynamic.yaml does not remove the client's Authorization")
	}
	if !envoy.removesAuthorization {
		t.Error("envoy.yaml does not remove the client's Authorization")
	}
}

// envoyConfig is what the tests check of envoy.yaml.
type envoyConfig struct {
	pathPrefix           string
	upstream             []string // allowed_upstream_headers, exact names
	request              []string // allowed_headers of the check request
	bypassed             []string // route prefixes with ext_authz disabled
	removesAuthorization bool     // the app route drops the client's Authorization
}

func envoyFilter(t *testing.T) envoyConfig {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, "envoy.yaml")), &doc); err != nil {
		t.Fatal(err)
	}
	var c envoyConfig
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		switch v := v.(type) {
		case map[string]any:
			if p, ok := v["path_prefix"].(string); ok {
				c.pathPrefix = p
			}
			if m, ok := v["match"].(map[string]any); ok {
				prefix, _ := m["prefix"].(string)
				if strings.Contains(yamlString(v["typed_per_filter_config"]), "disabled:true") {
					c.bypassed = append(c.bypassed, prefix)
				}
				if prefix == "/" && strings.Contains(yamlString(v["request_headers_to_remove"]), "authorization") {
					c.removesAuthorization = true
				}
			}
			for k, x := range v {
				walk(x, append(path, k))
			}
		case []any:
			for _, x := range v {
				if m, ok := x.(map[string]any); ok && len(path) >= 2 && path[len(path)-1] == "patterns" {
					if e, ok := m["exact"].(string); ok {
						switch path[len(path)-2] {
						case "allowed_upstream_headers":
							c.upstream = append(c.upstream, e)
						case "allowed_headers":
							c.request = append(c.request, e)
						}
					}
				}
				walk(x, path)
			}
		}
	}
	walk(doc, nil)
	return c
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.Join(strings.Fields(string(b)), "")
}

// TestEnvoyConfig checks envoy.yaml's shape; with an envoy binary on PATH,
// TestEnvoy runs it for real.
func TestEnvoyConfig(t *testing.T) {
	c := envoyFilter(t)
	if c.pathPrefix != "/oauth2/auth" {
		t.Errorf("path_prefix %q, want /oauth2/auth", c.pathPrefix)
	}
	for _, h := range []string{"authorization", "cookie", "accept", "sec-fetch-mode", "x-requested-with"} {
		if !slices.Contains(c.request, h) {
			t.Errorf("the check request does not carry %s", h)
		}
	}
	slices.Sort(c.bypassed)
	if !slices.Equal(c.bypassed, []string{"/idp/", "/oauth2/"}) {
		t.Errorf("routes that skip ext_authz: %q, want /idp/ and /oauth2/", c.bypassed)
	}
	rendered := peers.Replace(readFile(t, "envoy.yaml"), peers.Vars("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"))
	if regexp.MustCompile(`[A-Z]+_(ADDR|HOST|PORT)`).MatchString(rendered) {
		t.Error("envoy.yaml has a placeholder that Vars does not fill")
	}
	var doc any
	if err := yaml.Unmarshal([]byte(rendered), &doc); err != nil {
		t.Errorf("rendered envoy.yaml: %v", err)
	}
}

// TestPlaceholders: every example uses only the placeholders the tests fill.
func TestPlaceholders(t *testing.T) {
	vars := peers.Vars("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
	for _, name := range []string{"nginx.conf", "Caddyfile", "traefik/static.yaml", "traefik/dynamic.yaml", "envoy.yaml", "portcullis.yaml"} {
		out := peers.Replace(readFile(t, name), vars)
		if m := regexp.MustCompile(`\b(LISTEN|PORTCULLIS|UPSTREAM)_[A-Z]+\b`).FindString(out); m != "" {
			t.Errorf("%s: placeholder %s is not filled", name, m)
		}
	}
}
