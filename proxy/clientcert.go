package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Formats of the header a TLS-terminating proxy passes the client
// certificate in.
const (
	CertHeaderXFCC = "xfcc" // Envoy's X-Forwarded-Client-Cert: Hash=…;Cert="…"
	CertHeaderPEM  = "pem"  // URL-escaped PEM, nginx's $ssl_client_escaped_cert
)

// ClientCertThumbprint returns the function that gives a request's client
// certificate as RFC 8705 §3.1's x5t#S256 (the SHA-256 of its DER,
// base64url), "" for none: the certificate of the TLS connection, which the
// listener has checked against its client CAs, or else, from a trusted
// proxy only, the one in header (format xfcc or pem; "" reads no header).
func ClientCertThumbprint(trusted []netip.Prefix, header, format string) func(*http.Request) string {
	return func(r *http.Request) string {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			return thumbprint(r.TLS.PeerCertificates[0].Raw)
		}
		if header == "" || !isTrustedAddr(trusted, r.RemoteAddr) {
			return ""
		}
		vals := r.Header.Values(header)
		if len(vals) == 0 {
			return ""
		}
		if format == CertHeaderPEM {
			if len(vals) != 1 {
				return ""
			}
			return pemThumbprint(vals[0])
		}
		// Each proxy appends an element; the last is the one the proxy in
		// front of portcullis, the trusted one, wrote.
		elems := splitQuoted(strings.Join(vals, ","), ',')
		return xfccThumbprint(elems[len(elems)-1])
	}
}

func thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// pemThumbprint reads a URL-escaped PEM certificate.
func pemThumbprint(escaped string) string {
	raw, err := url.QueryUnescape(escaped)
	if err != nil {
		return ""
	}
	b, _ := pem.Decode([]byte(raw))
	if b == nil || b.Type != "CERTIFICATE" {
		return ""
	}
	return thumbprint(b.Bytes)
}

// xfccThumbprint reads one element of X-Forwarded-Client-Cert: the
// certificate of Cert when given, else Hash (hex SHA-256 of the DER).
func xfccThumbprint(elem string) string {
	var hash, cert string
	for _, kv := range splitQuoted(elem, ';') {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch strings.ToLower(k) {
		case "hash":
			hash = v
		case "cert":
			cert = v
		}
	}
	if cert != "" {
		return pemThumbprint(cert)
	}
	sum, err := hex.DecodeString(hash)
	if err != nil || len(sum) != sha256.Size {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
