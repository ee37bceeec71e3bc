package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// startDemo runs the demo command on free ports with the extra args and
// returns what it printed up to its last line of instructions, the
// function that stops it and where its exit code arrives.
func startDemo(t *testing.T, args ...string) (string, context.CancelFunc, <-chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, args...), pw, io.Discard)
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
	return out.String(), cancel, done
}

// TestDemo runs the demo command on free ports and uses what it prints:
// the machine token passes, a browser is sent to log in, an API client
// without a token gets 401.
func TestDemo(t *testing.T) {
	text, cancel, done := startDemo(t)
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
	// Opened at 127.0.0.1 (the address the log prints) rather than at
	// localhost (the public URL), a sign-in moves to localhost first, where
	// its cookie and the callback meet.
	loopback := strings.Replace(base[1], "localhost", "127.0.0.1", 1)
	req, _ := http.NewRequest("GET", loopback+"/oauth2/start?rd=/", nil)
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc, _ := res.Location(); res.StatusCode != 302 || loc == nil || loc.String() != base[1]+"/oauth2/start?rd="+url.QueryEscape(base[1]+"/") {
		t.Errorf("sign-in started at 127.0.0.1: %d %v, want it moved to %s", res.StatusCode, loc, base[1])
	}
	if res := get("/idp/.well-known/openid-configuration", nil); res.StatusCode != 200 {
		t.Errorf("issuer discovery: %d", res.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exit %d", code)
	}
}

// TestDemoWriteConfig runs the demo with --write-config and then check,
// token and explain on the file it wrote, with the environment it prints:
// the token is accepted by the running demo.
func TestDemoWriteConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "demo.yaml")
	text, cancel, done := startDemo(t, "--write-config", path)
	ctx := t.Context()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("demo exit %d", code)
		}
	}()
	base := regexp.MustCompile(`Open (http://localhost:\d+)/`).FindStringSubmatch(text)
	exports := regexp.MustCompile(`export (PORTCULLIS_[A-Z_]+)='([^']*)'`).FindAllStringSubmatch(text, -1)
	if base == nil || len(exports) != 3 || !strings.Contains(text, "portcullis check --config "+path) {
		t.Fatalf("demo output:\n%s", text)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exports {
		if strings.Contains(string(written), e[2]) {
			t.Errorf("the written configuration holds the value of %s; want ${%s}", e[1], e[1])
		}
		t.Setenv(e[1], e[2])
	}

	var stdout, stderr strings.Builder
	if code := run(ctx, []string{"check", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("check: %d\n%s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(ctx, []string{"token", "--config", path, "--client", "cli", "--sub", "build-bot", "--scope", "read"}, &stdout, &stderr); code != 0 {
		t.Fatalf("token: %d\n%s", code, stderr.String())
	}
	tok := strings.TrimSpace(stdout.String())
	var exp strings.Builder
	if code := runWith(ctx, []string{"explain", "--config", path, "--route", "app", tok}, strings.NewReader(""), &exp, &stderr); code != 0 {
		t.Errorf("explain: %d\n%s%s", code, exp.String(), stderr.String())
	}
	req, _ := http.NewRequest("GET", base[1]+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("a token from portcullis token on the written config: %d at the running demo", res.StatusCode)
	}
}
