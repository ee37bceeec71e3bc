package authn_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/jwks"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fixture is a real issuer and an Authenticator trusting it.
type fixture struct {
	idp  *testidp.Server
	key  *testidp.Key
	auth *authn.Authenticator
}

func newFixture(t testing.TB, mod func(*authn.Issuer)) *fixture {
	t.Helper()
	key := testidp.NewKey(t, "ES256", "k1")
	idp := testidp.New(t, key)
	remote := jwks.NewRemote(t.Context(), jwks.RemoteConfig{Issuer: idp.Issuer, Now: func() time.Time { return testNow }})
	iss := authn.Issuer{Issuer: idp.Issuer, Audiences: []string{"api"}, Algorithms: []string{"ES256"}, Leeway: 30 * time.Second, Keys: remote}
	if mod != nil {
		mod(&iss)
	}
	a, err := authn.New(authn.Config{Issuers: []authn.Issuer{iss}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{idp: idp, key: key, auth: a}
}

func (f *fixture) claims() map[string]any { return f.idp.Claims("alice", testNow) }

// rawToken builds a token from a literal payload, signed with the key, so
// payloads that no map can express (duplicate names) can be tested.
func rawToken(t testing.TB, k *testidp.Key, payload string) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": k.Alg, "kid": k.ID, "typ": "JWT"})
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return input + "." + testidp.SignInput(t, k, input)
}

func TestVerifyClaimsDecoding(t *testing.T) {
	f := newFixture(t, nil)
	iss := f.idp.Issuer
	exp := testNow.Add(time.Hour).Unix()
	cases := []struct {
		name    string
		payload string
		reason  string // "" means valid
	}{
		{"valid", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `}`, ""},
		{"duplicate exp", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `,"exp":1}`, authn.ReasonMalformed},
		{"duplicate via escape", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `,"\u0065xp":1}`, authn.ReasonMalformed},
		{"case variant iss ignored", `{"ISS":"` + iss + `","aud":"api","exp":` + itoa(exp) + `}`, authn.ReasonIssuer},
		{"case variant exp ignored", `{"iss":"` + iss + `","aud":"api","EXP":` + itoa(exp) + `}`, authn.ReasonExpired},
		{"array payload", `[1,2]`, authn.ReasonMalformed},
		{"trailing data", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `} {}`, authn.ReasonMalformed},
		{"deep nesting", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, authn.ReasonMalformed},
		{"exp string", `{"iss":"` + iss + `","aud":"api","exp":"` + itoa(exp) + `"}`, authn.ReasonMalformed},
		{"exp negative", `{"iss":"` + iss + `","aud":"api","exp":-1}`, authn.ReasonMalformed},
		{"nbf bool", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `,"nbf":true}`, authn.ReasonMalformed},
		{"sub number", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `,"sub":5}`, authn.ReasonMalformed},
		{"scope number", `{"iss":"` + iss + `","aud":"api","exp":` + itoa(exp) + `,"scope":5}`, authn.ReasonMalformed},
		{"iss number", `{"iss":5,"aud":"api","exp":` + itoa(exp) + `}`, authn.ReasonIssuer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := rawToken(t, f.key, c.payload)
			id, err := f.auth.Verify(context.Background(), tok)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if err := f.auth.Authorize(id, &authn.Policy{}); err != nil {
					t.Fatalf("Authorize: %v", err)
				}
				return
			}
			var ae *authn.Error
			if !errors.As(err, &ae) || ae.Reason != c.reason {
				t.Fatalf("err %v, want reason %s", err, c.reason)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTyp(t *testing.T) {
	f := newFixture(t, func(i *authn.Issuer) { i.Typ = "at+jwt" })
	for _, c := range []struct {
		typ any
		ok  bool
	}{
		{"at+jwt", true}, {"AT+JWT", true}, {"application/at+jwt", true},
		{"JWT", false}, {nil, false}, {7, false},
	} {
		tok := testidp.Mint(t, f.key, f.claims(), map[string]any{"typ": c.typ})
		_, err := f.auth.Verify(context.Background(), tok)
		if (err == nil) != c.ok {
			t.Errorf("typ %v: err %v, want ok=%v", c.typ, err, c.ok)
		}
	}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t, nil)
	c := f.claims()
	c["aud"] = []string{"other", "api"}
	c["scp"] = []string{"read", "write"}
	c["groups"] = []string{"dev", "ops"}
	c["realm_access"] = map[string]any{"roles": []any{"admin"}}
	c["tier"] = "gold"
	c["level"] = 3
	id, err := f.auth.Verify(context.Background(), testidp.Mint(t, f.key, c, nil))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		policy authn.Policy
		status int
	}{
		{"issuer audience", authn.Policy{}, 0},
		{"route audience", authn.Policy{Audiences: []string{"other"}}, 0},
		{"route audience mismatch", authn.Policy{Audiences: []string{"nope"}}, 401},
		{"scp array and scope string", authn.Policy{Scopes: []string{"read", "write"}}, 0},
		{"missing scope", authn.Policy{Scopes: []string{"read", "admin"}}, 403},
		{"claim array contains", authn.Policy{Claims: map[string][]string{"groups": {"ops"}}}, 0},
		{"claim array any of", authn.Policy{Claims: map[string][]string{"groups": {"x", "dev"}}}, 0},
		{"claim array lacks", authn.Policy{Claims: map[string][]string{"groups": {"admin"}}}, 403},
		{"claim string equals", authn.Policy{Claims: map[string][]string{"tier": {"gold"}}}, 0},
		{"claim string differs", authn.Policy{Claims: map[string][]string{"tier": {"Gold"}}}, 403},
		{"claim number", authn.Policy{Claims: map[string][]string{"level": {"3"}}}, 0},
		{"claim dotted path", authn.Policy{Claims: map[string][]string{"realm_access.roles": {"admin"}}}, 0},
		{"claim absent", authn.Policy{Claims: map[string][]string{"nope": {"x"}}}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := f.auth.Authorize(id, &tc.policy)
			var ae *authn.Error
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("unexpected %v", err)
			case tc.status != 0 && (!errors.As(err, &ae) || ae.Status != tc.status):
				t.Fatalf("err %v, want status %d", err, tc.status)
			}
		})
	}
	if v, _ := id.ClaimString("groups"); v != "dev,ops" {
		t.Errorf("ClaimString(groups) = %q", v)
	}
}

func TestExtract(t *testing.T) {
	srcs := []authn.Source{{Kind: authn.SourceHeader}, {Kind: authn.SourceQuery, Name: "t"}, {Kind: authn.SourceCookie, Name: "c"}}
	cases := []struct {
		name   string
		header http.Header
		query  string
		token  string
		status int
	}{
		{"none", nil, "", "", 0},
		{"bearer", http.Header{"Authorization": {"Bearer abc.def.ghi"}}, "", "abc.def.ghi", 0},
		{"lower-case scheme", http.Header{"Authorization": {"bearer abc"}}, "", "abc", 0},
		{"basic is not a token", http.Header{"Authorization": {"Basic YTpi"}}, "", "", 0},
		{"bearerish scheme", http.Header{"Authorization": {"Bearerx abc"}}, "", "", 0},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, "", "", 400},
		{"two headers", http.Header{"Authorization": {"Bearer a", "Bearer b"}}, "", "", 400},
		{"bad chars", http.Header{"Authorization": {"Bearer a b"}}, "", "", 401},
		{"padding ok", http.Header{"Authorization": {"Bearer abc=="}}, "", "abc==", 0},
		{"query", nil, "t=abc", "abc", 0},
		{"query twice", nil, "t=a&t=b", "", 400},
		{"header and query", http.Header{"Authorization": {"Bearer a"}}, "t=b", "", 400},
		{"cookie", http.Header{"Cookie": {"x=1; c=abc"}}, "", "abc", 0},
		{"two cookies", http.Header{"Cookie": {"c=a; c=b"}}, "", "", 400},
		{"header and cookie", http.Header{"Authorization": {"Bearer a"}, "Cookie": {"c=b"}}, "", "", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/?"+c.query, nil)
			for k, v := range c.header {
				r.Header[k] = v
			}
			tok, _, err := authn.Extract(r, srcs, 0)
			var ae *authn.Error
			switch {
			case c.status == 0 && err != nil:
				t.Fatalf("unexpected %v", err)
			case c.status != 0 && (!errors.As(err, &ae) || ae.Status != c.status):
				t.Fatalf("err %v, want %d", err, c.status)
			case tok != c.token:
				t.Fatalf("token %q, want %q", tok, c.token)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	e := &authn.Error{Status: 403, Code: authn.CodeInsufficientScope, Description: `needs "x"`, Scope: "read write"}
	got := e.Challenge(`api "v1"`)
	want := `Bearer realm="api ?v1?", error="insufficient_scope", error_description="needs ?x?", scope="read write"`
	if got != want {
		t.Errorf("Challenge = %s\nwant        %s", got, want)
	}
	if got := authn.Missing().Challenge("r"); got != `Bearer realm="r"` {
		t.Errorf("missing token challenge %s", got)
	}
}

func TestRedactQuery(t *testing.T) {
	got := authn.RedactQuery("a=1&access_token=secret&b=2", []string{"access_token"})
	if strings.Contains(got, "secret") || !strings.Contains(got, "a=1") {
		t.Errorf("RedactQuery = %q", got)
	}
}
