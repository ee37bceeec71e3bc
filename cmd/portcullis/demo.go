package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/serve"
)

// demoConfig is the whole demo: the built-in issuer with one user, browser
// login through it, and two routes to the echo upstream.
// %[1]s public URL, %[2]s listen, %[3]s admin, %[4]s upstream, %[5]s the
// issuer's signing section. The secrets are environment placeholders (see
// demoSecrets), so the text can be written out as it runs.
const demoConfig = `# The configuration portcullis demo runs. Its secrets come from the
# environment: demo prints the values it chose.
server: {listen: "%[2]s", public_url: "%[1]s"}
admin: {listen: "%[3]s"}
log: {level: info}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [demo-api]
    algorithms: [ES256]
issuer:
  url: "%[1]s/idp"
%[5]s  clients:
    - id: portcullis
      name: "Demo app"
      secret: "${PORTCULLIS_CLIENT_SECRET}"
      first_party: true
      redirect_uris: ["%[1]s/oauth2/callback"]
      post_logout_redirect_uris: ["%[1]s/"]
      scopes: [openid, profile, email, offline_access, read]
      audiences: [demo-api]
    - id: cli
      secret: "${PORTCULLIS_CLIENT_SECRET}"
      grant_types: [client_credentials]
      scopes: [read]
      audiences: [demo-api]
  scopes: {read: "Read your data"}
  users:
    - username: demo
      password_hash: "${PORTCULLIS_DEMO_PASSWORD_HASH}"
      claims: {email: demo@example.com, name: Demo User, groups: [admin, dev]}
login:
  issuer: "%[1]s/idp"
  client_id: portcullis
  client_secret: "${PORTCULLIS_CLIENT_SECRET}"
  scopes: [openid, profile, email, offline_access, read]
  cookie: {secret: "${PORTCULLIS_COOKIE_SECRET}", secure: false}
routes:
  - name: public
    path_prefix: /public
    upstream: "%[4]s"
    auth: public
  - name: app
    path_prefix: /
    upstream: "%[4]s"
    require_scopes: [read]
    forward_headers:
      X-Auth-Request-User: sub
      X-Auth-Request-Email: email
      X-Auth-Request-Groups: groups
`

// demo runs the built-in issuer, the gateway with browser login, and an
// upstream page that shows the identity it receives, all on loopback.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address")
	adminAddr := fs.String("admin", "127.0.0.1:9090", "admin address")
	write := fs.String("write-config", "", "also write the configuration the demo runs to this file, and its signing keys beside it, for check, explain and token")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: %w (try --listen 127.0.0.1:0)", err)
	}
	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo: %w (try --admin 127.0.0.1:0)", err)
	}
	upURL, stopUp, err := serveLoopback(http.HandlerFunc(echo))
	if err != nil {
		return err
	}
	defer stopUp()

	password := secret(12)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	public := "http://localhost:" + port
	env := map[string]string{
		"PORTCULLIS_CLIENT_SECRET":      secret(24),
		"PORTCULLIS_COOKIE_SECRET":      secret(32),
		"PORTCULLIS_DEMO_PASSWORD_HASH": string(hash),
	}
	signing, name := "", "demo.yaml"
	if *write != "" {
		// Keys on disk, so that "portcullis token" signs with the key the
		// running demo publishes.
		keyDir := strings.TrimSuffix(*write, filepath.Ext(*write)) + "-keys"
		if err := os.MkdirAll(keyDir, 0o700); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		signing, name = fmt.Sprintf("  signing: {key_dir: %q}\n", keyDir), *write
	}
	yml := fmt.Sprintf(demoConfig, public, ln.Addr().String(), adminLn.Addr().String(), upURL, signing)
	cfg, err := config.Parse(name, []byte(yml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return err
	}
	if *write != "" {
		if err := os.WriteFile(*write, []byte(strings.TrimPrefix(yml, "\n")), 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	log := newLogger(cfg.Log, stderr)
	gw, err := serve.New(ctx, serve.Options{Config: cfg, Logger: log})
	if err != nil {
		return err
	}
	tok, err := gw.Issuer().MintAccessToken("cli", "build-bot", []string{"read"}, time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `portcullis demo

  Open %[1]s/ in a browser and sign in:

    username  demo
    password  %[2]s

  The page behind the gateway shows the identity headers it received.
  %[1]s/oauth2/sign_out signs out; %[1]s/public/ needs no login.

  API clients get 401 instead of a login page. A token for a machine client:

    TOKEN=%[3]s
    curl -i %[1]s/api                                         # 401
    curl -i -H "Authorization: Bearer $TOKEN" %[1]s/api       # 200
    curl -i -H "X-Auth-Request-User: mallory" %[1]s/public/   # the spoofed header never arrives

  The built-in issuer:  %[1]s/idp/.well-known/openid-configuration
  Admin:                http://%[4]s/metrics  /healthz  /readyz

%[5]s  Ctrl-C stops the demo.
`, public, password, tok, adminLn.Addr().String(), tryConfig(*write, env))
	return gw.Serve(ctx, ln, adminLn)
}

// tryConfig tells how to use the written configuration, "" without one.
func tryConfig(path string, env map[string]string) string {
	if path == "" {
		return ""
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "  The configuration it runs is in %s. In another terminal:\n\n", path)
	for _, k := range names {
		fmt.Fprintf(&b, "    export %s='%s'\n", k, env[k])
	}
	fmt.Fprintf(&b, `    portcullis check --config %[1]s
    TOKEN=$(portcullis token --config %[1]s --client cli --sub build-bot --scope read)
    portcullis explain --config %[1]s --route app "$TOKEN"

`, path)
	return b.String()
}

// secret returns n random bytes, base64url.
func secret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serveLoopback serves h on a fresh loopback port.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

var echoPage = template.Must(template.New("echo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Behind portcullis</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#111827}
table{border-collapse:collapse;width:100%}td,th{text-align:left;border-bottom:1px solid #e5e7eb;padding:.4rem .5rem;vertical-align:top}
th{width:16rem}code{word-break:break-all}.who{background:#ecfdf5;border:1px solid #a7f3d0;border-radius:8px;padding:.75rem 1rem}</style>
</head><body>
<h1>Hello{{with .User}}, <span id="user">{{.}}</span>{{end}}</h1>
<p class="who">This page is an upstream application with no authentication of its own.
portcullis let the request through and told it who you are:</p>
<table id="identity">{{range .Identity}}<tr><th>{{.Name}}</th><td><code>{{.Value}}</code></td></tr>{{end}}</table>
<h2>Everything else it received</h2>
<p><code>{{.Method}} {{.Path}}</code></p>
<table>{{range .Other}}<tr><th>{{.Name}}</th><td><code>{{.Value}}</code></td></tr>{{end}}</table>
<p><a href="/oauth2/sign_out">Sign out</a></p>
</body></html>`))

type headerRow struct{ Name, Value string }

// echo shows what the upstream received: as a page for browsers, as text
// for everyone else.
func echo(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	var ident, other []headerRow
	for _, k := range names {
		row := headerRow{k, strings.Join(r.Header[k], ", ")}
		if strings.HasPrefix(k, "X-Auth-Request-") {
			ident = append(ident, row)
		} else {
			other = append(other, row)
		}
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.RequestURI())
		for _, h := range append(ident, other...) {
			fmt.Fprintf(w, "%s: %s\n", h.Name, h.Value)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = echoPage.Execute(w, map[string]any{
		"User": r.Header.Get("X-Auth-Request-User"), "Identity": ident, "Other": other,
		"Method": r.Method, "Path": r.URL.RequestURI(),
	})
}
