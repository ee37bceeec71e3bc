// Package pages renders the short HTML pages portcullis shows browsers
// itself: the gateway's sign-in messages and denials, and the frame of the
// built-in issuer's login, consent and message pages. One stylesheet, so
// that every page looks like the login page, and every message page says
// what happened and offers the next step as links.
package pages

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/portcullis-dev/portcullis/internal/httpsec"
)

// CSS is the stylesheet of every page: a centred card on a grey page.
const CSS = `body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:2rem;width:100%;max-width:22rem;margin:1rem}
h1{font-size:1.35rem;margin:0 0 .25rem}
p.sub{color:#4b5563;margin:0 0 1.25rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem .7rem;border:1px solid #9ca3af;border-radius:8px;font-size:1rem}
input:focus,button:focus,a.button:focus{outline:3px solid #93c5fd;outline-offset:1px}
button,a.button{display:block;box-sizing:border-box;width:100%;padding:.65rem;margin-top:1.25rem;border:0;border-radius:8px;background:#1d4ed8;color:#fff;font-size:1rem;font-weight:600;cursor:pointer;text-align:center;text-decoration:none}
button.secondary,a.button.secondary{background:#e5e7eb;color:#111827;margin-top:.5rem}
.error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;border-radius:8px;padding:.5rem .75rem;margin-bottom:.5rem}
.ok{background:#ecfdf5;color:#065f46;border:1px solid #a7f3d0;border-radius:8px;padding:.5rem .75rem;margin-bottom:.5rem}
ul{padding-left:1.2rem}`

// CSP is the content security policy of a message page: its own inline
// style, nothing else; links are plain navigations.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Link is a next step a page offers.
type Link struct {
	Text string
	Href string
}

// Message is what a message page says.
type Message struct {
	Title string
	// Text says what happened, in words.
	Text string
	// Detail, when set, is a second paragraph in smaller print.
	Detail string
	// OK shows Text as good news (signed out) instead of as a problem.
	OK bool
	// Links are the next steps; the first is the main one.
	Links []Link
}

var message = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + CSS + `</style></head><body><main>
<h1>{{.Title}}</h1>
<p class="{{if .OK}}ok{{else}}sub{{end}}" role="{{if .OK}}status{{else}}alert{{end}}">{{.Text}}</p>
{{with .Detail}}<p class="sub">{{.}}</p>{{end}}
{{range $i, $l := .Links}}<a class="button{{if $i}} secondary{{end}}" href="{{$l.Href}}">{{$l.Text}}</a>
{{end}}</main></body></html>`))

// Write renders m with status and the headers every page carries.
func Write(w http.ResponseWriter, status int, m Message) {
	var buf bytes.Buffer
	if err := message.Execute(&buf, m); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	httpsec.Set(w.Header(), "text/html; charset=utf-8", CSP)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
