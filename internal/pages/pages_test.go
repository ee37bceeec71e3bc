package pages

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, 403, Message{Title: "Access denied", Text: `a <b> & "c"`, Links: []Link{
		{Text: "Sign out", Href: "/oauth2/sign_out?x=1&y=2"}, {Text: "Back", Href: "javascript:alert(1)"},
	}})
	body := rec.Body.String()
	for _, want := range []string{
		"<title>Access denied</title>", `a &lt;b&gt; &amp; &#34;c&#34;`,
		`<a class="button" href="/oauth2/sign_out?x=1&amp;y=2">Sign out</a>`,
		`<a class="button secondary" href="#ZgotmplZ">Back</a>`, // html/template refuses javascript: URLs
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if rec.Code != 403 || rec.Header().Get("Content-Security-Policy") != CSP || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("status %d, headers %v", rec.Code, rec.Header())
	}
}
