package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/rules"
)

// isPreflight reports whether r is a CORS preflight: OPTIONS with Origin
// and Access-Control-Request-Method (Fetch standard, §4.8).
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// allowsMethod reports whether the route serves method.
func (rt *route) allowsMethod(method string) bool {
	return rt.methods == nil || slices.Contains(rt.methods, method)
}

// methodNotAllowed answers a method the route does not serve (RFC 9110
// §15.5.6: 405 with the methods it does in Allow).
func (g *generation) methodNotAllowed(w http.ResponseWriter, rt *route) {
	w.Header().Set("Allow", rt.allow)
	g.plain(w, rt, http.StatusMethodNotAllowed, outcomeMethod, "method not allowed")
}

// authorize runs the route's rules on r (the request, or the original
// request a forward-auth call judges), whose cleaned path is key, for id
// (nil: anonymous). It returns nil when they allow, else the denial.
func (g *generation) authorize(r *http.Request, rt *route, key string, id *authn.Identity, now time.Time) *authn.Error {
	in := ruleInputs.Get().(*rules.Input)
	defer func() {
		*in = rules.Input{}
		ruleInputs.Put(in)
	}()
	in.Request = rules.Request{Method: r.Method, Path: key, Host: requestHost(r.Host)}
	in.Now = now
	if rt.rules.ReadsRemoteIP() {
		in.Request.RemoteIP = ClientAddr(g.trusted, r)
	}
	if rt.rules.ReadsHeaders() {
		in.Request.Headers = g.ruleHeaders(r.Header)
	}
	if id != nil {
		in.Claims, in.Scopes = id.Claims, id.Scopes
	}
	d := rt.rules.Eval(in)
	if d.Rule >= 0 {
		rt.ruleDecisions[d.Rule].Inc()
	} else {
		rt.ruleDecisions[len(rt.ruleDecisions)-1].Inc()
	}
	if d.Err != nil {
		// A rule that cannot be evaluated (a claim it reads is missing)
		// never allows; when it decided, that is worth knowing.
		level := slog.LevelDebug
		if !d.Allow {
			level = slog.LevelInfo
		}
		g.log.Log(r.Context(), level, "rule not evaluated", "route", rt.name, "err", d.Err)
	}
	if d.Allow {
		return nil
	}
	desc := "denied by rule " + d.Name
	if d.Rule < 0 {
		desc = "no rule allows the request"
	}
	return &authn.Error{Status: http.StatusForbidden, Code: authn.CodeInsufficientScope, Reason: authn.ReasonRule, Description: desc}
}

// ruleDenial is how a request the route's rules deny is refused: a caller
// with a token by the rules' own 403; an anonymous caller on a route that
// takes tokens is asked for one, as on a required route (err is then
// authn.Missing()). On a public route, where no token could help, it returns
// a nil *authn.Error: the answer is a plain 403.
func ruleDenial(rt *route, id *authn.Identity, denied *authn.Error) (*authn.Error, error) {
	switch {
	case id != nil:
		return denied, denied
	case rt.auth == AuthPublic:
		return nil, nil
	}
	err := authn.Missing()
	var ae *authn.Error
	errors.As(err, &ae)
	return ae, err
}

// refuse answers a request the route's rules deny, as ruleDenial says.
func (g *generation) refuse(w http.ResponseWriter, r *http.Request, rt *route, id *authn.Identity, denied *authn.Error) {
	ae, err := ruleDenial(rt, id, denied)
	switch {
	case ae == nil:
		g.plain(w, rt, http.StatusForbidden, outcomeForbidden, denied.Description)
	case !g.sendToLogin(w, r, rt, err):
		g.deny(w, r, rt, err)
	}
}

// ruleInputs recycles the input of rule evaluations.
var ruleInputs = sync.Pool{New: func() any { return new(rules.Input) }}

// ruleHeaders is what request.headers holds: each header's first value
// under its lower-case name, without the headers portcullis sets for
// upstreams and without the client's credentials.
func (g *generation) ruleHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) == 0 || g.protected.has(k) || k == "Authorization" || k == "Cookie" {
			continue
		}
		out[strings.ToLower(k)] = v[0]
	}
	return out
}
