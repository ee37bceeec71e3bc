package proxy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/jwks"
)

// Explanation is what [Explain] found out about a token on one route: every
// check the gateway runs, its verdict, and what the upstream would receive.
type Explanation struct {
	// Explanation holds the checks and the verdict of package authn; nil
	// for a public route when no issuer is configured.
	*authn.Explanation
	// Route, Host, PathPrefix and Auth describe the route as configured.
	Route, Host, PathPrefix, Auth string
	// Headers are the identity headers the upstream would receive; nil
	// unless the token is accepted on a route that checks tokens.
	Headers http.Header
	// ForwardToken says where the token travels upstream: "none",
	// "authorization" or a header name.
	ForwardToken string
	// Notes are caveats about the checks, such as keys that only the
	// running server holds.
	Notes []string
	// Chosen says why the route was chosen for a URL: which host rule
	// made it a candidate and which prefix won; set by the caller.
	Chosen string
}

// Public reports whether the route is public: the gateway forwards every
// request there without reading a token.
func (e *Explanation) Public() bool { return e.Auth == config.AuthPublic }

// Allowed reports whether the gateway forwards a request carrying the
// token: it does on a public route, and elsewhere when the token passes
// every check. (On an optional route a bad token is refused too: it is
// never downgraded to anonymous.)
func (e *Explanation) Allowed() bool {
	return e.Public() || e.Explanation != nil && e.Explanation.Allowed()
}

// Result says in one sentence what the gateway does with the request.
func (e *Explanation) Result() string {
	switch {
	case e.Public():
		return "the route is public: the gateway forwards every request without checking its token"
	case e.Explanation == nil:
		return "no issuer is configured"
	case e.Explanation.Allowed():
		return "the gateway forwards the request to the upstream"
	}
	return e.Explanation.Result()
}

// Explain judges token on the named route as a gateway built from cfg would,
// without starting any listener or background work: it converts the
// configured issuers and the route exactly as [New] does, fetches a remote
// issuer's key set at most once (with cfg.HTTPClient, or a client with a
// 10s timeout), reads the built-in issuer's keys from its key_dir and runs
// [authn.Authenticator.Explain]. cfg.Config must be validated. An unknown
// route is an error naming the configured ones; a bad token is not an error
// but a failed check.
//
// The built-in issuer's revocation list lives in the running server's
// memory, so Explain cannot consult it and reports that check as skipped.
func Explain(ctx context.Context, cfg Config, route, token string) (*Explanation, error) {
	c := cfg.Config
	if c == nil {
		return nil, errors.New("proxy: no configuration")
	}
	i := slices.IndexFunc(c.Routes, func(r config.Route) bool { return r.Name == route })
	if i < 0 {
		names := make([]string, 0, len(c.Routes))
		for _, r := range c.Routes {
			names = append(names, r.Name)
		}
		return nil, fmt.Errorf("proxy: no route named %q; routes: %s", route, strings.Join(names, ", "))
	}
	g := &gateway{cfg: c, log: cfg.Logger, now: cfg.Now, metrics: newMetrics(func() []keySetInfo { return nil }, func() []cacheInfo { return nil })}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	issuers, notes, err := g.explainIssuers(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if len(issuers) > 0 {
		if g.authn, err = authn.New(authn.Config{Issuers: issuers, Now: g.now}); err != nil {
			return nil, err
		}
	}
	rt, err := g.buildRoute(&c.Routes[i])
	if err != nil {
		return nil, err
	}
	e := &Explanation{
		Route: rt.name, Host: rt.host, PathPrefix: rt.prefix, Auth: rt.auth,
		ForwardToken: rt.forwardToken, Notes: notes,
	}
	if e.ForwardToken == "" {
		e.ForwardToken = config.ForwardTokenNone
	}
	if g.authn == nil {
		return e, nil
	}
	e.Explanation = g.authn.Explain(ctx, token, &rt.policy)
	if id := e.Identity; id != nil && !e.Public() {
		e.Headers = http.Header{}
		setIdentity(e.Headers, rt.idHeaders, id)
	}
	return e, nil
}

// explainIssuers converts the configured issuers as the gateway's buildIssuers
// does, but with key sets that fetch only when asked, at most once, and
// with no background refresh.
func (g *gateway) explainIssuers(ctx context.Context, cfg Config) ([]authn.Issuer, []string, error) {
	var notes []string
	builtinURL, builtinKeys, note, err := explainBuiltinKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	out := make([]authn.Issuer, 0, len(g.cfg.Issuers))
	for _, ci := range g.cfg.Issuers {
		iss := authnIssuer(ci)
		if builtinKeys != nil && ci.Issuer == builtinURL && ci.JWKSURI == "" {
			iss.Keys = builtinKeys
			iss.Revoked = func(context.Context, string) (bool, error) {
				return false, fmt.Errorf("%w: the built-in issuer's revocation list is in the running server's memory", authn.ErrNotChecked)
			}
			out = append(out, iss)
			continue
		}
		if ci.HMACSecret == "" || ci.JWKSURI != "" {
			// No Run: the first Keys call fetches, and the long refetch
			// interval keeps it the only fetch.
			iss.Keys = jwks.NewRemote(ctx, jwks.RemoteConfig{
				Issuer:          ci.Issuer,
				JWKSURI:         ci.JWKSURI,
				Client:          client,
				RefetchInterval: time.Hour,
				Now:             g.now,
				Logger:          g.log,
			})
		}
		out = append(out, iss)
	}
	return out, notes, nil
}

// explainBuiltinKeys returns the built-in issuer's URL and its published
// keys, read from issuer.signing.key_dir without starting rotation. When
// the keys cannot be known outside the running server (no key_dir, or one
// not written yet) it returns an empty key source and a note saying why,
// rather than generating keys no token could match.
func explainBuiltinKeys(cfg Config) (string, authn.KeySource, string, error) {
	bi := cfg.Config.Issuer
	if bi == nil {
		return "", nil, "", nil
	}
	dir := bi.Signing.KeyDir
	if dir == "" {
		return bi.URL, noKeys{}, "issuer.signing.key_dir is empty: the running server's signing keys live in its memory, so its tokens cannot be checked here", nil
	}
	if pems, _ := filepath.Glob(filepath.Join(dir, "*.pem")); len(pems) == 0 {
		switch _, err := os.Stat(dir); {
		case errors.Is(err, fs.ErrNotExist):
			return bi.URL, noKeys{}, fmt.Sprintf("issuer.signing.key_dir %s does not exist yet: the built-in issuer's keys are unknown here", dir), nil
		case err != nil:
			return bi.URL, noKeys{}, fmt.Sprintf("issuer.signing.key_dir %s cannot be read (%v): the built-in issuer's keys are unknown here", dir, err), nil
		}
		return bi.URL, noKeys{}, fmt.Sprintf("issuer.signing.key_dir %s holds no keys yet: the built-in issuer's keys are unknown here", dir), nil
	}
	// Explain only reads the ring; nothing rotates it.
	iss, keys, _, err := NewIssuer(cfg)
	if err != nil {
		return "", nil, "", err
	}
	return iss.URL(), keys, "", nil
}

// noKeys is a key source with no keys.
type noKeys struct{}

func (noKeys) Keys(context.Context, string) ([]jwks.Key, error) {
	return nil, fmt.Errorf("%w: no keys known", jwks.ErrKeyNotFound)
}

var _ authn.KeySource = noKeys{}

// ErrNotURL is RouteForURL's error for a URL that is not absolute http(s).
var ErrNotURL = errors.New("not an absolute http(s) URL")

// RouteForURL names the route a gateway built from c would choose for a
// request to rawURL ("https://admin.example/open/x"), and says which host
// rule chose it. c must be validated. A URL that no route serves, or one
// the gateway refuses before routing, is an error saying so. portcullis'
// own paths (login, the built-in issuer) are not considered.
func RouteForURL(c *config.Config, rawURL string) (name, why string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", fmt.Errorf("%q is %w; write it like https://app.example.com/path", rawURL, ErrNotURL)
	}
	raw, key, ok := cleanPath(u.EscapedPath())
	if !ok {
		return "", "", fmt.Errorf("%s: malformed path: the gateway answers 400", rawURL)
	}
	rs := make([]*route, len(c.Routes))
	for i := range c.Routes {
		rs[i] = routeHead(&c.Routes[i])
	}
	t := newRouteTable(rs)
	host := requestHost(u.Host)
	cands, rule := t.candidates(host)
	switch rule {
	case hostRuleExact:
		why = fmt.Sprintf("host %s has routes of its own (host: %s); only they are candidates", host, host)
	case hostRuleWildcard:
		why = fmt.Sprintf("host %s matches host: \"%s\"; only routes with that host are candidates", host, cands[0].host)
	default:
		why = fmt.Sprintf("no route names host %s; the routes without a host are candidates", host)
	}
	rt := t.match(host, key)
	if rt == nil {
		return "", "", fmt.Errorf("%s: %s, and none has a path_prefix for %s: the gateway answers 404", rawURL, why, key)
	}
	if needsSuspicionCheck(raw) && t.match(host, suspiciousKey(raw)) != rt {
		return "", "", fmt.Errorf("%s: a lenient upstream could read the path as one for another route: the gateway answers 400", rawURL)
	}
	prefix := rt.prefix
	if prefix == "" {
		prefix = "/"
	}
	return rt.name, why + fmt.Sprintf("; path_prefix %s is the longest that matches %s", prefix, key), nil
}
