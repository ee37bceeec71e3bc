package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/dpop/prooftest"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

// dpopRoute takes DPoP-bound tokens only.
const dpopRoute = `  - name: dpoponly
    path_prefix: /dpoponly
    upstream: {{upstream}}
    require_sender_constraint: dpop
    forward_headers: {X-Auth-Request-User: sub}
`

// sendDPoP sends token as "Authorization: DPoP" with proof (none when "").
func (e *env) sendDPoP(method, path, token, proof string) *http.Response {
	e.t.Helper()
	h := http.Header{"Authorization": {"DPoP " + token}}
	if proof != "" {
		h.Set("DPoP", proof)
	}
	return e.do(method, path, "", h)
}

func TestDPoPBoundTokens(t *testing.T) {
	e := newEnv(t, dpopRoute)
	k, other := prooftest.NewKey(t), prooftest.NewKey(t)
	now := e.clock.Now()
	c := e.claims("alice")
	c["cnf"] = map[string]any{"jkt": k.JKT}
	bound := e.mint("ES256", c, nil)
	plain := e.mint("ES256", e.claims("bob"), nil)
	u := e.url + "/orders/7"

	// A good proof passes, twice over with fresh proofs (the second from
	// the token cache); the upstream sees neither token nor proof.
	for range 2 {
		got := e.echo(e.sendDPoP("GET", "/orders/7", bound, k.Proof(t, "GET", u, bound, now, nil)))
		if http.Header(got.Headers).Get("X-Auth-Request-User") != "alice" || http.Header(got.Headers).Get("Authorization") != "" || http.Header(got.Headers).Get("Dpop") != "" {
			t.Fatalf("upstream saw %v", got.Headers)
		}
	}
	replayed := k.Proof(t, "GET", u, bound, now, nil)
	e.echo(e.sendDPoP("GET", "/orders/7", bound, replayed))

	cases := []struct {
		name, proof, token string
		bearer             bool
		code               string
	}{
		{"replayed", replayed, bound, false, "invalid_dpop_proof"},
		{"wrong htm", k.Proof(t, "POST", u, bound, now, nil), bound, false, "invalid_dpop_proof"},
		{"wrong htu", k.Proof(t, "GET", e.url+"/orders/8", bound, now, nil), bound, false, "invalid_dpop_proof"},
		{"proof for another key", other.Proof(t, "GET", u, bound, now, nil), bound, false, "invalid_token"},
		{"stale iat", k.Proof(t, "GET", u, bound, now.Add(-5*time.Minute), nil), bound, false, "invalid_dpop_proof"},
		{"missing ath", k.Proof(t, "GET", u, "", now, nil), bound, false, "invalid_dpop_proof"},
		{"no proof", "", bound, false, "invalid_dpop_proof"},
		{"bound token as Bearer", k.Proof(t, "GET", u, bound, now, nil), bound, true, "invalid_token"},
		{"unbound token as DPoP", k.Proof(t, "GET", u, plain, now, nil), plain, false, "invalid_token"},
	}
	for _, tc := range cases {
		var res *http.Response
		if tc.bearer {
			res = e.do("GET", "/orders/7", tc.token, http.Header{"DPoP": {tc.proof}})
		} else {
			res = e.sendDPoP("GET", "/orders/7", tc.token, tc.proof)
		}
		chal := strings.Join(res.Header.Values("WWW-Authenticate"), " | ")
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(chal, `DPoP error="`+tc.code+`"`) ||
			!strings.Contains(chal, `algs="ES256 ES384 RS256 PS256 EdDSA Ed25519"`) || !strings.Contains(chal, "Bearer realm=") {
			t.Errorf("%s: %d %s", tc.name, res.StatusCode, chal)
		}
	}

	// require_sender_constraint: dpop refuses bearer tokens, takes bound ones.
	if res := e.do("GET", "/dpoponly/x", plain, nil); res.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(strings.Join(res.Header.Values("WWW-Authenticate"), " "), `DPoP error="invalid_token"`) {
		t.Errorf("bearer token on a DPoP-only route: %d", res.StatusCode)
	}
	e.echo(e.sendDPoP("GET", "/dpoponly/x", bound, k.Proof(t, "GET", e.url+"/dpoponly/x", bound, now, nil)))
	// Unbound bearer tokens still pass elsewhere.
	e.echo(e.do("GET", "/orders/7", plain, nil))
	// A certificate-bound token cannot be checked here: refused.
	c = e.claims("carol")
	c["cnf"] = map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
	if res := e.do("GET", "/orders/7", e.mint("ES256", c, nil), nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("certificate-bound token: %d", res.StatusCode)
	}
}

// BenchmarkDPoP compares distinct DPoP-bound ES256 tokens, each with its
// proof, with distinct bearer ES256 tokens and a plain ReverseProxy, in
// the same run (no token cache hits: every token is new):
//
//	go test -run=^$ -bench=DPoP -benchmem ./proxy/
func BenchmarkDPoP(b *testing.B) {
	e := newEnv(b, "")
	target, _ := url.Parse(e.up)
	plain := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }}
	k := prooftest.NewKey(b)
	now := e.clock.Now()
	for _, mode := range []string{"plain", "bearer-distinct", "dpop-distinct"} {
		b.Run(mode, func(b *testing.B) {
			reqs := make([]*http.Request, b.N)
			for i := range reqs {
				req := httptest.NewRequest("GET", "http://127.0.0.1:18080/orders/7", nil)
				c := e.claims("alice")
				c["jti"] = strconv.Itoa(i) + mode
				switch mode {
				case "bearer-distinct":
					req.Header.Set("Authorization", "Bearer "+e.mint("ES256", c, nil))
				case "dpop-distinct":
					c["cnf"] = map[string]any{"jkt": k.JKT}
					tok := e.mint("ES256", c, nil)
					req.Header.Set("Authorization", "DPoP "+tok)
					req.Header.Set("DPoP", k.Proof(b, "GET", "http://127.0.0.1:18080/orders/7", tok, now, nil))
				}
				reqs[i] = req
			}
			var h http.Handler = e.gw
			if mode == "plain" {
				h = plain
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, reqs[next.Add(1)-1])
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d %s", rec.Code, rec.Header().Values("WWW-Authenticate"))
					}
				}
			})
		})
	}
}

// TestReadmeDPoPExample runs README.md's DPoP example as written, with a
// real upstream and an issuer to trust.
func TestReadmeDPoPExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "## Sender-constrained tokens (DPoP)")
	_, block, _ := strings.Cut(sec, "```yaml\n")
	block, _, ok := strings.Cut(block, "```")
	if !ok || !strings.Contains(block, `upstream: "http://127.0.0.1:9000"`) || !strings.Contains(block, "require_sender_constraint: dpop") {
		t.Fatalf("README.md's DPoP example changed:\n%s", block)
	}
	idp, keys := testgw.NewIssuer(t)
	up := upstream(t)
	g := testgw.Start(t, testgw.Options{Config: func(base string) string {
		return strings.Replace(strings.Replace(block, "http://127.0.0.1:9000", up, 1), "server:\n", "server:\n  public_url: \""+base+"\"\n", 1) +
			"admin: {listen: off}\nissuers:\n  - issuer: \"" + idp.Issuer + "\"\n    audiences: [api]\n    algorithms: [ES256]\n"
	}})
	k := prooftest.NewKey(t)
	c := testgw.Claims(idp, "alice", time.Now())
	c["cnf"] = map[string]any{"jkt": k.JKT}
	bound := testidp.Mint(t, keys["ES256"], c, nil)
	plain := testidp.Mint(t, keys["ES256"], testgw.Claims(idp, "bob", time.Now()), nil)
	u := g.URL + "/payments/1"
	send := func(scheme, tok, proof string) int {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", scheme+" "+tok)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := send("DPoP", bound, k.Proof(t, "GET", u, bound, time.Now(), nil)); st != 200 {
		t.Errorf("bound token with its proof: %d", st)
	}
	if st := send("Bearer", plain, ""); st != 401 {
		t.Errorf("bearer token on the DPoP-only route: %d", st)
	}
}

// TestDPoPNonce: with server.dpop.nonce, a proof without the gateway's
// nonce gets use_dpop_nonce and a DPoP-Nonce to retry with (RFC 9449 §8).
func TestDPoPNonce(t *testing.T) {
	idp, keys := testgw.NewIssuer(t)
	up := upstream(t)
	g := testgw.Start(t, testgw.Options{Config: func(base string) string {
		return fmt.Sprintf("server:\n  public_url: %q\n  dpop: {nonce: true}\nadmin: {listen: off}\nissuers:\n  - issuer: %q\n    audiences: [api]\n    algorithms: [ES256]\nroutes:\n  - name: app\n    path_prefix: /\n    upstream: %q\n", base, idp.Issuer, up)
	}})
	k := prooftest.NewKey(t)
	c := testgw.Claims(idp, "alice", time.Now())
	c["cnf"] = map[string]any{"jkt": k.JKT}
	tok := testidp.Mint(t, keys["ES256"], c, nil)
	u := g.URL + "/x"
	send := func(proof string) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := send(k.Proof(t, "GET", u, tok, time.Now(), nil))
	nonce := res.Header.Get("DPoP-Nonce")
	if res.StatusCode != 401 || nonce == "" || !strings.Contains(strings.Join(res.Header.Values("WWW-Authenticate"), " "), `DPoP error="use_dpop_nonce"`) {
		t.Fatalf("without the nonce: %d %q %v", res.StatusCode, nonce, res.Header.Values("WWW-Authenticate"))
	}
	if res := send(k.Proof(t, "GET", u, tok, time.Now(), func(_, c map[string]any) { c["nonce"] = nonce })); res.StatusCode != 200 {
		t.Errorf("with the nonce: %d %v", res.StatusCode, res.Header.Values("WWW-Authenticate"))
	}
	if res := send(k.Proof(t, "GET", u, tok, time.Now(), func(_, c map[string]any) { c["nonce"] = "made-up" })); res.StatusCode != 401 {
		t.Errorf("with a made-up nonce: %d", res.StatusCode)
	}
}

// TestDPoPReplayAcrossReplicas: with server.dpop.replay_store on Redis, a
// proof used at one replica is refused at the other.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	idp, keys := testgw.NewIssuer(t)
	up := upstream(t)
	ln, pub := testgw.Listen(t)
	conf := func(string) string {
		return fmt.Sprintf("server:\n  public_url: %q\n  dpop: {replay_store: %q}\nadmin: {listen: off}\nissuers:\n  - issuer: %q\n    audiences: [api]\n    algorithms: [ES256]\nroutes:\n  - name: app\n    path_prefix: /\n    upstream: %q\n", pub, redisURL, idp.Issuer, up)
	}
	a := testgw.Start(t, testgw.Options{Listener: ln, Config: conf})
	b := testgw.Start(t, testgw.Options{Config: conf})
	k := prooftest.NewKey(t)
	c := testgw.Claims(idp, "alice", time.Now())
	c["cnf"] = map[string]any{"jkt": k.JKT}
	tok := testidp.Mint(t, keys["ES256"], c, nil)
	// Both answer for the public URL, as behind one load balancer.
	proof := k.Proof(t, "GET", pub+"/x", tok, time.Now(), nil)
	for i, base := range []string{a.URL, b.URL} {
		req, _ := http.NewRequest("GET", base+"/x", nil)
		req.Host = strings.TrimPrefix(pub, "http://")
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := []int{200, 401}[i]; res.StatusCode != want {
			t.Errorf("replica %d: %d, want %d", i, res.StatusCode, want)
		}
	}
}

// TestBuiltinIssuerDPoPTokensAtTheGateway: the built-in issuer binds a
// token to the key of the token request's proof; the gateway then takes
// it with a proof of that key only.
func TestBuiltinIssuerDPoPTokensAtTheGateway(t *testing.T) {
	g := startResourceGateway(t)
	k := prooftest.NewKey(t)
	v := url.Values{"grant_type": {"client_credentials"}, "resource": {g.URL + "/mcp"}}
	req, _ := http.NewRequest("POST", g.URL+"/idp/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("machine", "machine-secret-0123456789")
	req.Header.Set("DPoP", k.Proof(t, "POST", g.URL+"/idp/token", "", time.Now(), nil))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	tok, _ := out["access_token"].(string)
	if res.StatusCode != 200 || out["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v", res.StatusCode, out)
	}
	call := func(scheme, proof string) int {
		r, _ := http.NewRequest("GET", g.URL+"/mcp/x", nil)
		r.Header.Set("Authorization", scheme+" "+tok)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := call("DPoP", k.Proof(t, "GET", g.URL+"/mcp/x", tok, time.Now(), nil)); st != 200 {
		t.Errorf("with its proof: %d", st)
	}
	if st := call("Bearer", ""); st != 401 {
		t.Errorf("as a bearer token: %d", st)
	}
	if st := call("DPoP", prooftest.NewKey(t).Proof(t, "GET", g.URL+"/mcp/x", tok, time.Now(), nil)); st != 401 {
		t.Errorf("with another key's proof: %d", st)
	}
}
