package authn_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// FuzzAuthenticate feeds arbitrary Authorization headers, query strings and
// cookies through extraction, parsing and verification. Whatever comes in,
// the answer is an identity, no token, or an *authn.Error with a 4xx status:
// never a panic, never a technical error.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f, nil)
	good := testidp.Mint(f, fx.key, fx.claims(), nil)
	f.Add("Bearer "+good, "", "")
	f.Add("Bearer "+good[:len(good)-5], "", "")
	f.Add("bearer a.b.c", "t=x.y.z", "c=1")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "", "")
	f.Add("Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6eyJhIjoxfX0.e30.AAAA", "", "")
	f.Add("Basic YTpi", "t=a&t=b", "c=a; c=b")
	f.Add("Bearer ....", "t=%zz", "")
	f.Add("Bearer "+good+"."+good, "", "")
	srcs := []authn.Source{{Kind: authn.SourceHeader}, {Kind: authn.SourceQuery, Name: "t"}, {Kind: authn.SourceCookie, Name: "c"}}
	policy := &authn.Policy{Sources: srcs, Scopes: []string{"read"}}
	f.Fuzz(func(t *testing.T, authz, query, cookie string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = query
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		id, err := fx.auth.Authenticate(r, policy)
		var ae *authn.Error
		switch {
		case err == nil && id != nil:
			if id.Issuer != fx.idp.Issuer || !id.HasScope("read") {
				t.Fatalf("accepted identity %+v", id)
			}
		case err == nil:
		case errors.As(err, &ae):
			if ae.Status < 400 || ae.Status > 403 || ae.Reason == "" {
				t.Fatalf("bad error %+v", ae)
			}
		default:
			t.Fatalf("technical error for client input: %v", err)
		}
	})
}
