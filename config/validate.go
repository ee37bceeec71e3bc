package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks c, with its defaults applied, and returns every problem at
// once as [Errors] sorted by line, or nil. Each problem names the key and,
// for a loaded file, the line of that key or of its nearest written parent.
// [Parse] calls it; call it yourself only on a [Config] built in code, after
// filling in the defaults yourself.
//
// Validate reads the file system for one thing: server.tls files must exist
// and be regular files that can be opened (relative paths are relative to
// the working directory).
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.server()
	v.admin()
	v.log()
	v.issuers()
	v.routes()
	v.builtinIssuer()
	v.login()
	v.telemetry()
	return v.errs.asError()
}

// validator collects the problems of one [Config.Validate] call.
type validator struct {
	c    *Config
	errs Errors
}

// errorf records a problem with key, at the line of key or its parent.
func (v *validator) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.c.file, Line: v.c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// nonNegative reports negative durations, which only a Config built in code
// can hold (the YAML decoder rejects them).
func (v *validator) nonNegative(key string, d Duration) {
	if d < 0 {
		v.errorf(key, "must not be negative; write a duration such as 30s, or 0s")
	}
}

// server checks the main listener's settings.
func (v *validator) server() {
	s := &v.c.Server
	if msg := checkListen(s.Listen); msg != "" {
		v.errorf("server.listen", "%s", msg)
	}
	v.publicURL()
	for i, tp := range s.TrustedProxies {
		if !isIPOrCIDR(tp) {
			v.errorf(indexPath("server.trusted_proxies", i), "%q is not an IP address or CIDR; write it like 10.0.0.0/8, fd00::/8 or 192.0.2.7", tp)
		}
	}
	v.tls()
	v.nonNegative("server.read_header_timeout", s.ReadHeaderTimeout)
	v.nonNegative("server.read_timeout", s.ReadTimeout)
	v.nonNegative("server.write_timeout", s.WriteTimeout)
	v.nonNegative("server.idle_timeout", s.IdleTimeout)
	v.nonNegative("server.shutdown_grace", s.ShutdownGrace)
	if s.H2C && s.TLS.CertFile != "" {
		v.errorf("server.h2c", "is for the plain listener; with server.tls, HTTP/2 is negotiated by ALPN: remove h2c")
	}
	v.nonNegative("server.shutdown_delay", s.ShutdownDelay)
	if s.ShutdownDelay.D() > 5*time.Minute {
		v.errorf("server.shutdown_delay", "is %s; a delay is seconds long, enough for load balancers to see /readyz fail (5s in Kubernetes), at most 5m", s.ShutdownDelay.D())
	}
	v.nonNegative("server.auth_failure_delay", s.AuthFailureDelay)
	if s.MaxHeaderBytes <= 0 {
		v.errorf("server.max_header_bytes", "is %d; want a positive number of bytes, such as 32768", s.MaxHeaderBytes)
	}
	if s.MaxConnections < 0 {
		v.errorf("server.max_connections", "is %d; want a number of connections such as 10000, or 0 for no limit", s.MaxConnections)
	}
	v.dpop()
	tc := s.TokenCache
	if tc.Entries < 0 {
		v.errorf("server.token_cache.entries", "is %d; want a number of tokens such as 20000, or 0 to turn the cache off", tc.Entries)
	}
	if tc.Entries > 0 && tc.Bytes <= 0 {
		v.errorf("server.token_cache.bytes", "is %d; want a positive number of bytes, such as 16777216", tc.Bytes)
	}
	if tc.Entries > 0 && tc.MaxAge <= 0 {
		v.errorf("server.token_cache.max_age", "is %s; want a positive duration such as 5m (entries: 0 turns the cache off)", tc.MaxAge.D())
	}
	if s.Rules.MaxListSize < 0 || s.Rules.MaxListSize == 0 && v.c.has("server.rules.max_list_size") {
		v.errorf("server.rules.max_list_size", "is %d; want a positive number of elements, such as 100", s.Rules.MaxListSize)
	}
	if s.Rules.MaxCost < 0 || s.Rules.MaxCost == 0 && v.c.has("server.rules.max_cost") {
		v.errorf("server.rules.max_cost", "is %d; want a positive cost, such as 100000", s.Rules.MaxCost)
	}
}

// publicURL checks server.public_url, which defaults from server.listen.
func (v *validator) publicURL() {
	const key = "server.public_url"
	s := &v.c.Server
	origin := ""
	if !v.c.has(key) {
		if checkListen(s.Listen) != "" {
			return // derived from a listen address already reported
		}
		origin = " (defaulted from server.listen; set server.public_url to the URL clients use)"
	}
	u, msg := parseHTTPURL(s.PublicURL, false)
	if msg != "" {
		v.errorf(key, "%s%s", msg, origin)
		return
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) && !s.InsecureAllowHTTP {
		v.errorf(key, "%q is plain http on a host that is not loopback%s; use https, or set server.insecure_allow_http: true when TLS ends in front of the gateway", u.Redacted(), origin)
	}
}

// tls checks that both or neither TLS files are set, and that they exist.
func (v *validator) tls() {
	t := v.c.Server.TLS
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.CertFile == "":
		v.errorf("server.tls.cert_file", "is empty but key_file is set; set both to serve HTTPS, or neither")
	case t.KeyFile == "":
		v.errorf("server.tls.key_file", "is empty but cert_file is set; set both to serve HTTPS, or neither")
	default:
		for key, name := range map[string]string{"server.tls.cert_file": t.CertFile, "server.tls.key_file": t.KeyFile} {
			if msg := checkReadable(name); msg != "" {
				v.errorf(key, "%s", msg)
			}
		}
	}
	if t.ClientCAFile != "" {
		if t.CertFile == "" {
			v.errorf("server.tls.client_ca_file", "needs cert_file and key_file: client certificates come with TLS on this listener (behind a proxy that ends TLS, use client_cert_header)")
		} else if msg := checkReadable(t.ClientCAFile); msg != "" {
			v.errorf("server.tls.client_ca_file", "%s", msg)
		}
	}
	switch t.ClientAuth {
	case "", "optional":
	case "require":
		if t.ClientCAFile == "" {
			v.errorf("server.tls.client_auth", "require needs client_ca_file, the CAs client certificates are checked against")
		}
	default:
		v.errorf("server.tls.client_auth", "%q is not a mode; want optional (a client may send no certificate) or require", t.ClientAuth)
	}
	h := t.ClientCertHeader
	switch {
	case h.Name == "" && h.Format != "":
		v.errorf("server.tls.client_cert_header.format", "has no effect without name; set name, such as X-Forwarded-Client-Cert")
	case h.Format != "" && h.Format != "xfcc" && h.Format != "pem":
		v.errorf("server.tls.client_cert_header.format", "%q is not a format; want xfcc (Envoy's X-Forwarded-Client-Cert) or pem (URL-escaped PEM, nginx's $ssl_client_escaped_cert)", h.Format)
	case h.Name != "" && len(v.c.Server.TrustedProxies) == 0:
		v.errorf("server.tls.client_cert_header.name", "is read only from server.trusted_proxies, and none are listed; list the proxy that ends TLS there")
	}
}

// checkReadable reports why name is not a regular file that can be opened.
// It does not read it: it might be a device or a pipe.
func checkReadable(name string) string {
	fi, err := os.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		return fmt.Sprintf("%q is not a regular file; want a PEM file", name)
	}
	if err == nil {
		var f *os.File
		if f, err = os.Open(name); err == nil {
			f.Close()
			return ""
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("cannot read %q: %v; want a readable PEM file", name, err)
}

// admin checks the admin listener, which may be off but not collide with
// the main one.
func (v *validator) admin() {
	a, s := v.c.Admin.Listen, v.c.Server.Listen
	switch t := v.c.Admin.Token; {
	case t == "":
	case a == "off":
		v.errorf("admin.token", "has no effect with admin.listen: off; give the admin listener an address, or remove this key")
	case len(t) < 16 || strings.TrimSpace(t) != t:
		v.errorf("admin.token", "is %d characters; want at least 16 random characters without spaces at either end, from the environment, such as \"${PORTCULLIS_ADMIN_TOKEN}\"", len(t))
	}
	if a == "off" {
		return
	}
	if msg := checkListen(a); msg != "" {
		v.errorf("admin.listen", "%s, or off", msg)
		return
	}
	if sameListener(a, s) {
		v.errorf("admin.listen", "%q is the address of server.listen too; give the admin listener another port, or write off", a)
	}
}

// log checks the level and format names.
func (v *validator) log() {
	l := v.c.Log
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		v.errorf("log.level", "%q is not a level; want debug, info, warn or error", l.Level)
	}
	if l.Format != "text" && l.Format != "json" {
		v.errorf("log.format", "%q is not a format; want text or json", l.Format)
	}
}

// checkListen reports why addr is not host:port with a port from 0 to 65535.
func checkListen(addr string) string {
	if addr == "" {
		return "is empty; want host:port such as 127.0.0.1:8080"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port; write it like 127.0.0.1:8080, :8080 or [::1]:8080", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("port %q of %q is not a number from 0 to 65535", port, addr)
	}
	return ""
}

// sameListener reports whether two valid listen addresses would collide: the
// same non-zero port on the same host, or on any host when either is a
// wildcard.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na == 0 || na != nb {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return strings.EqualFold(ha, hb) || wildcard(ha) || wildcard(hb)
}

// parseHTTPURL parses an absolute http or https URL with a host and no
// fragment or user info; a query is allowed only with allowQuery. It returns
// the reason when s is not one.
func parseHTTPURL(s string, allowQuery bool) (*url.URL, string) {
	const like = "write it like https://example.com/path"
	if s == "" {
		return nil, "is empty; " + like
	}
	if !strings.Contains(s, "://") {
		// 127.0.0.1:3000, localhost:3000, app.internal/x: a host without
		// its scheme.
		host, _, _ := strings.Cut(s, "/")
		looksLikeHost := strings.ContainsAny(host, ".:") || strings.EqualFold(host, "localhost")
		if u, err := url.Parse("http://" + s); looksLikeHost && err == nil && u.Hostname() != "" && u.User == nil {
			scheme := "https"
			if isLoopback(u.Hostname()) {
				scheme = "http"
			}
			return nil, fmt.Sprintf("%q has no scheme; write it like %s://%s", s, scheme, s)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL itself might hold a password
		}
		return nil, fmt.Sprintf("is not a URL (%v); %s", err, like)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Sprintf("%q is not an http or https URL; %s", u.Redacted(), like)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Sprintf("%q has no host; %s", u.Redacted(), like)
	case u.User != nil:
		return nil, "must not hold a user name or password; " + like
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Sprintf("%q must not have a #fragment; %s", u.Redacted(), like)
	case !allowQuery && (u.RawQuery != "" || u.ForceQuery):
		return nil, fmt.Sprintf("%q must not have a ?query; %s", u.Redacted(), like)
	}
	return u, ""
}

// isLoopback reports whether host is localhost, in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// isIPOrCIDR reports whether s is an IP address or a CIDR prefix.
func isIPOrCIDR(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isToken reports whether s is an RFC 9110 token: the characters of HTTP
// header field names, cookie names (RFC 6265) and media type parts.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// dpopAlgorithms are the algorithms server.dpop.algorithms may list.
var dpopAlgorithms = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519"}

// dpop checks server.dpop.
func (v *validator) dpop() {
	d := v.c.Server.DPoP
	if len(d.Algorithms) == 0 && v.c.has("server.dpop.algorithms") {
		v.errorf("server.dpop.algorithms", "lists no algorithm; want some of %s, or leave the key out for the default", strings.Join(dpopAlgorithms, ", "))
	}
	for j, a := range d.Algorithms {
		if !slices.Contains(dpopAlgorithms, a) {
			v.errorf(indexPath("server.dpop.algorithms", j), "%q is not a DPoP proof algorithm; want one of %s (asymmetric only: a proof is signed with the client's own key)", a, strings.Join(dpopAlgorithms, ", "))
		}
	}
	if r := d.ReplayStore; r != "" && r != StoreMemory && !strings.HasPrefix(r, "redis://") && !strings.HasPrefix(r, "rediss://") {
		v.errorf("server.dpop.replay_store", "%q is not a store; want memory or a Redis URL redis://host:6379/0 (rediss:// for TLS)", RedactStore(r))
	}
	if m := d.MaxAge.D(); m != 0 && (m < time.Second || m > 10*time.Minute) || m == 0 && v.c.has("server.dpop.max_age") {
		v.errorf("server.dpop.max_age", "is %s; want from 1s to 10m, such as 60s", m)
	}
}
