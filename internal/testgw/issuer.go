package testgw

import (
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// Algorithms are the algorithms of the keys NewIssuer makes, in the order
// the issuer publishes them.
var Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}

// NewIssuer starts a JWKS issuer publishing a key for each of Algorithms,
// with kid "k-" and the algorithm, and returns it with its keys by
// algorithm.
func NewIssuer(t testing.TB) (*testidp.Server, map[string]*testidp.Key) {
	t.Helper()
	keys := map[string]*testidp.Key{}
	list := make([]*testidp.Key, 0, len(Algorithms))
	for _, alg := range Algorithms {
		keys[alg] = testidp.NewKey(t, alg, "k-"+alg)
		list = append(list, keys[alg])
	}
	return testidp.New(t, list...), keys
}

// Claims returns valid claims of issuer s for sub at now, with the email,
// groups and org claims the tests' routes forward and require.
func Claims(s *testidp.Server, sub string, now time.Time) map[string]any {
	c := s.Claims(sub, now)
	c["email"] = sub + "@example.com"
	c["groups"] = []string{"admin", "dev"}
	c["org"] = map[string]any{"tenant": "acme"}
	return c
}
