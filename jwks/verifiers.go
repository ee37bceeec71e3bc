package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"sync"

	"github.com/portcullis-dev/portcullis/internal/p256"
	"github.com/portcullis-dev/portcullis/internal/rsaverify"
)

// maxPrecomputed bounds the keys of one set that get precomputed
// verifiers. A P-256 table is about 216 KiB; a key set may list up to 1000
// keys, and a token chooses its key by kid. Keys past the bound verify with
// the standard library. Key sets in use hold a handful of keys.
const maxPrecomputed = 16

// verifiers is what a key's signature checks precompute: the table of a
// P-256 key's multiples, or an RSA modulus's Montgomery constants. It is
// built once, on the first check, and shared by every copy of the [Key]
// (a Set is immutable, and its keys are handed out by value).
type verifiers struct {
	once sync.Once
	p256 *p256.PublicKey
	rsa  *rsaverify.PublicKey
}

// withVerifiers returns k ready to precompute its verifiers.
func withVerifiers(k Key) Key {
	k.pre = &verifiers{}
	return k
}

func (v *verifiers) build(pub crypto.PublicKey) {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() {
			v.p256, _ = p256.NewPublicKey(pub)
		}
	case *rsa.PublicKey:
		v.rsa, _ = rsaverify.NewPublicKey(pub)
	}
}

// P256 returns the key's precomputed P-256 verifier (the same answers as
// crypto/ecdsa, in about 40% of its time), built on first use. It reports
// false for a key that is not P-256, that has none (keys past the first 16
// of a set, or made outside this package), or whose table could not be
// built; verify such keys with crypto/ecdsa.
func (k Key) P256() (*p256.PublicKey, bool) {
	if k.pre == nil {
		return nil, false
	}
	k.pre.once.Do(func() { k.pre.build(k.Public) })
	return k.pre.p256, k.pre.p256 != nil
}

// RSA returns the key's precomputed RSA PKCS #1 v1.5 verifier (the same
// answers as crypto/rsa, in about two thirds of its time), built on first
// use. It reports false as [Key.P256] does; verify such keys with
// crypto/rsa.
func (k Key) RSA() (*rsaverify.PublicKey, bool) {
	if k.pre == nil {
		return nil, false
	}
	k.pre.once.Do(func() { k.pre.build(k.Public) })
	return k.pre.rsa, k.pre.rsa != nil
}

// precompute gives the first maxPrecomputed keys verifiers, taking over
// those of an equal key in old (the set being replaced), so that a refresh
// that leaves a key unchanged does not build its table again.
func precompute(keys, old []Key) {
	for i := range keys {
		if i == maxPrecomputed {
			return
		}
		keys[i] = withVerifiers(keys[i])
		for _, o := range old {
			if o.pre != nil && o.ID == keys[i].ID && o.Algorithm == keys[i].Algorithm && samePublic(o.Public, keys[i].Public) {
				keys[i].pre = o.pre
				break
			}
		}
	}
}
