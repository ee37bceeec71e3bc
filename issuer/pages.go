package issuer

import (
	"bytes"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/internal/httpsec"
	"github.com/portcullis-dev/portcullis/internal/pages"
)

// pageHeaders are sent with every page the issuer renders: no framing
// (clickjacking), no scripts, no referrer (codes and states stay out of
// other sites' logs), no caching.
func pageHeaders(h http.Header, formAction string) {
	csp := "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if formAction != "" {
		// Browsers apply form-action to the redirect that follows a form
		// post, so the client's origin must be allowed too.
		csp += " " + formAction
	}
	httpsec.Set(h, "text/html; charset=utf-8", csp)
}

var layout = template.Must(template.New("layout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + pages.CSS + `</style></head><body><main>{{template "body" .}}</main></body></html>`))

// pageFuncs fit scope descriptions, written either way ("Read your data",
// "confirm your identity"), to where they stand: mid-sentence on the login
// page, as list items on the consent page.
var pageFuncs = template.FuncMap{"lowerFirst": lowerFirst, "upperFirst": upperFirst}

var loginPage = template.Must(template.Must(layout.Clone()).New("body").Funcs(pageFuncs).Parse(`
<h1>Sign in</h1>
<p class="sub">to continue to <strong>{{.Client}}</strong></p>
{{if .Scopes}}<p class="sub">It will be able to: {{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{lowerFirst $s}}{{end}}.</p>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="login">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autocapitalize="none" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`))

var consentPage = template.Must(template.Must(layout.Clone()).New("body").Funcs(pageFuncs).Parse(`
<h1>{{.Client}} wants to:</h1>
<ul>{{range .Scopes}}<li>{{upperFirst .}}</li>{{end}}</ul>
{{if .Resources}}<p class="sub">with access to {{range $i, $r := .Resources}}{{if $i}}, {{end}}<strong>{{$r}}</strong>{{end}}.</p>{{end}}
{{if .Registered}}<p class="error" role="note">This application registered itself: its name is not verified. Allow only if you started this sign-in. It will return you to <strong>{{.RedirectHost}}</strong>.</p>{{end}}
<form method="post" action="{{.Action}}">
{{range .Params}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny" class="secondary">Deny</button>
</form>`))

// render writes a page with the security headers.
func render(w http.ResponseWriter, t *template.Template, status int, formAction string, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w.Header(), formAction)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows an error that must not go back to a client, with the
// next steps it can offer.
func (i *Issuer) errorPage(w http.ResponseWriter, status int, title, msg string, next ...pages.Link) {
	pages.Write(w, status, pages.Message{Title: title, Text: msg, Links: next})
}

// builtinScopes describe the standard scopes on the consent page.
var builtinScopes = map[string]string{
	"openid":         "confirm your identity",
	"profile":        "see your name and profile",
	"email":          "see your email address",
	"offline_access": "stay signed in when you are away",
}

func (i *Issuer) describeScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		d := i.cfg.ScopeDescriptions[s]
		if d == "" {
			d = builtinScopes[s]
		}
		if d == "" {
			d = s
		}
		out = append(out, d)
	}
	return out
}

// lowerFirst lower-cases the first letter of s, unless the word it starts
// is an acronym or a name written in capitals ("API", "SSO").
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	if next, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(next) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// upperFirst upper-cases the first letter of s.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// formParam is one hidden field carrying a request parameter.
type formParam struct{ Name, Value string }

// formParams lists the request parameters for hidden fields, sorted by
// name; a parameter given more than once (resource) gets a field for each
// value.
func formParams(v url.Values) []formParam {
	names := slices.Sorted(maps.Keys(v))
	out := make([]formParam, 0, len(names))
	for _, k := range names {
		for _, val := range v[k] {
			out = append(out, formParam{k, val})
		}
	}
	return out
}

// redirectHost is the host the browser is sent back to, as the consent
// page shows it.
func redirectHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

// origin is scheme://host of a URL, for form-action.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (i *Issuer) loginPage(w http.ResponseWriter, r *http.Request, req *authRequest, username, msg string, status int) {
	render(w, loginPage, status, origin(req.redirectURI), map[string]any{
		"Title": "Sign in", "Client": req.client.Name, "Scopes": i.describeScopes(req.scopes),
		"Error": msg, "Action": i.base + "/authorize", "Params": formParams(req.params),
		"CSRF": i.csrfToken(w, r), "Username": username,
	})
}

func (i *Issuer) consentPage(w http.ResponseWriter, r *http.Request, req *authRequest, _ *Session) {
	render(w, consentPage, http.StatusOK, origin(req.redirectURI), map[string]any{
		"Title": "Allow access", "Client": req.client.Name, "Scopes": i.describeScopes(req.scopes),
		"Resources": req.resources, "Registered": req.client.registered, "RedirectHost": redirectHost(req.redirectURI),
		"Action": i.base + "/authorize", "Params": formParams(req.params), "CSRF": i.csrfToken(w, r),
	})
}
