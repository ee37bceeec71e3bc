package httpsec

import (
	"net/http"
	"reflect"
	"testing"
)

func TestSet(t *testing.T) {
	h := http.Header{"Cache-Control": {"public, max-age=3600"}, "X-Upstream": {"kept"}}
	Set(h, "text/plain; charset=utf-8", PlainCSP)
	want := http.Header{
		"Content-Type":            {"text/plain; charset=utf-8"},
		"Content-Security-Policy": {"default-src 'none'; frame-ancestors 'none'"},
		"X-Frame-Options":         {"DENY"},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
		"Cache-Control":           {"no-store"},
		"X-Upstream":              {"kept"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers:\n got  %v\n want %v", h, want)
	}
}
