package jwks

import (
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Encode serialises public keys as a JWKS document (RFC 7517 §5), each with
// "use": "sig" and its kid and alg when set. Only public keys are accepted:
// a private key is an error, so a served key set can never leak one.
func Encode(keys []Key) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		if err := checkPublic(k.Public); err != nil {
			return nil, fmt.Errorf("jwks: encode key %q: %w", k.ID, err)
		}
		jk, err := jwk.Import(k.Public)
		if err != nil {
			return nil, fmt.Errorf("jwks: encode key %q: %w", k.ID, err)
		}
		if k.ID != "" {
			if err := jk.Set(jwk.KeyIDKey, k.ID); err != nil {
				return nil, fmt.Errorf("jwks: encode key %q: %w", k.ID, err)
			}
		}
		if k.Algorithm != "" {
			alg, ok := jwa.LookupSignatureAlgorithm(k.Algorithm)
			if !ok {
				return nil, fmt.Errorf("jwks: encode key %q: unknown algorithm %q", k.ID, k.Algorithm)
			}
			if err := jk.Set(jwk.AlgorithmKey, alg); err != nil {
				return nil, fmt.Errorf("jwks: encode key %q: %w", k.ID, err)
			}
		}
		if err := jk.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
			return nil, fmt.Errorf("jwks: encode key %q: %w", k.ID, err)
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("jwks: encode key %q: %w", k.ID, err)
		}
	}
	return json.Marshal(set)
}
