package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the demo command on free ports and uses what it prints:
// the machine token passes, a browser is sent to log in, an API client
// without a token gets 401.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl-C stops the demo") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	text := out.String()
	base := regexp.MustCompile(`Open (http://localhost:\d+)/`).FindStringSubmatch(text)
	tok := regexp.MustCompile(`TOKEN=(\S+)`).FindStringSubmatch(text)
	if base == nil || tok == nil || !strings.Contains(text, "password  ") {
		t.Fatalf("demo output:\n%s", text)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", base[1]+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get("/api", map[string]string{"Authorization": "Bearer " + tok[1]}); res.StatusCode != 200 {
		t.Errorf("machine token: %d", res.StatusCode)
	}
	if res := get("/api", nil); res.StatusCode != 401 {
		t.Errorf("no token: %d", res.StatusCode)
	}
	if res := get("/", map[string]string{"Accept": "text/html"}); res.StatusCode != 302 {
		t.Errorf("browser without session: %d", res.StatusCode)
	}
	if res := get("/idp/.well-known/openid-configuration", nil); res.StatusCode != 200 {
		t.Errorf("issuer discovery: %d", res.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exit %d", code)
	}
}
