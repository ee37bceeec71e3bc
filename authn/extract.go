package authn

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// SourceKind says where a token was found.
type SourceKind uint8

// Token sources.
const (
	SourceHeader  SourceKind = iota + 1 // Authorization: Bearer
	SourceCookie                        // a named cookie
	SourceQuery                         // a named query parameter
	SourceSession                       // the gateway's login session (set by the caller)
)

// Source is one place a route looks for a token.
type Source struct {
	Kind SourceKind
	// Name is the cookie or query parameter name; empty for SourceHeader.
	Name string
}

// String returns the source in config syntax: header, cookie:NAME, query:NAME.
func (s Source) String() string {
	switch s.Kind {
	case SourceHeader:
		return "header"
	case SourceCookie:
		return "cookie:" + s.Name
	case SourceQuery:
		return "query:" + s.Name
	case SourceSession:
		return "session"
	}
	return "unknown"
}

// ParseSource parses config syntax: header, cookie:NAME or query:NAME.
func ParseSource(s string) (Source, error) {
	switch {
	case s == "header":
		return Source{Kind: SourceHeader}, nil
	case strings.HasPrefix(s, "cookie:") && len(s) > len("cookie:"):
		return Source{Kind: SourceCookie, Name: s[len("cookie:"):]}, nil
	case strings.HasPrefix(s, "query:") && len(s) > len("query:"):
		return Source{Kind: SourceQuery, Name: s[len("query:"):]}, nil
	}
	return Source{}, fmt.Errorf("authn: token source %q: want header, cookie:NAME or query:NAME", s)
}

// DefaultSources is where tokens are looked for when a route names none.
var DefaultSources = []Source{{Kind: SourceHeader}}

// Extract finds the request's token in sources. It returns ("", Source{}, nil)
// when there is none. A request that carries a token in more than one place
// (RFC 6750 §2: clients must use only one method), two Authorization headers,
// two cookies or query parameters of the token's name, or an empty bearer
// token, is an [Error] with status 400. An Authorization header with another
// scheme (Basic, say) is not a bearer token and is ignored here.
func Extract(r *http.Request, sources []Source, maxLen int) (string, Source, error) {
	tok, src, _, err := extract(r, sources, maxLen)
	return tok, src, err
}

// extract is Extract that also says the header token's scheme: "Bearer",
// or SchemeDPoP for "Authorization: DPoP" (RFC 9449 §7.1); "" for a token
// from a cookie or the query.
func extract(r *http.Request, sources []Source, maxLen int) (string, Source, string, error) {
	if len(sources) == 0 {
		sources = DefaultSources
	}
	var (
		token, scheme string
		found         Source
		n             int
	)
	for _, src := range sources {
		t, ok, err := extractOne(r, src)
		if err != nil {
			return "", Source{}, "", err
		}
		if !ok {
			continue
		}
		n++
		token, found, scheme = t, src, ""
		if src.Kind == SourceHeader {
			scheme = authScheme(r.Header)
		}
	}
	if n > 1 {
		return "", Source{}, "", invalidRequest("token sent in more than one place")
	}
	if n == 0 {
		return "", Source{}, "", nil
	}
	if maxLen > 0 && len(token) > maxLen {
		return "", Source{}, "", invalidToken(ReasonMalformed, "token too long")
	}
	return token, found, scheme, nil
}

func extractOne(r *http.Request, src Source) (string, bool, error) {
	switch src.Kind {
	case SourceHeader:
		return bearer(r.Header)
	case SourceCookie:
		return cookieToken(r, src.Name)
	case SourceQuery:
		return queryToken(r.URL, src.Name)
	}
	return "", false, nil
}

// authScheme is the scheme of the Authorization header when it is one a
// token comes in: "Bearer" (RFC 6750 §2.1) or "DPoP" (RFC 9449 §7.1),
// case-insensitive; "" for any other.
func authScheme(h http.Header) string {
	v := h.Get("Authorization")
	for _, s := range [...]string{"Bearer", SchemeDPoP} {
		if len(v) >= len(s) && strings.EqualFold(v[:len(s)], s) && (len(v) == len(s) || v[len(s)] == ' ' || v[len(s)] == '\t') {
			return s
		}
	}
	return ""
}

// bearer reads an RFC 6750 §2.1 bearer token, or a DPoP-bound token of
// RFC 9449 §7.1; the scheme is case-insensitive.
func bearer(h http.Header) (string, bool, error) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, invalidRequest("more than one Authorization header")
	}
	v := vals[0]
	scheme := authScheme(h)
	if scheme == "" {
		return "", false, nil
	}
	rest := v[len(scheme):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false, nil // "Bearerfoo" is some other scheme
	}
	tok := strings.Trim(rest, " \t")
	if tok == "" {
		return "", false, invalidRequest("empty bearer token")
	}
	if !isB64Token(tok) {
		return "", false, invalidToken(ReasonMalformed, "token is not a bearer token")
	}
	return tok, true, nil
}

// isB64Token reports whether s matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// b64TokenChar marks the characters of RFC 6750's b64token before any "=".
var b64TokenChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

func cookieToken(r *http.Request, name string) (string, bool, error) {
	if len(r.Header["Cookie"]) == 0 {
		return "", false, nil
	}
	cs := r.CookiesNamed(name)
	switch len(cs) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, invalidRequest("more than one token cookie")
	}
	if cs[0].Value == "" {
		return "", false, nil
	}
	if !isB64Token(cs[0].Value) {
		return "", false, invalidToken(ReasonMalformed, "token is not a bearer token")
	}
	return cs[0].Value, true, nil
}

func queryToken(u *url.URL, name string) (string, bool, error) {
	if u.RawQuery == "" {
		return "", false, nil
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", false, invalidRequest("malformed query string")
	}
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", false, invalidRequest("more than one token parameter")
	}
	if vs[0] == "" {
		return "", false, nil
	}
	if !isB64Token(vs[0]) {
		return "", false, invalidToken(ReasonMalformed, "token is not a bearer token")
	}
	return vs[0], true, nil
}

// RedactQuery returns rawQuery with the values of the named parameters
// replaced by "REDACTED", for logging. Unparseable queries are dropped whole.
func RedactQuery(rawQuery string, names []string) string {
	if rawQuery == "" || len(names) == 0 {
		return rawQuery
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "REDACTED"
	}
	hit := false
	for _, n := range names {
		if vs, ok := q[n]; ok {
			for i := range vs {
				vs[i] = "REDACTED"
			}
			hit = true
		}
	}
	if !hit {
		return rawQuery
	}
	return q.Encode()
}
