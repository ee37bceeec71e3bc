package proxy_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestAccessLogAndRequestID(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	res := e.do("GET", "/ws/feed?access_token="+tok+"&room=1", "", http.Header{"Cookie": {"session=secret-cookie"}})
	got := e.echo(res)
	id := res.Header.Get("X-Request-Id")
	if len(id) != 32 || got.Headers["X-Request-Id"][0] != id {
		t.Fatalf("request id %q, upstream saw %v", id, got.Headers["X-Request-Id"])
	}
	res = e.do("GET", "/", "", http.Header{"X-Request-Id": {"abc-123"}})
	if res.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("inbound request id not passed through: %q", res.Header.Get("X-Request-Id"))
	}
	res = e.do("GET", "/", "", http.Header{"X-Request-Id": {"bad id\" with quotes"}})
	if v := res.Header.Get("X-Request-Id"); v == "" || strings.Contains(v, " ") {
		t.Errorf("insane request id kept: %q", v)
	}
	logs := e.logs.String()
	line := regexp.MustCompile(`(?m)^.*msg=request .*request_id=` + id + `.*$`).FindString(logs)
	for _, want := range []string{"route=ws", "status=200", "outcome=allowed", "sub=alice", "path=/ws/feed", "latency="} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %s", line, want)
		}
	}
	if !strings.Contains(logs, "request_id=abc-123") || !strings.Contains(logs, "status=401") {
		t.Error("denied request not logged")
	}
	if strings.Contains(logs, tok) || strings.Contains(logs, "secret-cookie") || strings.Contains(logs, "room=1") {
		t.Error("a token, cookie or query string reached the log")
	}
}
