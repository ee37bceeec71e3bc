package oidcclient

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cookie format and limits.
const (
	// cookieVersion is the first byte of every sealed value; a new format
	// gets a new version so old cookies are refused, never misread.
	cookieVersion = 1

	// cookieKeyInfo and cookieKeySalt feed HKDF-SHA256 (RFC 5869). The
	// salt is fixed: secrets are required to be high-entropy already, and
	// a fixed salt keeps every replica deriving the same keys.
	cookieKeyInfo = "portcullis cookie v1"
	cookieKeySalt = "portcullis cookie salt"

	// cookieMinSecret is the shortest secret accepted, in bytes.
	cookieMinSecret = 32

	// cookieChunkSize is the most encoded bytes put into one cookie, so
	// that name and value stay under the 4096 bytes browsers keep per
	// cookie (RFC 6265 §6.1; RFC 6265bis §5.6 counts name and value).
	cookieChunkSize = 3800

	// cookieMaxChunks bounds a value to base, base_1 … base_9.
	cookieMaxChunks = 10

	// cookieMaxEncoded is the largest encoded value Seal writes and Open
	// reads.
	cookieMaxEncoded = cookieChunkSize * cookieMaxChunks

	// cookieMaxCandidates bounds how many chunk combinations Open tries
	// when a request repeats cookie names.
	cookieMaxCandidates = 16

	cookieNonceSize  = 12 // AES-GCM standard nonce
	cookieExpirySize = 8  // big-endian Unix seconds
	cookieExtra      = 1 + cookieNonceSize + 16
)

var (
	// ErrNoCookie is returned by [CookieCodec.Open] when the request
	// carries no cookie of that name.
	ErrNoCookie = errors.New("oidcclient: no cookie")

	// ErrInvalidCookie is returned, wrapped with a short reason, by
	// [CookieCodec.Open] for a cookie that is present but cannot be
	// trusted: tampered, truncated, expired, sealed with an unknown secret,
	// sealed for another name, with a chunk missing, too many chunks, too
	// large, or ambiguous. Decoding and authentication failures share one
	// reason, so the error tells nothing about where a forgery failed.
	ErrInvalidCookie = errors.New("oidcclient: invalid cookie")
)

// CookieConfig configures a [CookieCodec].
type CookieConfig struct {
	// Secrets derive the cookie keys. There must be at least one, each of
	// at least 32 bytes. The first seals; every one opens, so a secret is
	// rotated by putting the new one first and dropping the old one once
	// every cookie sealed with it has expired.
	Secrets [][]byte

	// Secure sets the Secure attribute. With Secure and an empty Domain,
	// names get the __Host- prefix and Path is forced to "/"; with Secure
	// and a Domain they get the __Secure- prefix (RFC 6265bis §4.1.3). A
	// prefixed cookie cannot be set or overwritten by a sibling subdomain
	// or over plain http.
	Secure bool

	// Domain is the Domain attribute. Empty (the default, and the safest)
	// means host-only.
	Domain string

	// Path is the Path attribute. Empty means "/". It is ignored for
	// __Host- cookies, which always use "/".
	Path string

	// SameSite is the SameSite attribute. Zero means [http.SameSiteLaxMode],
	// which still sends the cookie on the top-level redirect back from the
	// provider. [http.SameSiteNoneMode] requires Secure.
	SameSite http.SameSite

	// Now returns the current time, for expiry. Nil means time.Now.
	Now func() time.Time
}

// CookieCodec seals values into cookies with AES-256-GCM, and opens them.
//
// Keys are derived from [CookieConfig.Secrets] with HKDF-SHA256; the first
// secret seals, every secret opens. The effective cookie name (with its
// prefix) and the format version are bound as additional data, so a value
// sealed for one cookie cannot be replayed as another. The plaintext
// carries an absolute expiry, checked by Open, so a cookie kept past its
// Max-Age by a client is still refused.
//
// A sealed cookie is base64url(version 1 || nonce(12) || ciphertext+tag),
// where the plaintext is an 8-byte big-endian Unix expiry followed by the
// value. Nonces are random: one secret should seal well under 2^32 values.
// Values are confidential and authenticated but not bound to a client: a
// stolen cookie works until it expires.
//
// A CookieCodec is safe for concurrent use.
type CookieCodec struct {
	aeads    []cipher.AEAD // aeads[0] seals
	secure   bool
	domain   string
	path     string
	sameSite http.SameSite
	now      func() time.Time
}

// NewCookieCodec checks cfg and derives the keys.
func NewCookieCodec(cfg CookieConfig) (*CookieCodec, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("oidcclient: cookie: no secret")
	}
	c := &CookieCodec{
		secure:   cfg.Secure,
		domain:   cfg.Domain,
		path:     cfg.Path,
		sameSite: cfg.SameSite,
		now:      cfg.Now,
	}
	for i, s := range cfg.Secrets {
		if len(s) < cookieMinSecret {
			return nil, fmt.Errorf("oidcclient: cookie: secret %d is %d bytes, need at least %d", i, len(s), cookieMinSecret)
		}
		aead, err := cookieNewAEAD(s)
		if err != nil {
			return nil, fmt.Errorf("oidcclient: cookie: secret %d: %w", i, err)
		}
		c.aeads = append(c.aeads, aead)
	}
	if c.path == "" || c.prefix() == "__Host-" {
		c.path = "/"
	}
	if !strings.HasPrefix(c.path, "/") || !cookieAttrValid(c.path) {
		return nil, fmt.Errorf("oidcclient: cookie: invalid path %q", cfg.Path)
	}
	if !cookieAttrValid(c.domain) || strings.ContainsAny(c.domain, " /") {
		return nil, fmt.Errorf("oidcclient: cookie: invalid domain %q", cfg.Domain)
	}
	if c.sameSite == 0 {
		c.sameSite = http.SameSiteLaxMode
	}
	if c.sameSite == http.SameSiteNoneMode && !c.secure {
		// Browsers reject SameSite=None without Secure.
		return nil, errors.New("oidcclient: cookie: SameSite=None requires Secure")
	}
	return c, nil
}

// cookieNewAEAD derives an AES-256 key from secret and returns its GCM.
func cookieNewAEAD(secret []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, secret, []byte(cookieKeySalt), cookieKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// cookieAttrValid reports whether s can go into a Set-Cookie attribute.
func cookieAttrValid(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7f || b == ';' {
			return false
		}
	}
	return true
}

// prefix returns the name prefix the configuration calls for.
func (c *CookieCodec) prefix() string {
	switch {
	case c.secure && c.domain == "":
		return "__Host-"
	case c.secure:
		return "__Secure-"
	}
	return ""
}

// Name returns the effective name of cookie base: base with the __Host- or
// __Secure- prefix when [CookieConfig.Secure] is set. Chunks are named
// Name(base)+"_1", "_2", and so on.
func (c *CookieCodec) Name(base string) string {
	return c.prefix() + base
}

func (c *CookieCodec) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Seal encrypts value and sets it as cookie base, HttpOnly, with Max-Age
// maxAge (at least a second) and an expiry sealed inside. An encoded value
// longer than about 3800 bytes is split over base, base_1, base_2 … up to
// ten cookies, each its own Set-Cookie header; Seal fails rather than write
// more. Chunks of an earlier, larger value that r shows are expired, so they
// cannot be joined to the new one; r may be nil, in which case leftovers
// stay and make Open fail until they are cleared or expire.
//
// Large values cost every request a large Cookie header: servers and
// proxies in front of the gateway may cap request headers at 8 KB.
func (c *CookieCodec) Seal(w http.ResponseWriter, r *http.Request, base string, value []byte, maxAge time.Duration) error {
	if !cookieNameValid(base) {
		return fmt.Errorf("oidcclient: cookie: invalid name %q", base)
	}
	if maxAge < time.Second {
		return fmt.Errorf("oidcclient: cookie %s: max age %v is under a second", base, maxAge)
	}
	name := c.Name(base)
	expiry := c.clock().Add(maxAge)
	// Check the size before encrypting: base64 of the sealed bytes.
	if n := base64.RawURLEncoding.EncodedLen(cookieExtra + cookieExpirySize + len(value)); n > cookieMaxEncoded {
		return fmt.Errorf("oidcclient: cookie %s: sealed value is %d bytes, limit %d", base, n, cookieMaxEncoded)
	}

	plain := make([]byte, cookieExpirySize, cookieExpirySize+len(value))
	binary.BigEndian.PutUint64(plain, uint64(expiry.Unix()))
	plain = append(plain, value...)
	sealed := make([]byte, 1+cookieNonceSize, cookieExtra+len(plain))
	sealed[0] = cookieVersion
	nonce := sealed[1 : 1+cookieNonceSize]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	sealed = c.aeads[0].Seal(sealed, nonce, plain, cookieAD(name))
	enc := base64.RawURLEncoding.EncodeToString(sealed)

	n := 0
	for ; len(enc) > 0; n++ {
		part := enc[:min(len(enc), cookieChunkSize)]
		enc = enc[len(part):]
		ck := c.cookie(cookieChunkName(name, n), part)
		ck.MaxAge = int(maxAge / time.Second)
		ck.Expires = expiry.UTC()
		http.SetCookie(w, ck)
	}
	c.expireChunks(w, r, name, n)
	return nil
}

// Open returns the value of cookie base, joining its chunks and trying
// every secret. It returns [ErrNoCookie] when the request (which may be
// nil) carries none of it, and an error wrapping [ErrInvalidCookie] for
// anything else that does not open to an unexpired value.
//
// When a name is repeated in the request (a sibling subdomain can add its
// own cookie of the same name unless the name is __Host-), every
// combination is tried and the value is accepted only if exactly one
// opens; two that open, such as a victim's and an attacker's own session,
// are refused rather than guessed between.
func (c *CookieCodec) Open(r *http.Request, base string) ([]byte, error) {
	name := c.Name(base)
	chunks, err := cookieRequestChunks(r, name)
	if err != nil {
		return nil, err
	}
	value, _, err := c.openChunks(name, chunks)
	return value, err
}

// openChunks opens the value of cookie name (with its prefix) from its
// chunks as [cookieRequestChunks] returns them, and returns it with the
// expiry sealed inside. It is [CookieCodec.Open] after the request has been
// read.
func (c *CookieCodec) openChunks(name string, chunks [][]string) ([]byte, time.Time, error) {
	candidates := 1
	for _, vs := range chunks {
		candidates *= len(vs)
		if candidates > cookieMaxCandidates {
			return nil, time.Time{}, cookieInvalid("too many duplicate cookies")
		}
	}

	// Try every combination of the repeated chunks, like an odometer.
	var (
		value    []byte
		expiry   time.Time
		opened   int
		firstErr error
		pick     = make([]int, len(chunks))
		sb       strings.Builder
	)
	for {
		sb.Reset()
		for i, vs := range chunks {
			sb.WriteString(vs[pick[i]])
		}
		v, exp, err := c.open(name, sb.String())
		switch {
		case err == nil:
			value, expiry = v, exp
			opened++
		case firstErr == nil:
			firstErr = err
		}
		i := len(pick) - 1
		for ; i >= 0; i-- {
			if pick[i]++; pick[i] < len(chunks[i]) {
				break
			}
			pick[i] = 0
		}
		if i < 0 {
			break
		}
	}
	switch opened {
	case 0:
		return nil, time.Time{}, firstErr
	case 1:
		return value, expiry, nil
	}
	return nil, time.Time{}, cookieInvalid("ambiguous duplicate cookies")
}

// open decrypts one joined value sealed for name, checks its expiry and
// returns the value with that expiry.
func (c *CookieCodec) open(name, enc string) ([]byte, time.Time, error) {
	// One reason for every decoding and authentication failure.
	errUndecryptable := cookieInvalid("cannot decrypt")
	if len(enc) > cookieMaxEncoded {
		return nil, time.Time{}, cookieInvalid("too large")
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(sealed) < cookieExtra+cookieExpirySize || sealed[0] != cookieVersion {
		return nil, time.Time{}, errUndecryptable
	}
	nonce, ciphertext := sealed[1:1+cookieNonceSize], sealed[1+cookieNonceSize:]
	ad := cookieAD(name)
	var plain []byte
	for _, aead := range c.aeads {
		if plain, err = aead.Open(nil, nonce, ciphertext, ad); err == nil {
			break
		}
	}
	if err != nil {
		return nil, time.Time{}, errUndecryptable
	}
	secs := int64(binary.BigEndian.Uint64(plain))
	expiry := time.Unix(secs, 0)
	if secs < 0 || !c.clock().Before(expiry) {
		return nil, time.Time{}, cookieInvalid("expired")
	}
	return plain[cookieExpirySize:], expiry, nil
}

// Clear expires cookie base and every chunk of it that r shows. r may be
// nil, in which case only base itself is expired.
func (c *CookieCodec) Clear(w http.ResponseWriter, r *http.Request, base string) {
	name := c.Name(base)
	http.SetCookie(w, c.expired(name))
	c.expireChunks(w, r, name, 1)
}

// expireChunks expires every chunk of name from index from up that r shows.
func (c *CookieCodec) expireChunks(w http.ResponseWriter, r *http.Request, name string, from int) {
	if r == nil {
		return
	}
	done := make(map[string]bool)
	for _, ck := range r.Cookies() {
		if i, ok := cookieChunkIndex(ck.Name, name); ok && i >= from && !done[ck.Name] {
			done[ck.Name] = true
			http.SetCookie(w, c.expired(ck.Name))
		}
	}
}

// cookie returns a cookie with the codec's attributes.
func (c *CookieCodec) cookie(name, value string) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     c.path,
		Domain:   c.domain,
		Secure:   c.secure,
		HttpOnly: true,
		SameSite: c.sameSite,
	}
}

// expired returns a cookie that deletes name.
func (c *CookieCodec) expired(name string) *http.Cookie {
	ck := c.cookie(name, "")
	ck.MaxAge = -1 // Max-Age=0
	ck.Expires = time.Unix(0, 0).UTC()
	return ck
}

// cookieRequestChunks returns the values r carries for each chunk of name, in
// order, each with at least one value.
func cookieRequestChunks(r *http.Request, name string) ([][]string, error) {
	if r == nil {
		return nil, ErrNoCookie
	}
	var chunks [cookieMaxChunks][]string
	for _, ck := range r.Cookies() {
		i, ok := cookieChunkIndex(ck.Name, name)
		if !ok {
			continue
		}
		if i >= cookieMaxChunks {
			return nil, cookieInvalid("too many chunks")
		}
		if len(ck.Value) > cookieChunkSize {
			return nil, cookieInvalid("too large")
		}
		chunks[i] = append(chunks[i], ck.Value)
	}
	n := 0
	for i, vs := range chunks {
		if len(vs) > 0 {
			n = i + 1
		}
	}
	if n == 0 {
		return nil, ErrNoCookie
	}
	for _, vs := range chunks[:n] {
		if len(vs) == 0 {
			return nil, cookieInvalid("missing chunk")
		}
	}
	return chunks[:n], nil
}

// cookieChunkName returns the name of chunk i of name: name itself, then name_1,
// name_2 …
func cookieChunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "_" + strconv.Itoa(i)
}

// cookieChunkIndex reports whether cookie is chunk i of name, the inverse of
// [cookieChunkName]. Indexes of up to three digits are recognised, so that a
// request with too many chunks is noticed rather than ignored.
func cookieChunkIndex(cookie, name string) (int, bool) {
	if cookie == name {
		return 0, true
	}
	digits, ok := strings.CutPrefix(cookie, name+"_")
	if !ok || len(digits) == 0 || len(digits) > 3 || digits[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(digits)
	return i, err == nil
}

// cookieNameValid reports whether base is a usable cookie name.
func cookieNameValid(base string) bool {
	return base != "" && (&http.Cookie{Name: base}).Valid() == nil
}

// cookieAD is the additional data a value for cookie name is sealed with.
func cookieAD(name string) []byte {
	return append([]byte{cookieVersion}, name...)
}

func cookieInvalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalidCookie, reason)
}
