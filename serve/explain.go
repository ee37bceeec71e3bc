package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/rules"
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
	// Method is the request's method; MethodRefused is set when the
	// route's methods do not include it (405, before any token is read).
	Method        string
	MethodRefused bool
	// Rules are the route's rules, each with its result for the token's
	// claims and the request; Decision is what they decide ("" without
	// rules, or when the token is refused before them).
	Rules    []rules.Result
	Decision *rules.Decision
	// Path is the cleaned path the rules saw.
	Path string
}

// Request is the request [Explain] judges the token for: the method and
// path the rules see (the route's prefix when empty), and its host.
type Request struct {
	Method, Path, Host string
	// URL and DPoP are the request's absolute URL and DPoP proof, for a
	// DPoP-bound token; DPoP "" means the token comes as a bearer token.
	URL, DPoP string
}

// Public reports whether the route is public: the gateway forwards every
// request there without reading a token.
func (e *Explanation) Public() bool { return e.Auth == proxy.AuthPublic.String() }

// Allowed reports whether the gateway forwards a request carrying the
// token: it does on a public route, and elsewhere when the token passes
// every check. (On an optional route a bad token is refused too: it is
// never downgraded to anonymous.)
func (e *Explanation) Allowed() bool {
	if e.MethodRefused || e.Decision != nil && !e.Decision.Allow {
		return false
	}
	return e.Public() || e.Explanation != nil && e.Explanation.Allowed()
}

// Result says in one sentence what the gateway does with the request.
func (e *Explanation) Result() string {
	switch {
	case e.MethodRefused:
		return "the route does not serve " + e.Method + ": the gateway answers 405"
	case e.Decision != nil && !e.Decision.Allow && e.Decision.Rule < 0:
		return "no rule allows the request: the gateway answers 403"
	case e.Decision != nil && !e.Decision.Allow:
		return "rule " + e.Decision.Name + " denies the request: the gateway answers 403"
	case e.Public() && e.Decision != nil:
		return "the route is public and its rules allow the request: the gateway forwards it without checking its token"
	case e.Public():
		return "the route is public: the gateway forwards every request without checking its token"
	case e.Explanation == nil:
		return "no issuer is configured"
	case e.Explanation.Allowed():
		return "the gateway forwards the request to the upstream"
	}
	return e.Explanation.Result()
}

// Explain judges token on the named route as a gateway built from
// opts.Config would, without starting any listener or background work: it
// converts the configured issuers and the route with the constructors [New]
// uses, fetches a remote issuer's key set at most once (with
// opts.HTTPClient, or a client with a 10s timeout), reads the built-in
// issuer's keys from its key_dir and runs [authn.Authenticator.Explain].
// opts.Config must be validated. An unknown
// route is an error naming the configured ones; a bad token is not an error
// but a failed check.
//
// The built-in issuer's revocation list lives in the running server's
// memory, so Explain cannot consult it and reports that check as skipped.
func Explain(ctx context.Context, opts Options, route, token string, req Request) (*Explanation, error) {
	c := opts.Config
	if c == nil {
		return nil, errors.New("serve: no configuration")
	}
	opts.defaults()
	i := slices.IndexFunc(c.Routes, func(r config.Route) bool { return r.Name == route })
	if i < 0 {
		names := make([]string, 0, len(c.Routes))
		for _, r := range c.Routes {
			names = append(names, r.Name)
		}
		return nil, fmt.Errorf("serve: no route named %q; routes: %s", route, strings.Join(names, ", "))
	}
	issuers, notes, err := explainIssuers(ctx, opts)
	if err != nil {
		return nil, err
	}
	var az *authn.Authenticator
	if len(issuers) > 0 {
		if az, err = authn.New(authn.Config{Issuers: issuers, Now: opts.Now}); err != nil {
			return nil, err
		}
	}
	rt, err := routeSpec(c, i)
	if err != nil {
		return nil, err
	}
	if rt.Auth != proxy.AuthPublic && az == nil {
		return nil, fmt.Errorf("serve: route %s needs an issuer", rt.Name)
	}
	e := &Explanation{
		Route: rt.Name, Host: strings.ToLower(rt.Host), PathPrefix: rt.PathPrefix, Auth: rt.Auth.String(),
		ForwardToken: rt.ForwardToken.String(), Notes: notes,
	}
	if e.PathPrefix != "/" {
		e.PathPrefix = strings.TrimSuffix(e.PathPrefix, "/")
	}
	if e.PathPrefix == "" {
		e.PathPrefix = "/"
	}
	e.Method, e.Path = req.Method, req.Path
	if e.Method == "" {
		e.Method = http.MethodGet
	}
	if e.Path == "" {
		e.Path = e.PathPrefix
	}
	e.MethodRefused = rt.Methods != nil && !slices.Contains(rt.Methods, e.Method)
	if az != nil {
		e.Explanation = az.Explain(ctx, token, &rt.Policy)
		d := c.Server.DPoP
		v, err := dpop.New(dpop.Config{Algorithms: d.Algorithms, MaxAge: d.MaxAge.D(), Now: opts.Now,
			Replay: dpop.NewMemoryReplay(1, opts.Now)})
		if err != nil {
			return nil, err
		}
		e.ExplainDPoP(ctx, v, &rt.Policy, token, req.DPoP, e.Method, req.URL)
		if id := e.Identity; id != nil && !e.Public() {
			e.Headers = proxy.IdentityHeaders(&rt, id)
		}
	}
	if rt.Rules != nil && !e.MethodRefused && (e.Public() || e.Explanation != nil && e.Explanation.Allowed()) {
		in := rules.Input{Request: rules.Request{Method: e.Method, Path: e.Path, Host: strings.ToLower(req.Host)}, Now: opts.Now()}
		if !e.Public() {
			in.Claims, in.Scopes = e.Identity.Claims, e.Identity.Scopes
		}
		res, d := rt.Rules.Trace(&in)
		e.Rules, e.Decision = res, &d
	}
	return e, nil
}

// explainIssuers converts the configured issuers with authnIssuer, as
// buildIssuers does, but with key sets that fetch only when asked, at most once, and
// with no background refresh.
func explainIssuers(ctx context.Context, opts Options) ([]authn.Issuer, []string, error) {
	var notes []string
	builtinURL, builtinKeys, note, err := explainBuiltinKeys(opts)
	if err != nil {
		return nil, nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	out := make([]authn.Issuer, 0, len(opts.Config.Issuers))
	for _, ci := range opts.Config.Issuers {
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
				Now:             opts.Now,
				Logger:          opts.Logger,
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
func explainBuiltinKeys(opts Options) (string, authn.KeySource, string, error) {
	bi := opts.Config.Issuer
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
	iss, keys, store, err := NewIssuer(opts.Config, opts)
	if err != nil {
		return "", nil, "", err
	}
	closeStore(store)
	return iss.URL(), keys, "", nil
}

// noKeys is a key source with no keys.
type noKeys struct{}

func (noKeys) Keys(context.Context, string) ([]jwks.Key, error) {
	return nil, fmt.Errorf("%w: no keys known", jwks.ErrKeyNotFound)
}

var _ authn.KeySource = noKeys{}

// ErrNotURL is RouteForURL's error for a URL that is not absolute http(s).
var ErrNotURL = proxy.ErrNotURL

// RouteForURL names the route a gateway built from c would choose for a
// request to rawURL ("https://admin.example/open/x"), and says which host
// rule chose it. c must be validated. A URL that no route serves, or one
// the gateway refuses before routing, is an error saying so. portcullis'
// own paths (login, the built-in issuer) are not considered.
func RouteForURL(c *config.Config, rawURL string) (name, why string, err error) {
	rs := make([]proxy.Route, len(c.Routes))
	for i, r := range c.Routes {
		rs[i] = proxy.Route{Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix}
	}
	return proxy.RouteForURL(rs, rawURL)
}
