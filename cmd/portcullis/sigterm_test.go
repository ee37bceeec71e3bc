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
	logs := bufio.NewScanner(stderr)
	for logs.Scan() {
		if strings.Contains(logs.Text(), "proxy listening") {
			break
		}
	}
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
