package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"net/url"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/oidcclient"
	"github.com/portcullis-dev/portcullis/rules"
)

// Config configures a [Gateway]: its listeners and its clock. What it
// serves comes separately, one [Spec] per configuration ([Gateway.Swap]).
type Config struct {
	// Listen is the proxy listener's host:port.
	Listen string
	// AdminListen is the admin listener's host:port; "" runs none.
	AdminListen string
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS on Listen; the
	// files are read again when they change.
	TLSCertFile, TLSKeyFile string
	// ClientCAs, with TLS, asks clients for certificates and checks them
	// against these CAs; RequireClientCert fails handshakes without one.
	ClientCAs         *x509.CertPool
	RequireClientCert bool
	// The http.Server's bounds; zero means none, as in net/http.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// MaxConnections bounds the client connections open at once on the
	// proxy listener; one past it is closed when accepted. 0: no limit.
	MaxConnections int
	// H2C accepts HTTP/2 with prior knowledge on a plain (not TLS)
	// listener, besides HTTP/1.1. TLS negotiates HTTP/2 by ALPN anyway.
	H2C bool
	// ShutdownDelay is how long the listener keeps serving after shutdown
	// begins, with /readyz answering 503; ShutdownGrace bounds draining
	// the requests in flight after that.
	ShutdownDelay, ShutdownGrace time.Duration

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for metrics and certificate checks; nil means
	// time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, whichever comes first; it
	// holds back answers to connections that keep failing authentication.
	// nil means a timer.
	Sleep func(ctx context.Context, d time.Duration)
	// Tracing, when its Tracer is set, gives every request a server span,
	// its round trip to the upstream a client span, and the upstream the
	// trace context; nil traces nothing.
	Tracing *Tracing
}

// Spec is one configuration of what the gateway serves, its parts already
// built: the authenticator, the built-in issuer, the browser login, the
// routes. A [Gateway] serves one Spec at a time and swaps in the next
// whole.
type Spec struct {
	// PublicURL is the gateway's external base URL, the realm of its
	// challenges.
	PublicURL string
	// TrustedProxies are the addresses whose X-Forwarded-* headers are
	// believed.
	TrustedProxies []netip.Prefix
	// AuthFailureDelay is the most a connection that keeps failing
	// authentication is held back per answer; 0 never holds it.
	AuthFailureDelay time.Duration
	// Audiences are every audience any issuer or route accepts, for
	// endpoints that belong to no route (the session's userinfo).
	Audiences []string
	// Authn judges tokens; nil when no issuer is configured (then every
	// route must be public).
	Authn *authn.Authenticator
	// KeySets are the remote key sets Authn reads, for readiness and
	// metrics.
	KeySets []*jwks.Remote
	// Issuer is the built-in issuer, mounted before any route; nil for
	// none.
	Issuer *Issuer
	// Login is the browser login; nil for none.
	Login *Login
	// Routes are the routes, in configuration order.
	Routes []Route
	// AdminToken is the bearer secret of the admin listener's
	// [RevokePath]; "" turns that endpoint off.
	AdminToken string
}

// Issuer is the built-in issuer as the gateway mounts it.
type Issuer struct {
	Issuer *issuer.Issuer
	Keys   *jwks.KeyRing
	Store  issuer.Store
}

// Login is the browser login as the gateway serves it.
type Login struct {
	Client  *oidcclient.Client
	Cookies *oidcclient.CookieCodec
	// Prefix is where the login's endpoints live ("/oauth2").
	Prefix string
	// CookieName is the session cookie's configured name, as Cookies
	// takes it.
	CookieName string
	// ClientID is the login's client id, the audience of its id_tokens.
	ClientID string
	// Sessions is the shared session store when there is one, asked for
	// readiness; nil otherwise.
	Sessions interface{ Ping(context.Context) error }
}

// Auth is how a route treats tokens.
type Auth uint8

const (
	// AuthRequired forwards only requests with a valid token or session.
	AuthRequired Auth = iota
	// AuthOptional forwards anonymous requests too, but never a bad token.
	AuthOptional
	// AuthPublic forwards every request without reading a token.
	AuthPublic
)

func (a Auth) String() string {
	switch a {
	case AuthOptional:
		return "optional"
	case AuthPublic:
		return "public"
	}
	return "required"
}

// Unauthenticated is what a browser without a valid session gets on a
// route, with login configured.
type Unauthenticated uint8

const (
	// UnauthAuto sends page navigations to log in, others get 401.
	UnauthAuto Unauthenticated = iota
	// UnauthLogin sends every request to log in.
	UnauthLogin
	// UnauthDeny answers 401.
	UnauthDeny
)

// TokenMode says where a route sends the verified token upstream.
type TokenMode uint8

const (
	// TokenDrop sends no token: the client's is removed.
	TokenDrop TokenMode = iota
	// TokenBearer sends it as "Authorization: Bearer".
	TokenBearer
	// TokenHeader sends it bare in a header of the route's choosing.
	TokenHeader
)

// ForwardToken is where a route sends the verified token upstream.
type ForwardToken struct {
	Mode TokenMode
	// Header is the header's name for TokenHeader.
	Header string
}

func (f ForwardToken) String() string {
	switch f.Mode {
	case TokenBearer:
		return "authorization"
	case TokenHeader:
		return f.Header
	}
	return "none"
}

// Route is one route as the gateway serves it.
type Route struct {
	Name string
	// Host is the host the route serves, "*.domain" for one label of
	// domain, "" for any.
	Host string
	// PathPrefix is the path the route serves, segment-wise.
	PathPrefix string
	Upstream   *url.URL
	// UpstreamTLS, for an https upstream, checks its certificate; nil
	// means the system roots.
	UpstreamTLS *tls.Config
	// Timeout bounds waiting for the upstream's response headers.
	Timeout time.Duration
	Auth    Auth
	Policy  authn.Policy
	// ForwardHeaders maps an upstream header to the claim it carries.
	ForwardHeaders  map[string]string
	ForwardToken    ForwardToken
	PreserveHost    bool
	MaxBodyBytes    int64
	Unauthenticated Unauthenticated
	// Methods, when non-nil, are the only methods the route serves: any
	// other is refused with 405 and Allow, before authentication.
	Methods []string
	// Metadata, when set, is published as the route's OAuth protected
	// resource metadata (RFC 9728), and every 401 and 403 of the route
	// points to it (resource_metadata). Policy.Resource should be its
	// Resource.
	Metadata *ResourceMetadata
	// PassPreflight sends CORS preflights (OPTIONS with Origin and
	// Access-Control-Request-Method) to the upstream without a token,
	// whatever Methods and Rules say.
	PassPreflight bool
	// Rules, when non-nil, decide after authentication and Policy.
	Rules *rules.Set
}
