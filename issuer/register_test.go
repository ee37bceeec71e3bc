package issuer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/issuer"
)

const (
	mcpResource   = "https://api.example.com/mcp"
	otherResource = "https://other.example.com/api"
	loopbackCB    = "http://127.0.0.1:53682/callback"
)

// newRegIDP is an issuer serving two resources with registration open.
func newRegIDP(t testing.TB, mod func(*issuer.Registration)) *idp {
	t.Helper()
	return newIDPWith(t, func(c *issuer.Config) {
		c.Resources = []string{mcpResource, otherResource}
		c.Registration = &issuer.Registration{RedirectURIs: []string{"https://*.example.com/callback"}, MaxClients: 3}
		if mod != nil {
			mod(c.Registration)
		}
	})
}

// register posts client metadata to the registration endpoint.
func (p *idp) register(t *testing.T, md map[string]any, bearer string) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(md)
	req, _ := http.NewRequest("POST", p.url+"/register", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("registration answered non-JSON %d: %s", res.StatusCode, raw)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("registration Cache-Control %q", cc)
	}
	return res.StatusCode, out
}

func mcpClient(redirect string) map[string]any {
	return map[string]any{"client_name": "Claude-ish", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none", "scope": "openid offline_access"}
}

// pkceAuth is an authorization URL for a registered public client.
func (p *idp) pkceAuth(clientID, redirect string, extra url.Values) (string, string) {
	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	v := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid offline_access"}, "state": {"st"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for k, vs := range extra {
		v[k] = vs
	}
	return p.url + "/authorize?" + v.Encode(), verifier
}

// audience decodes an access token's aud without verifying it (the
// signature is checked by the gateway tests).
func audience(t *testing.T, tok string) any {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	return claims["aud"]
}

func TestRegisteredPublicClientFlow(t *testing.T) {
	p := newRegIDP(t, nil)
	status, reg := p.register(t, mcpClient(loopbackCB), "")
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, reg)
	}
	id, _ := reg["client_id"].(string)
	if id == "" || reg["client_secret"] != nil || reg["token_endpoint_auth_method"] != "none" ||
		reg["client_id_issued_at"] == nil || reg["scope"] != "openid offline_access" {
		t.Fatalf("registration answer %v", reg)
	}

	// RFC 8252 §7.3: the loopback port is chosen when the app runs.
	redirect := "http://127.0.0.1:61000/callback"
	authURL, verifier := p.pkceAuth(id, redirect, url.Values{"resource": {mcpResource}})
	c := browser()
	res, page := get(t, c, authURL)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		t.Fatalf("authorize: %d %s", res.StatusCode, page)
	}
	f := form(t, page)
	f.Set("username", "alice")
	f.Set("password", "alice-password")
	res, _ = post(t, c, p.url+"/authorize", f)
	loc, _ := res.Location()
	res, page = get(t, c, loc.String())
	// A registered client always meets the consent page, naming it as
	// unverified and where the browser goes back to.
	for _, want := range []string{`value="allow"`, "Claude-ish", "not verified", "127.0.0.1:61000", mcpResource} {
		if !strings.Contains(page, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, page)
		}
	}
	back := p.loginAt(t, c, authURL, "alice-password", "http://127.0.0.1:61000/")
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("callback %s", back)
	}
	// The user allowed it once; the next authorization asks again.
	res, page = get(t, c, authURL)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `value="allow"`) {
		t.Fatalf("second authorization did not ask: %d %s", res.StatusCode, page)
	}

	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_id": {id}, "resource": {mcpResource}}
	st, tok, _ := p.exchange(t, "", "", v)
	if st != 200 {
		t.Fatalf("exchange %d %v", st, tok)
	}
	if aud := audience(t, tok["access_token"].(string)); aud != mcpResource {
		t.Errorf("aud = %v, want the resource", aud)
	}
	// A refresh keeps the resource, and cannot move to another one.
	refresh := tok["refresh_token"].(string)
	st, out, _ := p.exchange(t, "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh},
		"client_id": {id}, "resource": {otherResource}})
	if st != 400 || out["error"] != "invalid_target" {
		t.Errorf("refresh widened to another resource: %d %v", st, out)
	}
	st, out, _ = p.exchange(t, "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {id}})
	if st != 200 || audience(t, out["access_token"].(string)) != mcpResource {
		t.Errorf("refresh: %d %v", st, out)
	}

	// Deleted, it can neither refresh nor start again.
	if err := p.iss.DeleteClient(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	st, out, _ = p.exchange(t, "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)}, "client_id": {id}})
	if st != 401 || out["error"] != "invalid_client" {
		t.Errorf("refresh after deletion: %d %v", st, out)
	}
	if res, _ := get(t, browser(), authURL); res.StatusCode != http.StatusBadRequest {
		t.Errorf("authorize after deletion: %d", res.StatusCode)
	}
	if err := p.iss.DeleteClient(context.Background(), id); !errors.Is(err, issuer.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if err := p.iss.DeleteClient(context.Background(), "webapp"); !errors.Is(err, issuer.ErrConfiguredClient) {
		t.Errorf("deleting a configured client: %v", err)
	}
}

func TestRegisteredConfidentialClient(t *testing.T) {
	p := newRegIDP(t, nil)
	md := mcpClient("https://app.example.com/callback")
	md["token_endpoint_auth_method"] = "client_secret_basic"
	status, reg := p.register(t, md, "")
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, reg)
	}
	id, secret := reg["client_id"].(string), reg["client_secret"].(string)
	if len(secret) < 40 || reg["client_secret_expires_at"] != float64(0) {
		t.Fatalf("registration answer %v", reg)
	}
	authURL, verifier := p.pkceAuth(id, "https://app.example.com/callback", nil)
	back := p.loginAt(t, browser(), authURL, "alice-password", "https://app.example.com/")
	v := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {"https://app.example.com/callback"}, "code_verifier": {verifier}}
	if st, out, _ := p.exchange(t, id, "wrong-"+secret, v); st != 401 {
		t.Fatalf("wrong secret: %d %v", st, out)
	}
	// The failed attempt spent nothing: authentication comes first.
	st, out, _ := p.exchange(t, id, secret, v)
	if st != 200 || audience(t, out["access_token"].(string)) != id {
		t.Fatalf("exchange: %d %v", st, out)
	}
}

func TestRegistrationRefusals(t *testing.T) {
	p := newRegIDP(t, nil)
	cases := []struct {
		name   string
		mod    func(map[string]any)
		status int
		code   string
	}{
		{"redirect outside the patterns", func(m map[string]any) { m["redirect_uris"] = []string{"https://evil.test/callback"} }, 400, "invalid_redirect_uri"},
		{"two labels under the wildcard", func(m map[string]any) { m["redirect_uris"] = []string{"https://a.b.example.com/callback"} }, 400, "invalid_redirect_uri"},
		{"another path", func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example.com/other"} }, 400, "invalid_redirect_uri"},
		{"localhost is not a loopback literal", func(m map[string]any) { m["redirect_uris"] = []string{"http://localhost:3000/callback"} }, 400, "invalid_redirect_uri"},
		{"fragment", func(m map[string]any) { m["redirect_uris"] = []string{"http://127.0.0.1:3000/cb#x"} }, 400, "invalid_redirect_uri"},
		{"no redirect", func(m map[string]any) { delete(m, "redirect_uris") }, 400, "invalid_redirect_uri"},
		{"client credentials", func(m map[string]any) { m["grant_types"] = []string{"client_credentials"} }, 400, "invalid_client_metadata"},
		{"implicit", func(m map[string]any) { m["response_types"] = []string{"token"} }, 400, "invalid_client_metadata"},
		{"scope not offered", func(m map[string]any) { m["scope"] = "openid admin" }, 400, "invalid_client_metadata"},
		{"private_key_jwt", func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }, 400, "invalid_client_metadata"},
		{"control characters in the name", func(m map[string]any) { m["client_name"] = "Bank\nof nothing" }, 400, "invalid_client_metadata"},
		{"software statement", func(m map[string]any) { m["software_statement"] = "e30.e30.x" }, 400, "invalid_software_statement"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := mcpClient(loopbackCB)
			tc.mod(md)
			status, out := p.register(t, md, "")
			if status != tc.status || out["error"] != tc.code || out["error_description"] == "" {
				t.Errorf("got %d %v, want %d %s", status, out, tc.status, tc.code)
			}
		})
	}

	// Over the cap: three clients, the fourth is refused until one goes.
	var ids []string
	for range 3 {
		status, out := p.register(t, mcpClient(loopbackCB), "")
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, out)
		}
		ids = append(ids, out["client_id"].(string))
	}
	if status, out := p.register(t, mcpClient(loopbackCB), ""); status != http.StatusForbidden || out["error"] != "access_denied" {
		t.Errorf("over the cap: %d %v", status, out)
	}
	if err := p.iss.DeleteClient(context.Background(), ids[0]); err != nil {
		t.Fatal(err)
	}
	if status, out := p.register(t, mcpClient(loopbackCB), ""); status != http.StatusCreated {
		t.Errorf("after a deletion: %d %v", status, out)
	}
	// Clients never used are removed after unused_ttl; that frees room.
	p.clock.Advance(721 * time.Hour)
	if status, out := p.register(t, mcpClient(loopbackCB), ""); status != http.StatusCreated {
		t.Errorf("after the unused TTL: %d %v", status, out)
	}
	u, _ := p.pkceAuth(ids[1], loopbackCB, nil)
	if res, page := get(t, browser(), u); res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "not registered") {
		t.Errorf("an expired client still authorizes: %d", res.StatusCode)
	}
}

func TestRegistrationAddressLimit(t *testing.T) {
	p := newRegIDP(t, func(r *issuer.Registration) { r.MaxClients = 100; r.AddressLimit = 2 })
	for i := range 3 {
		status, out := p.register(t, mcpClient(loopbackCB), "")
		want := http.StatusCreated
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if status != want {
			t.Errorf("registration %d: %d %v", i, status, out)
		}
	}
}

func TestRegistrationInitialAccessToken(t *testing.T) {
	p := newRegIDP(t, func(r *issuer.Registration) { r.InitialAccessToken = "initial-token-0123456789" })
	for _, bearer := range []string{"", "wrong"} {
		if status, out := p.register(t, mcpClient(loopbackCB), bearer); status != http.StatusUnauthorized || out["error"] != "invalid_token" {
			t.Errorf("bearer %q: %d %v", bearer, status, out)
		}
	}
	if status, out := p.register(t, mcpClient(loopbackCB), "initial-token-0123456789"); status != http.StatusCreated {
		t.Errorf("with the token: %d %v", status, out)
	}
}

func TestRegistrationDisabled(t *testing.T) {
	p := newIDP(t)
	res, body := postJSON(t, p.url+"/register", `{"redirect_uris":["`+loopbackCB+`"]}`)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("registration while off: %d %s", res.StatusCode, body)
	}
	var doc map[string]any
	_, raw := get(t, http.DefaultClient, p.url+"/.well-known/openid-configuration")
	_ = json.Unmarshal([]byte(raw), &doc)
	if _, ok := doc["registration_endpoint"]; ok {
		t.Errorf("discovery advertises registration while off: %v", doc["registration_endpoint"])
	}
}

func postJSON(t *testing.T, u, body string) (*http.Response, string) {
	t.Helper()
	res, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

func TestAuthorizationServerMetadataPathInserted(t *testing.T) {
	p := newRegIDP(t, nil)
	u, _ := url.Parse(p.url)
	_, oidcDoc := get(t, http.DefaultClient, p.url+"/.well-known/openid-configuration")
	for _, path := range []string{"/.well-known/oauth-authorization-server/idp", "/.well-known/openid-configuration/idp", "/idp/.well-known/oauth-authorization-server"} {
		res, doc := get(t, http.DefaultClient, u.Scheme+"://"+u.Host+path)
		if res.StatusCode != 200 || doc != oidcDoc {
			t.Errorf("%s: %d, differs from the OpenID document: %v", path, res.StatusCode, doc != oidcDoc)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(oidcDoc), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != p.url || doc["registration_endpoint"] != p.url+"/register" ||
		fmt.Sprint(doc["code_challenge_methods_supported"]) != "[S256]" {
		t.Errorf("metadata %v", doc)
	}
}

func TestResourceIndicators(t *testing.T) {
	p := newRegIDP(t, nil)
	// invalid_target at the authorization endpoint goes back to the client.
	for _, bad := range []string{"https://unknown.example.com/api", "urn:not-a-url", "https://api.example.com/mcp#x", "/relative"} {
		u, _ := p.authURL(func(v url.Values) { v.Set("resource", bad) })
		res, _ := get(t, browser(), u)
		loc, _ := res.Location()
		if res.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_target" {
			t.Errorf("resource %q: %d %v", bad, res.StatusCode, loc)
		}
	}
	// Two resources are carried through the login and consent forms.
	code, verifier := p.code(t, func(v url.Values) { v["resource"] = []string{mcpResource, otherResource} })
	v := codeForm(code, verifier)
	v["resource"] = []string{otherResource}
	st, out, _ := p.exchange(t, "webapp", webSecret, v)
	if st != 200 || audience(t, out["access_token"].(string)) != otherResource {
		t.Fatalf("narrowed exchange: %d %v", st, out)
	}
	// The family is for both; a refresh may name either, or get both.
	rt := out["refresh_token"].(string)
	st, out, _ = p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if st != 200 || fmt.Sprint(audience(t, out["access_token"].(string))) != fmt.Sprint([]any{mcpResource, otherResource}) {
		t.Errorf("refresh without resource: %d %v", st, audience(t, out["access_token"].(string)))
	}

	// A token request naming a resource the code was not for.
	code, verifier = p.code(t, func(v url.Values) { v.Set("resource", mcpResource) })
	v = codeForm(code, verifier)
	v.Set("resource", otherResource)
	if st, out, _ := p.exchange(t, "webapp", webSecret, v); st != 400 || out["error"] != "invalid_target" {
		t.Errorf("exchange for another resource: %d %v", st, out)
	}
	// Without a resource, the client's audiences as before.
	code, verifier = p.code(t, nil)
	if st, out, _ := p.exchange(t, "webapp", webSecret, codeForm(code, verifier)); st != 200 || audience(t, out["access_token"].(string)) != "api" {
		t.Errorf("no resource: %d %v", st, out)
	}
	// Client credentials take a resource too.
	st, out, _ = p.exchange(t, "machine", machineSecret, url.Values{"grant_type": {"client_credentials"}, "resource": {mcpResource}})
	if st != 200 || audience(t, out["access_token"].(string)) != mcpResource {
		t.Errorf("client_credentials with resource: %d %v", st, out)
	}
	st, out, _ = p.exchange(t, "machine", machineSecret, url.Values{"grant_type": {"client_credentials"}, "resource": {"https://nope.example.com/"}})
	if st != 400 || out["error"] != "invalid_target" {
		t.Errorf("client_credentials with unknown resource: %d %v", st, out)
	}
}
