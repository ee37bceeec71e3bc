package jwks

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds of the max-age the key set is served with.
const (
	minServeMaxAge  = time.Minute
	maxServeMaxAge  = 24 * time.Hour
	noRotateMaxAge  = time.Hour
	jwkSetMediaType = "application/jwk-set+json" // RFC 7517 §8.5.1
)

// JWKSHandler returns a handler that serves the published keys
// ([KeyRing.Public]) as a JWK Set for GET and HEAD, with media type
// application/jwk-set+json and "Cache-Control: public, max-age=N", where N
// is the time until [KeyRing.NextRotation] clamped to [60s, 24h], or one
// hour without rotation. Since a rotation only activates a key published a
// period earlier, a verifier that honours max-age always holds the next
// signing key in time. The response carries a strong ETag and answers a
// matching If-None-Match with 304. Only public key members are ever served:
// the body comes from [Encode], which refuses private keys.
func (k *KeyRing) JWKSHandler() http.Handler {
	return jwksHandler{k}
}

// jwksHandler is the [http.Handler] returned by [KeyRing.JWKSHandler].
type jwksHandler struct{ k *KeyRing }

func (h jwksHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	v := h.k.current()
	hdr := w.Header()
	hdr.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(serveMaxAge(h.k.now(), v.nextRotation)/time.Second), 10))
	hdr.Set("ETag", v.etag)
	if etagMatches(r.Header.Values("If-None-Match"), v.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", jwkSetMediaType)
	hdr.Set("Content-Length", strconv.Itoa(len(v.body)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(v.body)
}

// serveMaxAge is how long a key set served at now may be cached: until the
// rotation at next, clamped to [1m, 24h]; one hour when next is zero.
func serveMaxAge(now, next time.Time) time.Duration {
	if next.IsZero() {
		return noRotateMaxAge
	}
	return min(max(next.Sub(now), minServeMaxAge), maxServeMaxAge)
}

// etagOf returns a strong entity tag (RFC 9110 §8.8.3) for body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// etagMatches applies the weak comparison If-None-Match calls for
// (RFC 9110 §13.1.2) to the header's field values.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == etag {
				return true
			}
		}
	}
	return false
}

var _ http.Handler = jwksHandler{}
