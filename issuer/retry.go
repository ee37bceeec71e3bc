package issuer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"
)

// A rotation keeps the pair it issued for a retry of the same request
// (Config.RefreshRetryGrace), sealed with AES-256-GCM under a key derived
// from the rotated refresh token: the store holds only that token's hash,
// so a copy of the store cannot open it, while the client presenting the
// token again can.

// sealedRetry is what is sealed.
type sealedRetry struct {
	Response *tokenResponse `json:"r"`
	// JKT is the DPoP key the access token is bound to; a retry must prove
	// the same key.
	JKT string `json:"k,omitempty"`
	// Issued is when the pair was issued, to count expires_in down.
	Issued int64 `json:"t"`
}

func retryAEAD(refreshToken string) cipher.AEAD {
	key := sha256.Sum256([]byte("portcullis refresh retry\x00" + refreshToken))
	block, _ := aes.NewCipher(key[:]) // a 32-byte key never fails
	aead, _ := cipher.NewGCM(block)
	return aead
}

// sealRetry seals res for a retry with refreshToken.
func sealRetry(refreshToken string, res *tokenResponse, jkt string, now time.Time) ([]byte, error) {
	plain, err := json.Marshal(sealedRetry{Response: res, JKT: jkt, Issued: now.Unix()})
	if err != nil {
		return nil, err
	}
	aead := retryAEAD(refreshToken)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, errors.New("issuer: no randomness for a refresh retry")
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// openRetry opens what sealRetry sealed for refreshToken and returns the
// response with expires_in counted down to now, if it opens and the retry
// proves the same DPoP key (or none, like the first request).
func openRetry(refreshToken string, sealed []byte, jkt string, now time.Time) (*tokenResponse, bool) {
	aead := retryAEAD(refreshToken)
	if len(sealed) < aead.NonceSize() {
		return nil, false
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, false
	}
	var sr sealedRetry
	if json.Unmarshal(plain, &sr) != nil || sr.Response == nil || sr.JKT != jkt {
		return nil, false
	}
	res := *sr.Response
	res.ExpiresIn = max(res.ExpiresIn-(now.Unix()-sr.Issued), 1)
	return &res, true
}
