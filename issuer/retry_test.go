package issuer_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/issuer"
)

// A refresh whose reply was lost can be sent again: within the grace,
// while the new pair is unused, the same pair comes back. Any other reuse
// is reuse: the family is revoked.
func TestRefreshRetryGrace(t *testing.T) {
	p := newIDPWith(t, func(c *issuer.Config) { c.RefreshRetryGrace = 10 * time.Second })
	start := func() string {
		code, verifier := p.code(t, nil)
		_, tok, _ := p.exchange(t, "webapp", webSecret, codeForm(code, verifier))
		return tok["refresh_token"].(string)
	}
	refresh := func(rt string) (int, map[string]any) {
		s, out, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		return s, out
	}

	rt0 := start()
	s, pair := refresh(rt0)
	if s != http.StatusOK {
		t.Fatalf("refresh: %d %v", s, pair)
	}
	p.clock.Advance(9 * time.Second)
	s, again := refresh(rt0)
	if s != http.StatusOK || again["refresh_token"] != pair["refresh_token"] || again["access_token"] != pair["access_token"] ||
		again["id_token"] != pair["id_token"] {
		t.Fatalf("retry within the grace: %d %v, want the pair %v", s, again, pair)
	}
	if e := again["expires_in"].(float64); e != pair["expires_in"].(float64)-9 {
		t.Errorf("expires_in of the retry %v, of the pair %v", e, pair["expires_in"])
	}
	// The pair works; afterwards the old token is reuse, and revokes.
	s, next := refresh(pair["refresh_token"].(string))
	if s != http.StatusOK {
		t.Fatalf("refresh with the retried pair: %d %v", s, next)
	}
	if s, out := refresh(rt0); s != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("old token after the pair was used: %d %v", s, out)
	}
	if s, out := refresh(next["refresh_token"].(string)); s != http.StatusBadRequest {
		t.Errorf("the family survived the reuse: %d %v", s, out)
	}

	// Past the grace a retry is reuse too.
	rt0 = start()
	_, pair = refresh(rt0)
	p.clock.Advance(11 * time.Second)
	if s, out := refresh(rt0); s != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("retry past the grace: %d %v", s, out)
	}
	if s, out := refresh(pair["refresh_token"].(string)); s != http.StatusBadRequest {
		t.Errorf("the family survived a late retry: %d %v", s, out)
	}
}
