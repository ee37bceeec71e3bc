package testgw

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// SessionCookie is the name of the gateway's session cookie when its public
// URL is plain http (with https it has the __Host- prefix).
const SessionCookie = "_portcullis"

// Send makes one request with c, posting form URL-encoded unless it is
// nil, with the headers in hdr, and returns the response with its body
// read and closed.
func Send(t testing.TB, c *http.Client, method, u string, form url.Values, hdr http.Header) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// HiddenFields returns the hidden form fields of an HTML page.
func HiddenFields(page string) url.Values {
	f := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		f.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return f
}

// LoginForm is the built-in issuer's login form on page filled in with
// alice's username and password.
func LoginForm(page string) url.Values {
	f := HiddenFields(page)
	f.Set("username", Username)
	f.Set("password", Password)
	return f
}

// Browser is an HTTP client that keeps cookies and stops at every
// redirect, so that each hop can be checked, and asks for pages as a
// browser's navigation does.
type Browser struct {
	T      testing.TB   // the test a failed request fails
	Client *http.Client // the client, with its cookie jar
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// Do sends one request as a page navigation (Accept: text/html) with the
// headers in hdr, posting form unless it is nil.
func (b *Browser) Do(method, u string, form url.Values, hdr http.Header) (*http.Response, string) {
	b.T.Helper()
	h := http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	for k, v := range hdr {
		h[k] = v
	}
	return Send(b.T, b.Client, method, u, form, h)
}

// SubmitLogin posts the login form on page, filled in for alice, to the
// built-in issuer of the gateway at base.
func (b *Browser) SubmitLogin(base, page string) (*http.Response, string) {
	b.T.Helper()
	return b.Do("POST", base+"/idp/authorize", LoginForm(page), nil)
}

// Visit follows redirects from u, logging alice in at the built-in issuer
// of the gateway at base when its form appears, and returns the first
// other response.
func (b *Browser) Visit(base, u string) (*http.Response, string) {
	b.T.Helper()
	res, body := b.Do("GET", u, nil, nil)
	for range 10 {
		switch {
		case res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther:
			loc, _ := res.Location()
			res, body = b.Do("GET", loc.String(), nil, nil)
		case strings.Contains(body, `name="password"`):
			res, body = b.SubmitLogin(base, body)
		default:
			return res, body
		}
	}
	b.T.Fatal("too many redirects")
	return nil, ""
}

// LoginPage follows redirects from u to the built-in issuer's login page
// and returns it; it fails the test if the hops end elsewhere.
func (b *Browser) LoginPage(u string) string {
	b.T.Helper()
	res, body := b.Do("GET", u, nil, nil)
	for range 10 {
		if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
			break
		}
		loc, _ := res.Location()
		res, body = b.Do("GET", loc.String(), nil, nil)
	}
	if !strings.Contains(body, `name="password"`) {
		b.T.Fatalf("no login page from %s: %d %q", u, res.StatusCode, body)
	}
	return body
}

// Cookie returns the browser's cookie name for base, or nil if it has none.
func (b *Browser) Cookie(base, name string) *http.Cookie {
	u, _ := url.Parse(base)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
