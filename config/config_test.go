package config_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/portcullis-dev/portcullis/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// base is the smallest valid configuration; cases append to or prepend it.
const base = `issuers:
  - issuer: https://idp.example.com
    audiences: [api]
routes:
  - name: app
    upstream: http://127.0.0.1:3000
`

// env returns a lookup function over a fixed set of variables.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// parse parses src as t.yaml and returns its errors as strings.
func parse(t *testing.T, src string, vars map[string]string) (*config.Config, []string) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(src), env(vars))
	if err == nil {
		if cfg == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		return cfg, nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error is %T, want config.Errors: %v", err, err)
	}
	if cfg != nil {
		t.Error("Parse returned a config along with errors")
	}
	return nil, strings.Split(errs.Error(), "\n")
}

// check compares the errors of parsing src with want, exactly.
func check(t *testing.T, src string, vars map[string]string, want ...string) {
	t.Helper()
	_, got := parse(t, src, vars)
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n  got  %q\n  want %q", got, want)
	}
}

func TestParseValid(t *testing.T) {
	for _, name := range []string{"minimal", "full", "issuer", "login"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, errs := parse(t, string(src), map[string]string{"SECRET": strings.Repeat("s", 32)})
			if errs != nil {
				t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
			got, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("config with defaults differs from %s (run go test -update):\n%s", golden, got)
			}
			// Defaults are a fixed point: the output parses back the same.
			again, errs := parse(t, string(got), nil)
			if errs != nil {
				t.Fatalf("golden output does not parse:\n%s", strings.Join(errs, "\n"))
			}
			if out, _ := yaml.Marshal(again); string(out) != string(got) {
				t.Errorf("round trip changed the config:\n%s", out)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, errs := parse(t, base, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	s := cfg.Server
	if s.Listen != "127.0.0.1:8080" || s.PublicURL != "http://127.0.0.1:8080" ||
		s.ReadHeaderTimeout.D() != 10*time.Second || s.ReadTimeout != 0 ||
		s.WriteTimeout.D() != time.Minute || s.IdleTimeout.D() != 2*time.Minute ||
		s.MaxHeaderBytes != 32768 || s.ShutdownGrace.D() != 20*time.Second {
		t.Errorf("server defaults: %+v", s)
	}
	if cfg.Admin.Listen != "127.0.0.1:9090" || cfg.Log.Level != "info" || cfg.Log.Format != "text" {
		t.Errorf("admin, log defaults: %+v %+v", cfg.Admin, cfg.Log)
	}
	is := cfg.Issuers[0]
	if !slices.Equal(is.Algorithms, []string{"ES256", "RS256"}) || is.Leeway.D() != 30*time.Second ||
		is.JWKSMinAge.D() != time.Minute || is.JWKSMaxAge.D() != time.Hour || is.JWKSRefetchInterval.D() != 10*time.Second {
		t.Errorf("issuer defaults: %+v", is)
	}
	r := cfg.Routes[0]
	if r.PathPrefix != "/" || r.Auth != "required" || r.OnUnauthenticated != "auto" || r.ForwardToken != "none" ||
		!slices.Equal(r.TokenFrom, []string{"header"}) || r.Timeout.D() != 30*time.Second || r.MaxBodyBytes != 0 {
		t.Errorf("route defaults: %+v", r)
	}
}

func TestDefaultsExplicit(t *testing.T) {
	src := `server:
  write_timeout: 0s
  max_header_bytes:
issuers:
  - issuer: https://idp.example.com
    audiences: [api]
    leeway: 0s
    jwks_min_age:
  - issuer: https://legacy.example.com
    audiences: [api]
    hmac_secret: ${SECRET}
routes:
  - name: app
    host: App.Example.COM
    upstream: http://127.0.0.1:3000
    timeout: 0s
    forward_token: Authorization
`
	cfg, errs := parse(t, src, map[string]string{"SECRET": strings.Repeat("k", 32)})
	if errs != nil {
		t.Fatal(errs)
	}
	if cfg.Server.WriteTimeout != 0 || cfg.Issuers[0].Leeway != 0 || cfg.Routes[0].Timeout != 0 {
		t.Error("an explicit 0s was replaced by a default")
	}
	if cfg.Server.MaxHeaderBytes != 32768 || cfg.Issuers[0].JWKSMinAge.D() != time.Minute {
		t.Error("a key with an empty value did not get its default")
	}
	if got := cfg.Issuers[1].Algorithms; !slices.Equal(got, []string{"HS256"}) {
		t.Errorf("algorithms with hmac_secret = %v, want [HS256]", got)
	}
	if r := cfg.Routes[0]; r.Host != "app.example.com" || r.ForwardToken != "authorization" {
		t.Errorf("host, forward_token = %q, %q; want them lower-cased", r.Host, r.ForwardToken)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"top level", "Login: {}\n" + base, []string{
			`t.yaml:1: unknown key "Login" at the top level (did you mean login?); valid keys: server, admin, log, issuers, login, routes, issuer, telemetry`}},
		{"nested struct", "server:\n  tls:\n    cert: a.pem\n" + base, []string{
			`t.yaml:3: unknown key "cert" in server.tls; valid keys: cert_file, key_file, client_ca_file, client_auth, client_cert_header`}},
		{"route with suggestion", base + "    pathPrefix: /api\n", []string{
			`t.yaml:7: unknown key "pathPrefix" in routes[0] (did you mean path_prefix?); valid keys: name, host, path_prefix, upstream, preserve_host, auth, on_unauthenticated, audiences, resource, resource_name, resource_documentation, require_scopes, require_claims, forward_headers, forward_token, token_from, timeout, upstream_ca_file, max_body_bytes, methods, cors_preflight, require_sender_constraint, rules`}},
		{"free maps accept any key", base + "    require_claims: {any.claim: x}\n    forward_headers: {X-Anything: sub}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, nil, tt.want...) })
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"empty", "", []string{"t.yaml: the file is empty; want a mapping with keys server, admin, log, issuers, login, routes, issuer, telemetry"}},
		{"null document", "---\n~\n", []string{"t.yaml:1: the file holds no configuration; want a mapping with keys server, admin, log, issuers, login, routes, issuer, telemetry"}},
		{"comments only", "# nothing\n", []string{"t.yaml: the file is empty; want a mapping with keys server, admin, log, issuers, login, routes, issuer, telemetry"}},
		{"syntax", "routes:\n  - name: a\n   upstream: x\n", []string{"t.yaml:3: invalid YAML: did not find expected '-' indicator"}},
		{"syntax deep", "server:\n  listen: x\nroutes:\n  - name: a\n    upstream: http://x\n\n  - name: b\n   upstream: y\n", []string{"t.yaml:8: invalid YAML: did not find expected '-' indicator"}},
		{"syntax key", "server:\n  listen: x\n  public_url: [a\nadmin: {}\n", []string{"t.yaml:3: invalid YAML: did not find expected ',' or ']'"}},
		{"scanner", "server:\n  listen: a: b\n", []string{"t.yaml:2: invalid YAML: mapping values are not allowed in this context"}},
		{"root is a list", "- a\n", []string{"t.yaml:1: the top level must be a mapping with keys server, admin, log, issuers, login, routes, issuer, telemetry, not a list"}},
		{"two documents", base + "---\nlog: {level: info}\n", []string{"t.yaml:7: a second YAML document starts here; keep the whole configuration in one document"}},
		{"duplicate key", "log:\n  level: info\n  level: debug\n" + base, []string{"t.yaml:3: log.level: duplicate key; it is first set at line 2"}},
		{"integer", "server:\n  max_header_bytes: lots\n" + base, []string{`t.yaml:2: server.max_header_bytes: want a whole number, got "lots"`}},
		{"bool", "server:\n  insecure_allow_http: maybe\n" + base, []string{`t.yaml:2: server.insecure_allow_http: want true or false, got "maybe"`}},
		{"duration", "server:\n  idle_timeout: 30\n" + base, []string{`t.yaml:2: server.idle_timeout: "30" is not a duration; write it like 30s, 5m or 12h`}},
		{"negative duration", base + "    timeout: -1s\n", []string{`t.yaml:7: routes[0].timeout: duration "-1s" must not be negative`}},
		{"list wanted", "server:\n  trusted_proxies: 10.0.0.0/8\n" + base, []string{`t.yaml:2: server.trusted_proxies: want a list such as [a, b], got "10.0.0.0/8"`}},
		{"mapping wanted", "server: [a]\n" + base, []string{`t.yaml:1: server: want a mapping with keys listen, public_url, insecure_allow_http, trusted_proxies, tls, read_header_timeout, read_timeout, write_timeout, idle_timeout, max_header_bytes, max_connections, h2c, shutdown_delay, shutdown_grace, auth_failure_delay, token_cache, rules, dpop, got a list`}},
		{"scalar wanted", "log:\n  level: [info]\n" + base, []string{`t.yaml:2: log.level: want a string, got a list`}},
		{"claim values", base + "    require_claims:\n      groups: {a: b}\n", []string{`t.yaml:8: routes[0].require_claims.groups: want a string or a list of strings`}},
		{"non-scalar key", "log:\n  [a]: b\n" + base, []string{`t.yaml:2: log: a key must be a plain name, not a list`}},
		{"alias cycle", base + "  - &r\n    name: b\n    upstream: http://u\n    path_prefix: /b\n    timeout: *r\n    <<: [*r]\n", []string{
			"t.yaml:11: routes[1].timeout: is an alias of a value that contains it",
			"t.yaml:12: routes[1]: << merges a mapping that contains it"}},
		{"telemetry", "telemetry:\n  tracing: {enabled: true, endpoint: 'http://collector:4318', protocol: grpc, headers: {x-api-key: k}, sampler: parentbased_traceidratio, sampler_arg: '0.25', service_name: gw, resource_attributes: {deployment.environment: prod}, trust_incoming: all}\n" + base, nil},
		{"telemetry errors", "telemetry:\n  tracing: {endpoint: 'collector:4318', protocol: http/json, sampler: sometimes, sampler_arg: '2', headers: {'bad name': x}, trust_incoming: everyone}\n" + base, []string{
			`t.yaml:2: telemetry.tracing.endpoint: "collector:4318" is not an http or https URL; write the collector's OTLP URL, such as http://otel-collector:4318`,
			`t.yaml:2: telemetry.tracing.headers: "bad name" is not a header name; want a name such as x-api-key`,
			`t.yaml:2: telemetry.tracing.protocol: "http/json" is not an OTLP protocol portcullis speaks; want http/protobuf or grpc`,
			`t.yaml:2: telemetry.tracing.sampler: "sometimes" is not a sampler; want one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio`,
			`t.yaml:2: telemetry.tracing.sampler_arg: "2" is not a ratio; want a number from 0 to 1, such as 0.1`,
			`t.yaml:2: telemetry.tracing.trust_incoming: "everyone" is not a choice; want trusted_proxies, all or none`}},
		{"telemetry sampler_arg without a ratio sampler", "telemetry:\n  tracing: {sampler: always_on, sampler_arg: '0.5'}\n" + base, []string{
			`t.yaml:2: telemetry.tracing.sampler_arg: has no effect with sampler always_on; use traceidratio or parentbased_traceidratio, or remove this key`}},
		{"admin token short", "admin: {token: short}\n" + base, []string{
			`t.yaml:1: admin.token: is 5 characters; want at least 16 random characters without spaces at either end, from the environment, such as "${PORTCULLIS_ADMIN_TOKEN}"`}},
		{"admin token with the listener off", "admin: {listen: \"off\", token: 0123456789abcdef0123}\n" + base, []string{
			`t.yaml:1: admin.token: has no effect with admin.listen: off; give the admin listener an address, or remove this key`}},
		{"bad anchor merged elsewhere", "log: &l {level: [x]}\nadmin: {<<: *l}\n" + base, []string{
			`t.yaml:1: unknown key "level" in admin; valid keys: listen, token`,
			`t.yaml:1: log.level: want a string, got a list`}},
		{"bad merge", "log:\n  <<: 3\n" + base, []string{`t.yaml:2: log: << must merge a mapping or a list of mappings, not "3"`}},
		{"token cache", "server:\n  token_cache:\n    entries: -1\n" + base, []string{
			`t.yaml:3: server.token_cache.entries: is -1; want a number of tokens such as 20000, or 0 to turn the cache off`}},
		{"token cache bounds", "server:\n  token_cache: {bytes: 0, max_age: 0s}\n" + base, []string{
			`t.yaml:2: server.token_cache.bytes: is 0; want a positive number of bytes, such as 16777216`,
			`t.yaml:2: server.token_cache.max_age: is 0s; want a positive duration such as 5m (entries: 0 turns the cache off)`}},
		{"token cache off", "server:\n  token_cache: {entries: 0, bytes: 0, max_age: 0s}\n" + base, nil},
		{"token cache typo", "server:\n  token_cache: {entrys: 5}\n" + base, []string{
			`t.yaml:2: unknown key "entrys" in server.token_cache; valid keys: entries, bytes, max_age`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, nil, tt.want...) })
	}
}

func TestEnv(t *testing.T) {
	vars := map[string]string{
		"UPSTREAM": "http://127.0.0.1:3000",
		"EMPTY":    "",
		"PORT":     "8081",
		"BYTES":    "4096",
		"SECRET":   strings.Repeat("x", 40),
	}
	t.Run("expanded", func(t *testing.T) {
		src := `server:
  listen: "127.0.0.1:${PORT}"
  max_header_bytes: "${BYTES}"
  public_url: http://localhost${EMPTY}:${PORT}/$${literal}/$2a$10$abc
` + strings.Replace(base, "http://127.0.0.1:3000", "${UPSTREAM}", 1) + "    forward_headers: {X-Hash: $2a$10$N9qo8uLOickgx2ZMRZoMye}\n"
		cfg, errs := parse(t, src, vars)
		if errs != nil {
			t.Fatal(errs)
		}
		if cfg.Server.Listen != "127.0.0.1:8081" || cfg.Server.MaxHeaderBytes != 4096 {
			t.Errorf("listen, max_header_bytes = %q, %d", cfg.Server.Listen, cfg.Server.MaxHeaderBytes)
		}
		if got, want := cfg.Server.PublicURL, "http://localhost:8081/${literal}/$2a$10$abc"; got != want {
			t.Errorf("public_url = %q, want %q", got, want)
		}
		if cfg.Routes[0].Upstream != "http://127.0.0.1:3000" || cfg.Routes[0].ForwardHeaders["X-Hash"] != "$2a$10$N9qo8uLOickgx2ZMRZoMye" {
			t.Errorf("route = %+v", cfg.Routes[0])
		}
	})
	t.Run("keys and comments are not expanded", func(t *testing.T) {
		src := base + "    # ${NOT_SET}\n    forward_headers:\n      X-${NOT_SET}: sub\n"
		check(t, src, vars, `t.yaml:9: routes[0].forward_headers["X-${NOT_SET}"]: "X-${NOT_SET}" is not a header name (letters, digits and -); pick another name, such as X-Auth-Request-User`)
	})
	t.Run("unset", func(t *testing.T) {
		check(t, "issuers:\n  - issuer: https://idp.example.com\n    hmac_secret: ${LEGACY_SECRET}\n"+strings.TrimPrefix(base, "issuers:\n  - issuer: https://idp.example.com\n"), vars,
			"t.yaml:3: issuers[0].hmac_secret: environment variable LEGACY_SECRET is not set")
	})
	t.Run("malformed", func(t *testing.T) {
		check(t, "log:\n  level: ${1X}\n  format: ${OOPS\n"+base, vars,
			`t.yaml:2: log.level: ${1X} is not a variable reference; a name has letters, digits and "_" and does not start with a digit (write $${ for a literal "${")`,
			`t.yaml:3: log.format: "${" is not closed; write ${NAME}, or $${ for a literal "${"`)
	})
	t.Run("never echoes values", func(t *testing.T) {
		src := strings.Replace(base, "audiences: [api]", "audiences: [api]\n    hmac_secret: ${SHORT}", 1)
		check(t, src, map[string]string{"SHORT": "hunter2"},
			"t.yaml:4: issuers[0].hmac_secret: is 7 bytes; want at least 32 random bytes for the algorithms listed (RFC 7518 §3.2, RFC 8725 §3.5)")
	})
}

func TestMultipleErrors(t *testing.T) {
	src := `server:
  listen: nope
  bogus: 1
log:
  level: verbose
issuers:
  - issuer: idp
    algorithms: [none]
routes:
  - name: a b
    upstream: ftp://x
    timeout: ${UNSET}
`
	check(t, src, nil,
		`t.yaml:2: server.listen: "nope" is not host:port; write it like 127.0.0.1:8080, :8080 or [::1]:8080`,
		`t.yaml:3: unknown key "bogus" in server; valid keys: listen, public_url, insecure_allow_http, trusted_proxies, tls, read_header_timeout, read_timeout, write_timeout, idle_timeout, max_header_bytes, max_connections, h2c, shutdown_delay, shutdown_grace, auth_failure_delay, token_cache, rules, dpop`,
		`t.yaml:5: log.level: "verbose" is not a level; want debug, info, warn or error`,
		`t.yaml:7: issuers[0].issuer: "idp" is not an http or https URL; write it like https://example.com/path`,
		`t.yaml:8: issuers[0].algorithms[0]: "none" is never allowed: it accepts unsigned tokens that anyone can forge (RFC 8725 §2.1, §3.1)`,
		`t.yaml:10: routes[0].audiences: the route has no audiences and issuer "idp" has none either; set audiences on the route, or on every issuer`,
		`t.yaml:10: routes[0].name: "a b" is not a route name; use only letters, digits, ".", "_" and "-"`,
		`t.yaml:11: routes[0].upstream: "ftp://x" is not an http, https or h2c URL; write it like https://example.com/path`,
		`t.yaml:12: routes[0].timeout: environment variable UNSET is not set`,
	)
}

func TestMerge(t *testing.T) {
	src := `issuers:
  - issuer: https://idp.example.com
    audiences: [api]
routes:
  - &app
    name: app
    upstream: http://127.0.0.1:3000
    timeout: 5s
  - <<: *app
    name: api
    path_prefix: /api
    typo: 1
`
	cfg, errs := parse(t, src, nil)
	if errs == nil || len(errs) != 1 || !strings.HasPrefix(errs[0], `t.yaml:12: unknown key "typo" in routes[1]`) {
		t.Fatalf("errors = %q", errs)
	}
	_ = cfg
	cfg, errs = parse(t, strings.Replace(src, "    typo: 1\n", "", 1), nil)
	if errs != nil {
		t.Fatal(errs)
	}
	if r := cfg.Routes[1]; r.Name != "api" || r.Upstream != "http://127.0.0.1:3000" || r.Timeout.D() != 5*time.Second {
		t.Errorf("merged route = %+v", r)
	}
	if got := cfg.Pos("routes[1].timeout"); got != "t.yaml:8" {
		t.Errorf("Pos of a merged key = %q, want t.yaml:8", got)
	}
}

// TestAliasBomb checks that aliases cannot make a small file cost a huge
// walk: a thousand routes, each with a thousand claims of a thousand values.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("routes:\n  - &r\n    name: a\n    upstream: http://u\n    require_claims:\n")
	fmt.Fprintf(&b, "      k0: &l [%sa]\n", strings.Repeat("a, ", 999))
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, "      k%d: *l\n", i)
	}
	b.WriteString(strings.Repeat("  - *r\n", 1000))
	check(t, b.String(), nil, "t.yaml: the document is too large or uses aliases too much")
}

func TestPos(t *testing.T) {
	cfg, errs := parse(t, base, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	for key, want := range map[string]string{
		"routes[0].upstream":   "t.yaml:6",
		"routes[0].timeout":    "t.yaml:5", // defaulted: the route's line
		"issuers[0].audiences": "t.yaml:3",
		"server.listen":        "t.yaml",
	} {
		if got := cfg.Pos(key); got != want {
			t.Errorf("Pos(%q) = %q, want %q", key, got, want)
		}
	}
	if cfg.File() != "t.yaml" {
		t.Errorf("File() = %q", cfg.File())
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    config.Error
		want string
	}{
		{config.Error{File: "c.yaml", Line: 3, Key: "log.level", Msg: "bad"}, "c.yaml:3: log.level: bad"},
		{config.Error{File: "c.yaml", Msg: "bad"}, "c.yaml: bad"},
		{config.Error{Line: 3, Key: "k", Msg: "bad"}, "line 3: k: bad"},
		{config.Error{Key: "k", Msg: "bad"}, "k: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestValidateInCode(t *testing.T) {
	c := &config.Config{
		Server: config.Server{Listen: "127.0.0.1:8080", PublicURL: "http://localhost:8080", MaxHeaderBytes: 1 << 15, WriteTimeout: -1},
		Admin:  config.Admin{Listen: "off"},
		Log:    config.Log{Level: "info", Format: "json"},
		Routes: []config.Route{{Name: "r", PathPrefix: "/", Upstream: "http://u", Auth: "public", OnUnauthenticated: "deny", ForwardToken: "none", TokenFrom: []string{"header"}}},
	}
	err := c.Validate()
	if got, want := fmt.Sprint(err), "server.write_timeout: must not be negative; write a duration such as 30s, or 0s"; got != want {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
	c.Server.WriteTimeout = 0
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("server:\n  tls: {cert_file: %q, key_file: %q}\n", cert, cert) + base
	check(t, src, nil)
	src = fmt.Sprintf("server:\n  tls:\n    cert_file: %q\n    key_file: %q\n", cert, dir) + base
	check(t, src, nil, fmt.Sprintf("t.yaml:4: server.tls.key_file: %q is not a regular file; want a PEM file", dir))
	missing := filepath.Join(dir, "missing.pem")
	src = fmt.Sprintf("server:\n  tls:\n    cert_file: %q\n    key_file: %q\n", missing, cert) + base
	check(t, src, nil, fmt.Sprintf("t.yaml:3: server.tls.cert_file: cannot read %q: no such file or directory; want a readable PEM file", missing))
}

// TestExampleConfig keeps config.example.yaml valid, with and without its
// commented-out legacy issuer, and complete: it mentions every key.
func TestExampleConfig(t *testing.T) {
	const path = "../config.example.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(string(data), -1) {
		t.Setenv(m[1], strings.Repeat("e", 64))
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	if len(cfg.Issuers) != 1 || len(cfg.Routes) != 2 || cfg.Routes[1].PathPrefix != "/healthz" {
		t.Errorf("example: %d issuers, %d routes", len(cfg.Issuers), len(cfg.Routes))
	}
	// The example is a complete single-binary setup: the gateway trusts the
	// built-in issuer, whose client is the gateway's.
	if b := cfg.Issuer; b == nil || b.URL != cfg.Issuers[0].Issuer || len(b.Clients) != 1 || len(b.Users) != 1 ||
		!slices.Equal(b.Clients[0].Audiences, cfg.Issuers[0].Audiences) {
		t.Errorf("example issuer: %+v", b)
	}
	// The login uses the built-in issuer, with the gateway's client.
	if l := cfg.Login; l == nil || l.Issuer != cfg.Issuer.URL || l.ClientID != cfg.Issuer.Clients[0].ID ||
		l.RedirectURL != "http://localhost:8080/oauth2/callback" || l.PostLogoutRedirectURL != "http://localhost:8080/oauth2/signed_out" ||
		!slices.Contains(cfg.Issuer.Clients[0].RedirectURIs, l.RedirectURL) || len(l.Cookie.Secret) != 1 {
		t.Errorf("example login: %+v", l)
	}
	// Uncommented, the legacy issuer must be valid too.
	legacy := regexp.MustCompile(`(?m)^  #(- |  )`).ReplaceAllString(string(data), "  $1")
	cfg, err = config.Parse(path, []byte(legacy), os.LookupEnv)
	if err != nil {
		t.Fatalf("example with the legacy issuer:\n%v", err)
	}
	if len(cfg.Issuers) != 2 || !slices.Equal(cfg.Issuers[1].Algorithms, []string{"HS256"}) {
		t.Errorf("legacy issuer not parsed: %+v", cfg.Issuers)
	}
	// Uncommented, the route's methods and rules must be valid too.
	ruled := regexp.MustCompile(`(?m)^    # (methods: .*|rules:)$`).ReplaceAllString(string(data), "    $1")
	ruled = regexp.MustCompile(`(?m)^    #   `).ReplaceAllString(ruled, "      ")
	cfg, err = config.Parse(path, []byte(ruled), os.LookupEnv)
	if err != nil {
		t.Fatalf("example with methods and rules:\n%v", err)
	}
	if r := cfg.Routes[0]; len(r.Rules) != 4 || r.Rules[0].Name != "staff-read" || r.Rules[3].Deny != "true" ||
		!slices.Equal(r.Methods, []string{"GET", "HEAD", "POST"}) {
		t.Errorf("methods and rules not parsed: %+v %+v", r.Methods, r.Rules)
	}
	for _, key := range schemaKeys(reflect.TypeFor[config.Config]()) {
		if !regexp.MustCompile(`(?m)^[ #-]*` + key + `:`).Match(data) {
			t.Errorf("config.example.yaml does not document %s", key)
		}
	}
}

// schemaKeys lists every yaml key of t and the structs below it.
func schemaKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || !f.IsExported() {
			continue
		}
		keys = append(keys, name)
		ft := f.Type
		if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			keys = append(keys, schemaKeys(ft)...)
		}
	}
	return keys
}

func ExampleParse() {
	src := `routes:
  - name: app
    upstream: http://127.0.0.1:3000
    auth: public
    forward_token: Cookie
`
	_, err := config.Parse("portcullis.yaml", []byte(src), nil)
	fmt.Println(err)
	// Output:
	// portcullis.yaml:5: routes[0].forward_token: header Cookie is reserved for the gateway and the connection; want none, authorization, or a header name such as X-Forwarded-Access-Token
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"minimal.yaml", "full.yaml", "issuer.yaml", "login.yaml", "../../config.example.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		base + "  - <<: *x\n",
		"a: &a [*a]\n",
		"routes:\n  - &r {name: a, upstream: 'http://u', require_claims: {g: [${X}, $${y}]}}\n  - <<: [*r]\n    name: b\n",
		// Regressions: a mapping that aliases and merges itself once left
		// stale value slots; a bad anchored value merged elsewhere once
		// aborted decoding; a tagged key once aborted decoding.
		"routes:\n  - &a\n    max_body_bytes: *a\n  - &a\n    timeout: *a\n    <<: [*a]\n",
		"routes:\n  &a\n  listen: ${X}\n  read_timeout: [a]\n<<: *a\n",
		"!!binary a: b\n" + base,
		"server: {listen: '${EMPTY}:${X}', max_header_bytes: '${X}'}\n" + base,
		"issuer:\n",
		"login:\n",
		"login: {issuer: 'http://localhost/idp', client_id: p, cookie: {secret: [${X}, '${X}${X}']}, prefix: /idp}\nissuer: {url: 'http://localhost/idp'}\n",
		"issuer: {url: 'http://localhost/idp', users: [{username: a, password_hash: x, claims: {1: [a, {b: .nan, ~: !!binary aGk=}], c: &c {d: *c}}}]}\n",
	} {
		f.Add([]byte(seed))
	}
	vars := env(map[string]string{"X": "x", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data, vars)
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("a parsed config does not validate: %v", err)
			}
			return
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T is not a non-empty config.Errors: %v", err, err)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Error(), "fuzz.yaml") {
				t.Fatalf("error does not start with the file name: %q", e.Error())
			}
		}
	})
}
