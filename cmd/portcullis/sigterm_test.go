package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/peers"
)

// TestMain lets the test binary stand in for the portcullis binary, so a
// test can run it as a real process and signal it.
func TestMain(m *testing.M) {
	if os.Getenv("PORTCULLIS_AS_MAIN") == "1" {
		os.Args = append([]string{"portcullis"}, strings.Fields(os.Getenv("PORTCULLIS_ARGS"))...)
		main()
		return
	}
	os.Exit(m.Run())
}

// startServe runs `portcullis serve` on the configuration cfg as a
// process, killed when the test ends, and returns once its log has shown
// every line of ready; the rest of its log is left on stderr.
func startServe(t *testing.T, cfg string, ready ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PORTCULLIS_AS_MAIN=1", "PORTCULLIS_ARGS=serve --config "+path)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	r := bufio.NewReader(stderr)
	for seen := map[string]bool{}; len(seen) < len(ready); {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("portcullis serve ended before logging %v: %v", ready, err)
		}
		for _, want := range ready {
			if strings.Contains(line, want) {
				seen[want] = true
			}
		}
	}
	return cmd, r
}

// TestSIGTERMFinishesInFlight runs `portcullis serve` as a process, sends
// SIGTERM while a request waits on a slow upstream, and checks that the
// request still completes, new connections are refused, and the process
// exits 0.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		fmt.Fprint(w, "slow answer")
	})}
	upLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`
server: {listen: %q, shutdown_grace: 20s}
admin: {listen: "off"}
routes:
  - {name: slow, path_prefix: /, upstream: "http://%s", auth: public}
`, addr, upLn.Addr())
	cmd, stderr := startServe(t, cfg, "proxy listening")
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/work")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{body: string(b)}
	}()
	<-arrived
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener closes; wait for that
	// (bounded), then let the in-flight request finish.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 10s after SIGTERM")
		}
	}
	close(release)
	r := <-done
	if r.err != nil || r.body != "slow answer" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestSIGTERMShutdownDelay runs `portcullis serve` with a shutdown delay
// under continuous load from clients that open a new connection for every
// request and from one that keeps its connections alive, and sends SIGTERM while a slow request is in flight:
// /readyz must turn 503 at once, nothing may fail while the delay lasts,
// kept-alive responses must say Connection: close, the slow request must
// complete, and the process must exit within delay + grace.
func TestSIGTERMShutdownDelay(t *testing.T) {
	const delay, grace = 2 * time.Second, 5 * time.Second
	arrived := make(chan struct{}, 1)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			select { // a slow upstream: three seconds of work
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "answer "+r.URL.Path)
	})}
	upLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()

	addr, adminAddr := peers.FreeAddr(t), peers.FreeAddr(t)
	cfg := fmt.Sprintf(`
server: {listen: %q, shutdown_delay: %s, shutdown_grace: %s}
admin: {listen: %q}
routes:
  - {name: app, path_prefix: /, upstream: "http://%s", auth: public}
`, addr, delay, grace, adminAddr, upLn.Addr())
	cmd, stderr := startServe(t, cfg, "proxy listening", "admin listening")
	exited := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	ready := func() int {
		res, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := ready(); code != 200 {
		t.Fatalf("/readyz before SIGTERM: %d", code)
	}

	// Load until told to stop: two loops opening a new connection per
	// request, one keeping its connections alive as an ingress does.
	type result struct {
		start time.Time
		err   error
	}
	stop := make(chan struct{})
	results := make(chan result, 1<<16)
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	alive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	for _, client := range []*http.Client{fresh, fresh, alive} {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				res, err := client.Get("http://" + addr + "/fast")
				if err == nil {
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != 200 || string(b) != "answer /fast" {
						err = fmt.Errorf("status %d, body %q", res.StatusCode, b)
					}
				}
				results <- result{start, err}
			}
		}()
	}
	kept := &http.Client{Timeout: 10 * time.Second} // keeps its connection alive
	if res, err := kept.Get("http://" + addr + "/kept"); err != nil || res.Close {
		t.Fatalf("keep-alive before SIGTERM: %v, close %v", err, err == nil && res.Close)
	} else {
		res.Body.Close()
	}

	slow := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/slow")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(b) != "answer /slow" {
				err = fmt.Errorf("status %d, body %q", res.StatusCode, b)
			}
		}
		slow <- err
	}()
	<-arrived

	sigterm := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for ready() != http.StatusServiceUnavailable {
		if time.Since(sigterm) > time.Second {
			t.Fatal("/readyz still not 503 a second after SIGTERM")
		}
	}
	if d := time.Since(sigterm); d > 100*time.Millisecond {
		t.Errorf("/readyz turned 503 %s after SIGTERM, want within 100ms", d)
	}
	// During the delay, a kept-alive connection is told to close.
	if res, err := kept.Get("http://" + addr + "/kept"); err != nil {
		t.Errorf("keep-alive request during the delay: %v", err)
	} else {
		res.Body.Close()
		if !res.Close {
			t.Error("response during the delay lacks Connection: close")
		}
	}

	if err := <-slow; err != nil {
		t.Errorf("in-flight slow request: %v", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(delay + grace + 2*time.Second):
		t.Fatal("still running after delay + grace")
	}
	exitedAfter := time.Since(sigterm)
	close(stop)

	// Every request started before the delay ended must have succeeded.
	var during, failed int
	deadline := sigterm.Add(delay - 100*time.Millisecond)
	for len(results) > 0 {
		r := <-results
		if r.start.After(deadline) {
			continue
		}
		if r.start.After(sigterm) {
			during++
		}
		if r.err != nil {
			failed++
			t.Errorf("request started %s after SIGTERM failed: %v", r.start.Sub(sigterm), r.err)
		}
	}
	if during < 20 {
		t.Errorf("only %d requests ran during the delay; the load did not load", during)
	}
	if exitedAfter < delay {
		t.Errorf("exited %s after SIGTERM, before the %s delay ended", exitedAfter, delay)
	}
	t.Logf("%d requests during the %s delay, %d failed; exited %s after SIGTERM", during, delay, failed, exitedAfter.Round(time.Millisecond))
}
