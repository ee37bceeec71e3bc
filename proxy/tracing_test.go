package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/otlptest"
	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

// tracingConfig is a gateway in front of an upstream, trusting the JWKS
// issuer %[1]s and the proxies %[3]s, exporting spans to %[4]s.
const tracingConfig = `server: {listen: "127.0.0.1:0", trusted_proxies: [%[3]s]}
admin: {listen: off}
issuers:
  - issuer: %[1]q
    audiences: [api]
    algorithms: [RS256, ES256]
routes:
  - name: app
    path_prefix: /
    upstream: %[2]q
    forward_headers: {X-Auth-Request-User: sub}
telemetry:
  tracing:
    enabled: true
    endpoint: %[4]q
    sampler: always_on
%[5]s`

// traceEnv is a traced gateway, its issuer, its upstream (which records the
// traceparent it receives) and the OTLP receiver.
type traceEnv struct {
	t        *testing.T
	gw       *testgw.Gateway
	idp      *testidp.Server
	key      *testidp.Key
	clock    *testclock.Clock
	otlp     *otlptest.Receiver
	logs     *testgw.LogBuffer
	mu       sync.Mutex
	upstream []string // traceparents the upstream saw, "" for none
	baggage  string   // the last baggage it saw
}

func newTraceEnv(t *testing.T, trusted, extra string) *traceEnv {
	t.Helper()
	e := &traceEnv{t: t, key: testidp.NewKey(t, "ES256", "k-1"), clock: testclock.New(time.Now()), logs: &testgw.LogBuffer{}}
	e.idp = testidp.New(t, e.key)
	e.otlp = otlptest.Start(t)
	up := testgw.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.upstream = append(e.upstream, r.Header.Get("Traceparent"))
		e.baggage = r.Header.Get("Baggage")
		e.mu.Unlock()
		testgw.Echo(w, r)
	}))
	e.gw = testgw.Start(t, testgw.Options{Now: e.clock.Now, Logger: testgw.Logger(t, slog.LevelInfo, e.logs),
		Config: func(string) string { return fmt.Sprintf(tracingConfig, e.idp.Issuer, up, trusted, e.otlp.URL, extra) }})
	e.waitReady()
	return e
}

// waitReady sends a first request, which waits for the issuer's key set
// to load in the background (unless the test stops the upstream).
func (e *traceEnv) waitReady() {
	e.t.Helper()
	if code := e.get("/warm-up", http.Header{"Authorization": {"Bearer " + e.token(e.key)}}); code != http.StatusOK {
		e.t.Fatalf("first request: %d", code)
	}
}

func (e *traceEnv) token(k *testidp.Key) string {
	return testidp.Mint(e.t, k, e.idp.Claims("alice", e.clock.Now()), nil)
}

// get sends a request with hdr and returns its status.
func (e *traceEnv) get(path string, hdr http.Header) int {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.gw.URL+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// flush exports every span ended so far.
func (e *traceEnv) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.gw.FlushTraces(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *traceEnv) lastUpstream() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.upstream) == 0 {
		return ""
	}
	return e.upstream[len(e.upstream)-1]
}

// one returns the only span named name, failing otherwise.
func one(t *testing.T, spans []otlptest.Span, name string) otlptest.Span {
	t.Helper()
	var out []otlptest.Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	if len(out) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("%d spans named %q among %q, want 1", len(out), name, names)
	}
	return out[0]
}

// traceparent is "00-<trace>-<span>-<flags>".
var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

func TestTraceSpanTree(t *testing.T) {
	e := newTraceEnv(t, "", "")
	e.flush()
	e.otlp.Reset() // the start-up key set load is a trace of its own

	tok := e.token(e.key)
	const secret = "query-s3cr3t-value"
	if code := e.get("/orders/7?api_key="+secret, http.Header{"Authorization": {"Bearer " + tok},
		"Cookie": {"other=c00kie-s3cr3t"}}); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	e.flush()
	spans := e.otlp.Spans()
	srv := one(t, spans, "GET app")
	auth := one(t, spans, "portcullis.authenticate")
	up := one(t, spans, "GET")
	if srv.Parent() != "" || srv.Kind.String() != "SPAN_KIND_SERVER" {
		t.Errorf("server span: parent %q kind %s, want a root server span", srv.Parent(), srv.Kind)
	}
	for _, s := range []otlptest.Span{auth, up} {
		if s.TraceID() != srv.TraceID() || s.Parent() != srv.SpanID() {
			t.Errorf("span %s: trace %s parent %s, want a child of %s/%s", s.Name, s.TraceID(), s.Parent(), srv.TraceID(), srv.SpanID())
		}
	}
	if up.Kind.String() != "SPAN_KIND_CLIENT" || up.Attr("http.response.status_code") == "" {
		t.Errorf("upstream span: kind %s, attributes %v", up.Kind, up.Attributes)
	}
	for k, want := range map[string]string{"http.request.method": "GET", "url.path": "/orders/7", "portcullis.route": "app",
		"portcullis.outcome": "allowed"} {
		if got := srv.Attr(k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	if auth.Attr("portcullis.issuer") != e.idp.Issuer || auth.Attr("portcullis.token_cache.hit") != "false" {
		t.Errorf("authenticate span attributes %v", auth.Attributes)
	}
	// The upstream received the upstream span's context.
	m := traceparentRE.FindStringSubmatch(e.lastUpstream())
	if m == nil || m[1] != srv.TraceID() || m[2] != up.SpanID() {
		t.Errorf("upstream saw traceparent %q, want 00-%s-%s-01", e.lastUpstream(), srv.TraceID(), up.SpanID())
	}
	// The access log names the trace.
	if !strings.Contains(e.logs.String(), "trace_id="+srv.TraceID()) {
		t.Errorf("no trace_id=%s in the access log:\n%s", srv.TraceID(), e.logs)
	}

	// The same token again: a cache hit. Then a token signed with a key
	// the gateway has not seen: its refetch of the key set is a span of
	// the request's trace, under the authentication.
	e.get("/x", http.Header{"Authorization": {"Bearer " + tok}}) // the cache admits a token seen twice
	e.flush()
	e.otlp.Reset()
	e.get("/x", http.Header{"Authorization": {"Bearer " + tok}})
	e.flush()
	if hit := one(t, e.otlp.Spans(), "portcullis.authenticate").Attr("portcullis.token_cache.hit"); hit != "true" {
		t.Errorf("second use of the token: cache hit %q", hit)
	}
	e.otlp.Reset()
	rotated := testidp.NewKey(t, "ES256", "k-2")
	e.idp.Publish(e.key, rotated)
	e.clock.Advance(time.Minute) // past the refetch interval
	if code := e.get("/x", http.Header{"Authorization": {"Bearer " + e.token(rotated)}}); code != http.StatusOK {
		t.Fatalf("token of the rotated key: %d", code)
	}
	e.flush()
	spans = e.otlp.Spans()
	auth = one(t, spans, "portcullis.authenticate")
	fetch := one(t, spans, "portcullis.jwks.fetch")
	if fetch.TraceID() != auth.TraceID() || fetch.Parent() != auth.SpanID() {
		t.Errorf("key set fetch: trace %s parent %s, want a child of the authentication %s", fetch.TraceID(), fetch.Parent(), auth.SpanID())
	}
	if fetch.Attr("portcullis.jwks.result") != "ok" || fetch.Attr("portcullis.issuer") != e.idp.Issuer {
		t.Errorf("key set fetch attributes %v", fetch.Attributes)
	}

	// A refused token: the reason, never the token.
	e.otlp.Reset()
	bad := tok[:len(tok)-4] + "AAAA"
	e.get("/x?access_token="+bad, http.Header{"Authorization": {"Bearer " + bad}})
	e.flush()
	if r := one(t, e.otlp.Spans(), "portcullis.authenticate").Attr("portcullis.auth.reason"); r != "signature" {
		t.Errorf("refused token: reason %q, want signature", r)
	}
	if r := one(t, e.otlp.Spans(), "GET app").Attr("portcullis.outcome"); r != "unauthenticated" {
		t.Errorf("refused token: outcome %q", r)
	}
	noSecrets(t, e, secret, "c00kie-s3cr3t", tok, bad, tok[strings.LastIndex(tok, ".")+1:])
}

// noSecrets fails if any text of any span received holds one of secrets.
func noSecrets(t *testing.T, e *traceEnv, secrets ...string) {
	t.Helper()
	e.flush()
	all := e.otlp.Spans()
	if len(all) == 0 {
		t.Fatal("no spans to check")
	}
	for _, s := range all {
		for _, text := range s.Texts() {
			for _, sec := range secrets {
				if strings.Contains(text, sec) {
					t.Errorf("span %s carries %q in %q", s.Name, sec, text)
				}
			}
		}
	}
}

func TestTraceIncomingContext(t *testing.T) {
	const (
		incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		incomingSpan  = "00f067aa0ba902b7"
	)
	parent := "00-" + incomingTrace + "-" + incomingSpan + "-01"
	for _, tc := range []struct {
		name, trusted, extra string
		continued            bool
	}{
		{"trusted proxy", "127.0.0.1/32", "", true},
		{"untrusted client", "10.0.0.0/8", "", false},
		{"trust_incoming all", "", "    trust_incoming: all\n", true},
		{"trust_incoming none", "127.0.0.1/32", "    trust_incoming: none\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTraceEnv(t, tc.trusted, tc.extra)
			e.flush()
			e.otlp.Reset()
			e.get("/x", http.Header{"Authorization": {"Bearer " + e.token(e.key)}, "Traceparent": {parent}, "Tracestate": {"vendor=x"},
				"Baggage": {"tenant=acme"}})
			e.flush()
			srv := one(t, e.otlp.Spans(), "GET app")
			up := one(t, e.otlp.Spans(), "GET")
			m := traceparentRE.FindStringSubmatch(e.lastUpstream())
			if m == nil || m[1] != srv.TraceID() || m[2] != up.SpanID() {
				t.Fatalf("upstream saw traceparent %q, want the upstream span's, %s-%s", e.lastUpstream(), srv.TraceID(), up.SpanID())
			}
			e.mu.Lock()
			baggage := e.baggage
			e.mu.Unlock()
			if tc.continued {
				if srv.TraceID() != incomingTrace || srv.Parent() != incomingSpan {
					t.Fatalf("server span %s parent %q, want the incoming %s/%s continued", srv.TraceID(), srv.Parent(), incomingTrace, incomingSpan)
				}
				if baggage != "tenant=acme" {
					t.Fatalf("continued trace: the upstream got baggage %q, want tenant=acme", baggage)
				}
				return
			}
			if baggage != "" {
				t.Fatalf("trace not continued: the upstream got the sender's baggage %q", baggage)
			}
			if srv.TraceID() == incomingTrace || srv.Parent() != "" {
				t.Fatalf("server span %s parent %q: the untrusted traceparent was continued", srv.TraceID(), srv.Parent())
			}
			if len(srv.Links) != 1 || fmt.Sprintf("%x", srv.Links[0].TraceId) != incomingTrace {
				t.Fatalf("links %v, want one to the incoming trace", srv.Links)
			}
		})
	}
}

// TestTraceExporterDown: with the collector unreachable, requests are
// served as ever, and the spans that could not be exported are counted.
func TestTraceExporterDown(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200") // ms, retries included
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	e := &traceEnv{t: t, key: testidp.NewKey(t, "ES256", "k-1"), clock: testclock.New(time.Now()), logs: &testgw.LogBuffer{}}
	e.idp = testidp.New(t, e.key)
	up := testgw.Upstream(t)
	e.gw = testgw.Start(t, testgw.Options{Now: e.clock.Now, Logger: testgw.Logger(t, slog.LevelInfo, e.logs),
		Config: func(string) string { return fmt.Sprintf(tracingConfig, e.idp.Issuer, up, "", deadURL, "") }})
	e.waitReady()
	start := time.Now()
	for range 5 {
		if code := e.get("/x", http.Header{"Authorization": {"Bearer " + e.token(e.key)}}); code != http.StatusOK {
			t.Fatalf("status %d with the collector down", code)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("5 requests took %s with the collector down", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.gw.FlushTraces(ctx) // fails: nowhere to export to
	rec := httptest.NewRecorder()
	e.gw.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	m := regexp.MustCompile(`portcullis_trace_export_failures_total\{reason="export"\} (\d+)`).FindStringSubmatch(rec.Body.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("export failures not counted: %v", m)
	}
}

// TestTraceOff: without tracing, nothing starts or injects a traceparent,
// and a client's own passes through untouched.
func TestTraceOff(t *testing.T) {
	e := &traceEnv{t: t, key: testidp.NewKey(t, "ES256", "k-1"), clock: testclock.New(time.Now()), logs: &testgw.LogBuffer{}}
	e.idp = testidp.New(t, e.key)
	up := testgw.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.upstream = append(e.upstream, r.Header.Get("Traceparent"))
		e.mu.Unlock()
	}))
	cfg := strings.Replace(fmt.Sprintf(tracingConfig, e.idp.Issuer, up, "", "http://127.0.0.1:1", ""), "enabled: true", "enabled: false", 1)
	e.gw = testgw.Start(t, testgw.Options{Now: e.clock.Now, Logger: testgw.Logger(t, slog.LevelInfo, e.logs),
		Config: func(string) string { return cfg }})
	e.waitReady()
	e.get("/x", http.Header{"Authorization": {"Bearer " + e.token(e.key)}})
	if tp := e.lastUpstream(); tp != "" {
		t.Errorf("tracing off, the upstream got traceparent %q", tp)
	}
	own := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	e.get("/x", http.Header{"Authorization": {"Bearer " + e.token(e.key)}, "Traceparent": {own}})
	if tp := e.lastUpstream(); tp != own {
		t.Errorf("tracing off, the client's traceparent became %q", tp)
	}
	if strings.Contains(e.logs.String(), "trace_id=") {
		t.Errorf("tracing off, the access log has a trace_id:\n%s", e.logs)
	}
}

// TestTraceLoginAndIssuer: the browser login with the built-in issuer on
// Redis. The code exchange is a token-endpoint span under the callback's
// request, with the issuer's Redis commands under it; a session refresh is
// a span of the request that needed it.
func TestTraceLoginAndIssuer(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	otlp := otlptest.Start(t)
	clock := testclock.New(time.Now())
	up := testgw.Upstream(t)
	yml := fmt.Sprintf(testgw.Login{}.YAML(), "%[1]s", up, testgw.AliceHash())
	yml = strings.Replace(yml, "issuer:\n  url: \"%[1]s/idp\"\n", "issuer:\n  url: \"%[1]s/idp\"\n  store: "+redisURL+"\n", 1)
	yml += fmt.Sprintf("telemetry:\n  tracing: {enabled: true, endpoint: %q, sampler: always_on}\n", otlp.URL)
	g := testgw.Start(t, testgw.Options{Now: clock.Now, Config: func(base string) string { return fmt.Sprintf(yml, base) }})
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.FlushTraces(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b := testgw.NewBrowser(t)
	if res, _ := b.Visit(g.URL, g.URL+"/page"); res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	flush()
	spans := otlp.Spans()
	var callback otlptest.Span
	for _, s := range otlp.Named("GET login") {
		if s.Attr("url.path") == "/oauth2/callback" {
			callback = s
		}
	}
	tokenSpan := one(t, spans, "portcullis.issuer.token")
	if callback.Span == nil || tokenSpan.Parent() != callback.SpanID() || tokenSpan.Attr("oauth.grant_type") != "authorization_code" ||
		tokenSpan.Attr("oauth.client_id") != "portcullis" {
		t.Fatalf("the code exchange's token-endpoint span %v is not under the callback %v", tokenSpan, callback)
	}
	redisSpans := 0
	for _, s := range spans {
		if s.Parent() == tokenSpan.SpanID() && s.Attr("db.system.name") == "redis" && s.Kind.String() == "SPAN_KIND_CLIENT" {
			redisSpans++
		}
	}
	if redisSpans == 0 {
		t.Fatal("the code exchange's Redis commands have no spans")
	}

	// Past the access token's expiry, the next page refreshes the session.
	otlp.Reset()
	clock.Advance(16 * time.Minute)
	if res, _ := b.Do("GET", g.URL+"/page", nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("after expiry: %d", res.StatusCode)
	}
	flush()
	spans = otlp.Spans()
	page := one(t, spans, "GET app")
	refresh := one(t, spans, "portcullis.session.refresh")
	if refresh.TraceID() != page.TraceID() || refresh.Parent() != page.SpanID() {
		t.Fatalf("refresh span trace %s parent %s, want a child of the page's %s", refresh.TraceID(), refresh.Parent(), page.SpanID())
	}
	grant := one(t, spans, "portcullis.issuer.token")
	if grant.Parent() != refresh.SpanID() || grant.Attr("oauth.grant_type") != "refresh_token" {
		t.Fatalf("refresh's token request: parent %s grant %q", grant.Parent(), grant.Attr("oauth.grant_type"))
	}
	// Nothing of the session cookie, the tokens or the code in any span.
	var secrets []string
	for _, ck := range b.Client.Jar.Cookies(mustURL(t, g.URL)) {
		secrets = append(secrets, ck.Value)
	}
	for _, s := range spans {
		for _, text := range s.Texts() {
			for _, sec := range secrets {
				if len(sec) > 8 && strings.Contains(text, sec) {
					t.Errorf("span %s carries a cookie value in %q", s.Name, text)
				}
			}
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestReadmeTracingExample runs README.md's tracing example as written,
// its endpoint pointed at a receiver: a request continuing a sampled trace
// from a trusted proxy is traced whatever the ratio, as parentbased
// sampling promises.
func TestReadmeTracingExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "## Tracing\n")
	_, block, ok := strings.Cut(sec, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 || !strings.Contains(block, "endpoint: http://otel-collector:4318") {
		t.Fatalf("README.md: no tracing example with the collector's endpoint under ## Tracing:\n%s", block)
	}
	otlp := otlptest.Start(t)
	key := testidp.NewKey(t, "ES256", "k-1")
	idp := testidp.New(t, key)
	up := testgw.Upstream(t)
	cfg := fmt.Sprintf(`server: {listen: "127.0.0.1:0", trusted_proxies: [127.0.0.1/32]}
admin: {listen: off}
issuers:
  - {issuer: %q, audiences: [api], algorithms: [ES256]}
routes:
  - {name: app, path_prefix: /, upstream: %q}
`, idp.Issuer, up) + strings.Replace(block, "http://otel-collector:4318", otlp.URL, 1)
	g := testgw.Start(t, testgw.Options{Config: func(string) string { return cfg }})
	req, _ := http.NewRequest("GET", g.URL+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+testidp.Mint(t, key, idp.Claims("alice", time.Now()), nil))
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.FlushTraces(ctx); err != nil {
		t.Fatal(err)
	}
	srv := one(t, otlp.Spans(), "GET app")
	if srv.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, server span in trace %s", res.StatusCode, srv.TraceID())
	}
}

// BenchmarkTracing is a cached-token request through the gateway with
// tracing off, on sampling nothing, and on sampling everything (exporting
// to a collector that discards), beside a plain httputil.ReverseProxy:
//
//	go test -run=^$ -bench=Tracing -benchmem ./proxy/
func BenchmarkTracing(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	key := testidp.NewKey(b, "ES256", "k-1")
	idp := testidp.New(b, key)
	up := testgw.Serve(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	tok := testidp.Mint(b, key, idp.Claims("alice", time.Now()), nil)
	target, _ := url.Parse(up)
	plain := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}}
	gateway := func(tracing string) http.Handler {
		cfg := fmt.Sprintf(tracingConfig, idp.Issuer, up, "", sink.URL, "")
		cfg = strings.Replace(cfg, "    enabled: true\n    endpoint: "+strconv.Quote(sink.URL)+"\n    sampler: always_on\n", tracing, 1)
		return testgw.Start(b, testgw.Options{Config: func(string) string { return cfg }})
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"plain", plain},
		{"off", gateway("    enabled: false\n")},
		{"sampled-0", gateway("    enabled: true\n    endpoint: " + strconv.Quote(sink.URL) + "\n    sampler: traceidratio\n    sampler_arg: '0'\n")},
		{"sampled-1", gateway("    enabled: true\n    endpoint: " + strconv.Quote(sink.URL) + "\n    sampler: always_on\n")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("GET", "http://gw.test/orders/7", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					rec := httptest.NewRecorder()
					c.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
