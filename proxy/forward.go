package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/httpsec"
)

// newRoute is what routing reads of a route: its name, host (lower case)
// and prefix (without a trailing slash; "/" for the root).
func newRoute(rs *Route) *route {
	rt := &route{name: rs.Name, host: strings.ToLower(rs.Host), prefix: strings.TrimSuffix(rs.PathPrefix, "/")}
	if rt.prefix == "" {
		rt.prefix = "/"
	}
	rt.folded = strings.ToLower(rt.prefix)
	return rt
}

// buildRoute converts one route and builds its ReverseProxy.
func (g *generation) buildRoute(rs *Route) (*route, error) {
	if rs.Upstream == nil {
		return nil, fmt.Errorf("proxy: route %s: no upstream", rs.Name)
	}
	if rs.Auth != AuthPublic && g.authn == nil {
		return nil, fmt.Errorf("proxy: route %s needs an issuer", rs.Name)
	}
	rt := newRoute(rs)
	rt.upstream = rs.Upstream
	h2c := rs.Upstream.Scheme == "h2c"
	if h2c {
		u := *rs.Upstream
		u.Scheme = "http"
		rt.upstream = &u
	}
	rt.auth = rs.Auth
	rt.policy = rs.Policy
	rt.idHeaders = identityHeaders(rs.ForwardHeaders)
	rt.forwardToken = rs.ForwardToken
	if rt.forwardToken.Mode == TokenHeader {
		rt.forwardToken.Header = textproto.CanonicalMIMEHeaderKey(rt.forwardToken.Header)
	}
	rt.preserveHost = rs.PreserveHost
	rt.maxBody = rs.MaxBodyBytes
	rt.onUnauth = rs.Unauthenticated
	if rs.Methods != nil {
		rt.methods = slices.Clone(rs.Methods)
		rt.allow = strings.Join(rt.methods, ", ")
	}
	rt.preflight = rs.PassPreflight
	if rs.Metadata != nil {
		m, err := newResourceMeta(rs)
		if err != nil {
			return nil, err
		}
		rt.meta = m
	}
	if rs.Rules.Len() > 0 {
		rt.rules = rs.Rules
		for i := range rt.rules.Len() {
			decision := "deny"
			if rt.rules.Allows(i) {
				decision = "allow"
			}
			rt.ruleDecisions = append(rt.ruleDecisions, g.metrics.ruleDecisions.WithLabelValues(rt.name, rt.rules.Name(i), decision))
		}
		rt.ruleDecisions = append(rt.ruleDecisions, g.metrics.ruleDecisions.WithLabelValues(rt.name, "default", "deny"))
	}
	rt.upstreamT = g.metrics.upstreamLatency.WithLabelValues(rt.name)
	tr := newTransport(rs.Timeout)
	tr.TLSClientConfig = rs.UpstreamTLS
	if h2c {
		// Cleartext HTTP/2 with prior knowledge, as gRPC servers without
		// TLS speak it; one connection carries every stream.
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	var transport http.RoundTripper = tr
	if rs.Upstream.Scheme == "http" && !stdUpstreamTransport {
		transport = newH1Transport(tr, rs.Upstream.Host, rs.Timeout)
	}
	rt.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      transport,
		FlushInterval:  0, // ReverseProxy streams event streams and unknown-length bodies by itself
		BufferPool:     newBufferPool(),
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamError,
		ErrorLog:       nil,
	}
	return rt, nil
}

// stdUpstreamTransport turns the HTTP/1.1 fast path (h1Transport) off, so
// that bench/ can measure what it saves: PORTCULLIS_UPSTREAM_TRANSPORT=std.
var stdUpstreamTransport = os.Getenv("PORTCULLIS_UPSTREAM_TRANSPORT") == "std"

// newTransport returns a transport tuned for one upstream: enough idle
// connections for a busy gateway, a dial timeout, and a bound on waiting
// for response headers.
func newTransport(responseTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never route upstream traffic via HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		// A proxy passes the client's Accept-Encoding on as it is; asking
		// for gzip on its behalf only to decompress it again wastes CPU.
		DisableCompression: true,
	}
}

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers and the X-Forwarded-* and Forwarded headers.
func (g *generation) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	rt := st.route
	out := pr.Out

	// Forward the cleaned path, which is the one that was routed.
	if st.raw != pr.In.URL.EscapedPath() {
		if p, err := url.PathUnescape(st.raw); err == nil {
			out.URL.Path, out.URL.RawPath = p, st.raw
		}
	}
	pr.SetURL(rt.upstream)
	if rt.preserveHost {
		out.Host = pr.In.Host
	}

	// Delete every header portcullis sets, in every spelling, on every
	// route: clients never speak for the gateway. Its own cookies (the
	// session, login attempts) are not the upstream's business either.
	g.protected.strip(out.Header)
	if g.login != nil {
		removeCookiesWithPrefix(out.Header, g.login.cookie)
	}

	// X-Forwarded-*: believed only from trusted proxies.
	trusted := g.isTrusted(pr.In.RemoteAddr)
	if trusted {
		for _, h := range [...]string{"X-Forwarded-For"} {
			if v := pr.In.Header[h]; len(v) > 0 {
				out.Header[h] = append([]string(nil), v...)
			}
		}
	}
	pr.SetXForwarded()
	if trusted {
		for _, h := range [...]string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := pr.In.Header.Get(h); v != "" {
				out.Header.Set(h, v)
			}
		}
	}

	if st.id != nil {
		setIdentity(out.Header, rt.idHeaders, st.id)
		g.forwardToken(out, rt, st.id)
	}

	// A gRPC deadline travels on as what is left of it, as a gRPC proxy
	// propagates it.
	if st.deadline {
		if dl, ok := out.Context().Deadline(); ok {
			out.Header.Set("Grpc-Timeout", formatGRPCTimeout(time.Until(dl)))
		}
	}
	if g.tracing != nil {
		st.span = g.tracing.startUpstream(out)
	}
}

// forwardToken removes the token from where the client put it unless the
// route forwards it, and sets it where the route wants it.
func (g *generation) forwardToken(out *http.Request, rt *route, id *authn.Identity) {
	switch id.Source.Kind {
	case authn.SourceHeader:
		if rt.forwardToken.Mode != TokenBearer {
			out.Header.Del("Authorization")
		}
		// A DPoP proof was spent here, for this hop's URL; it is of no
		// use to the upstream.
		out.Header.Del("Dpop")
	case authn.SourceQuery:
		q := out.URL.Query()
		q.Del(id.Source.Name)
		out.URL.RawQuery = q.Encode()
	case authn.SourceCookie:
		removeCookie(out.Header, id.Source.Name)
	}
	switch rt.forwardToken.Mode {
	case TokenBearer:
		scheme := "Bearer "
		if id.Binding == authn.BindingDPoP {
			scheme = "DPoP " // as it came: the upstream sees it is bound
		}
		out.Header.Set("Authorization", scheme+id.Token)
	case TokenHeader:
		out.Header.Set(rt.forwardToken.Header, id.Token)
	}
}

// ClientAddr is the address of the client behind any trusted proxies: the
// right-most X-Forwarded-For entry that is not itself a trusted proxy.
func ClientAddr(trusted []netip.Prefix, r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := ap.Addr().Unmap()
	in := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !in(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = a.Unmap()
		if !in(addr) {
			break
		}
	}
	return addr.String()
}

func (g *generation) isTrusted(remoteAddr string) bool { return isTrustedAddr(g.trusted, remoteAddr) }

// isTrustedAddr reports whether remoteAddr is in trusted.
func isTrustedAddr(trusted []netip.Prefix, remoteAddr string) bool {
	if len(trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// modifyResponse records upstream latency and lifts the write timeout for
// event streams.
func (g *generation) modifyResponse(res *http.Response) error {
	st := res.Request.Context().Value(stateKey{}).(*reqState)
	st.route.upstreamT.Observe(g.now().Sub(st.start).Seconds())
	if st.span != nil {
		endUpstream(st.span, res.StatusCode, nil)
		st.span = nil
	}
	if g.writeTimeout > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		_ = http.NewResponseController(st.w).SetWriteDeadline(time.Time{})
	}
	return nil
}

// upstreamError is the one place upstream failures become responses: a
// timeout is 504, a client that went away is only logged (nginx's 499), an
// oversized body is 413, everything else 502. No error text reaches the
// client.
func (g *generation) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*reqState)
	name := st.route.name
	if st.span != nil {
		endUpstream(st.span, 0, err)
		st.span = nil
	}
	var maxErr *http.MaxBytesError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &maxErr) || st.body != nil && errors.As(st.body.err, &maxErr):
		g.metrics.upstreamErrors.WithLabelValues(name, "body_too_large").Inc()
		g.plainStatus(w, http.StatusRequestEntityTooLarge, "request body too large")
	case st.body != nil && st.body.err != nil && r.Context().Err() == nil:
		g.metrics.upstreamErrors.WithLabelValues(name, "bad_request_body").Inc()
		w.Header().Set("Connection", "close")
		g.plainStatus(w, http.StatusBadRequest, "malformed request body")
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		g.metrics.upstreamErrors.WithLabelValues(name, "canceled").Inc()
		g.log.Debug("client went away", "route", name, "path", r.URL.Path)
	case st.deadline && errors.Is(r.Context().Err(), context.DeadlineExceeded):
		// The gRPC call's own grpc-timeout, which portcullis enforces.
		g.metrics.upstreamErrors.WithLabelValues(name, "timeout").Inc()
		g.log.Debug("grpc-timeout passed", "route", name, "path", r.URL.Path)
		g.plainStatus(w, http.StatusGatewayTimeout, "deadline exceeded: the call's grpc-timeout passed before the upstream answered")
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout():
		g.metrics.upstreamErrors.WithLabelValues(name, "timeout").Inc()
		g.log.Warn("upstream timeout", "route", name, "path", r.URL.Path, "err", err)
		msg := "gateway timeout"
		if grpcCall(w) {
			msg = "upstream timeout: no response headers within the route's timeout"
		}
		g.plainStatus(w, http.StatusGatewayTimeout, msg)
	default:
		g.metrics.upstreamErrors.WithLabelValues(name, "error").Inc()
		g.log.Warn("upstream error", "route", name, "path", r.URL.Path, "err", err)
		msg := "bad gateway"
		if grpcCall(w) {
			msg = "upstream unavailable: " + upstreamFailure(err)
		}
		g.plainStatus(w, http.StatusBadGateway, msg)
	}
}

// plainStatus writes one of portcullis' own short text answers. They are
// never framed, cached, sniffed or referred on.
func (g *generation) plainStatus(w http.ResponseWriter, status int, msg string) {
	if grpcCall(w) {
		writeGRPCStatus(w, grpcCode(status), msg)
		return
	}
	httpsec.Set(w.Header(), "text/plain; charset=utf-8", httpsec.PlainCSP)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// upstreamFailure says in a few words why a round trip failed, without
// the error's text (which may name internal addresses).
func upstreamFailure(err error) string {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		return "connection refused or unreachable"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "round trip failed"
}
