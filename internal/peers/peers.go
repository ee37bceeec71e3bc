// Package peers runs the real third-party programs that portcullis' tests
// talk to (nginx, Caddy, Traefik, Envoy): it finds them, renders the
// example configurations users copy, and runs them until the test ends.
// A missing program skips the test, except when CI=true, where .ci/run must
// have installed it and its absence fails the test.
package peers

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Find returns the path of the first of names on PATH. Without one the test
// skips, or fails when CI=true; optional programs (Envoy, which Debian does
// not package) always skip.
func Find(t testing.TB, optional bool, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" && !optional {
		t.Fatalf("%s not found on PATH; .ci/run installs it", names[0])
	}
	t.Skipf("%s not found on PATH", names[0])
	return ""
}

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// program that opens its own listener.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Vars are the placeholders of the example configurations for the given
// addresses (host:port each): LISTEN_ADDR, PORTCULLIS_ADDR and
// UPSTREAM_ADDR, and the _HOST and _PORT of each for configurations that
// take them apart.
func Vars(listen, portcullis, upstream string) map[string]string {
	v := map[string]string{}
	for name, addr := range map[string]string{"LISTEN": listen, "PORTCULLIS": portcullis, "UPSTREAM": upstream} {
		host, port, _ := net.SplitHostPort(addr)
		v[name+"_ADDR"], v[name+"_HOST"], v[name+"_PORT"] = addr, host, port
	}
	return v
}

// Replace replaces every placeholder of vars in s. Longer names go first,
// so LISTEN_ADDR is never read as a shorter name's prefix.
func Replace(s string, vars map[string]string) string {
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// Render copies the files of src (not its Go files) to a new temporary
// folder, with the placeholders of vars replaced in each, and returns it.
func Render(t testing.TB, src string, vars map[string]string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(out, []byte(Replace(string(b), vars)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// Process is a running peer.
type Process struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
}

// Output is what the process has written so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Start runs the program in dir until the test ends and waits until addr
// accepts connections. Its output goes to the test's log when the test
// fails.
func Start(t testing.TB, dir, addr string, prog string, args ...string) *Process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	// A signal that lets each program stop its workers too (nginx's
	// workers would outlive a killed master and hold its output open).
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	p := &Process{Name: filepath.Base(prog), cmd: cmd}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", prog, err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = w.Close()
		exited <- err
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		<-copied
		if t.Failed() {
			t.Logf("%s output:\n%s", p.Name, p.Output())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return p
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.Name, addr, err, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s after 60s\n%s", p.Name, addr, p.Output())
		}
	}
}

// WaitHTTP waits until a GET of u answers status, for programs that load
// their routes after they listen (Traefik's file provider); it fails the
// test after 60s.
func WaitHTTP(t testing.TB, u string, status int) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		res, err := c.Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == status {
				return
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("GET %s: still %s after 60s, want %d", u, last, status)
}
