package attack_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTokenTransport(t *testing.T) {
	e := newTokenEnv(t)
	tok := e.mint("ES256", e.claims("alice"), nil)
	q := url.QueryEscape(tok)
	cases := []struct {
		name   string
		lines  []string // request line and headers
		status int
		code   string
	}{
		{"query token ignored where not configured", []string{"GET /?access_token=" + q + " HTTP/1.1"}, 401, ""},
		{"query token under another name ignored", []string{"GET /q/x?token=" + q + " HTTP/1.1"}, 401, ""},
		{"cookie token ignored where not configured", []string{"GET / HTTP/1.1", "Cookie: access_token=" + tok}, 401, ""},
		{"form-style token in the Authorization value", []string{"GET / HTTP/1.1", "Authorization: access_token=" + tok}, 401, ""},
		{"header and query together", []string{"GET /q/x?access_token=" + q + " HTTP/1.1", "Authorization: Bearer " + tok}, 400, "invalid_request"},
		{"query parameter twice", []string{"GET /q/x?access_token=" + q + "&access_token=" + q + " HTTP/1.1"}, 400, "invalid_request"},
		{"query parameter twice, one empty", []string{"GET /q/x?access_token=" + q + "&access_token= HTTP/1.1"}, 400, "invalid_request"},
		{"two Authorization headers", []string{"GET / HTTP/1.1", "Authorization: Bearer " + tok, "Authorization: Bearer " + tok}, 400, "invalid_request"},
		{"two Authorization headers, different case", []string{"GET / HTTP/1.1", "authorization: Bearer " + tok, "AUTHORIZATION: Bearer " + tok}, 400, "invalid_request"},
		{"two Authorization headers, one Basic", []string{"GET / HTTP/1.1", "Authorization: Basic YTpi", "Authorization: Bearer " + tok}, 400, "invalid_request"},
		{"Bearer with nothing after it", []string{"GET / HTTP/1.1", "Authorization: Bearer "}, 400, "invalid_request"},
		{"Bearer followed by tabs", []string{"GET / HTTP/1.1", "Authorization: Bearer \t\t"}, 400, "invalid_request"},
		{"two tokens in one header", []string{"GET / HTTP/1.1", "Authorization: Bearer " + tok + " " + tok}, 401, "invalid_token"},
		{"two tokens comma-separated", []string{"GET / HTTP/1.1", "Authorization: Bearer " + tok + ", Bearer " + tok}, 401, "invalid_token"},
		{"quoted token", []string{"GET / HTTP/1.1", `Authorization: Bearer "` + tok + `"`}, 401, "invalid_token"},
		{"Bearer glued to the token", []string{"GET / HTTP/1.1", "Authorization: Bearer" + tok}, 401, ""},
		{"Basic scheme is no token", []string{"GET / HTTP/1.1", "Authorization: Basic YWxpY2U6cHc="}, 401, ""},
		{"DPoP scheme is no bearer token", []string{"GET / HTTP/1.1", "Authorization: DPoP " + tok}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := append(append([]string{}, c.lines...), "Host: gw.test", "Connection: close")
			res, body := raw(t, e.addr, lines...)
			expectDenied(t, res, body, c.status, c.code, tok)
		})
	}
	t.Run("query token accepted where configured, removed upstream, never logged", func(t *testing.T) {
		secret := e.mint("ES256", e.claims("query-user"), nil)
		res, body := send(t, "GET", e.url+"/q/feed?room=1&access_token="+url.QueryEscape(secret), nil)
		got := decodeEcho(t, res, body)
		if got.Headers["X-Auth-Request-User"][0] != "query-user" {
			t.Fatalf("identity %v", got.Headers["X-Auth-Request-User"])
		}
		if strings.Contains(got.URI, "access_token") || !strings.Contains(got.URI, "room=1") {
			t.Errorf("upstream URI %q: the token parameter must be removed, others kept", got.URI)
		}
		sig := secret[strings.LastIndexByte(secret, '.')+1:]
		if strings.Contains(e.logs.String(), sig) {
			t.Error("the query token reached the log")
		}
		if strings.Contains(e.logs.String(), "room=1") {
			t.Error("a query string reached the log")
		}
	})
	t.Run("rejected tokens are never logged", func(t *testing.T) {
		bad := e.mint("ES256", e.with(func(c map[string]any) { c["aud"] = "nope" }), nil)
		for _, p := range []string{"/", "/q/x?access_token=" + bad} {
			res, _ := send(t, "GET", e.url+p, bearer(bad))
			if res.StatusCode/100 != 4 {
				t.Fatalf("%s: %d", p, res.StatusCode)
			}
		}
		sig := bad[strings.LastIndexByte(bad, '.')+1:]
		if logs := e.logs.String(); strings.Contains(logs, sig) || strings.Contains(logs, bad[:40]) {
			t.Error("a rejected token reached the log")
		}
	})
	t.Run("the token is removed before the upstream", func(t *testing.T) {
		res, body := send(t, "GET", e.url+"/x", http.Header{"Authorization": {"Bearer " + tok}})
		if got := decodeEcho(t, res, body); got.Headers["Authorization"] != nil {
			t.Errorf("Authorization forwarded: %v", got.Headers["Authorization"])
		}
	})
}
