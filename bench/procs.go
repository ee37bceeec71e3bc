package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// child is a process the harness started and must stop.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string        // file holding its stdout and stderr
	done chan struct{} // closed when it has exited
	err  error         // its exit status, valid after done
}

// children starts processes, optionally pinned to one CPU with taskset, and
// stops every one of them at the end. It is safe for concurrent use.
type children struct {
	dir     string // where logs go
	taskset string // path of taskset; "" runs everything unpinned

	mu   sync.Mutex
	list []*child
	seq  int
}

// start runs argv as a child named name. cpu < 0 (or no taskset) leaves it
// unpinned. The child gets its own process group, so a Ctrl-C in the
// terminal reaches the harness only, which then stops it, and
// Pdeathsig kills it if the harness dies without cleaning up.
func (c *children) start(name string, cpu int, env []string, argv ...string) (*child, error) {
	c.mu.Lock()
	c.seq++
	logPath := filepath.Join(c.dir, fmt.Sprintf("%02d-%s.log", c.seq, name))
	c.mu.Unlock()
	if cpu >= 0 && c.taskset != "" {
		argv = append([]string{c.taskset, "-c", strconv.Itoa(cpu)}, argv...)
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	ch := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		f.Close()
		close(ch.done)
	}()
	c.mu.Lock()
	c.list = append(c.list, ch)
	c.mu.Unlock()
	return ch, nil
}

// stop ends one child: SIGTERM to its pid, SIGKILL after two seconds.
func (ch *child) stop() {
	select {
	case <-ch.done:
		return
	default:
	}
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.done:
	case <-time.After(2 * time.Second):
		_ = ch.cmd.Process.Kill()
		<-ch.done
	}
}

// stopAll stops every child still running, in reverse start order.
func (c *children) stopAll() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// tail returns the end of a child's log, for error messages.
func (ch *child) tail() string {
	b, err := os.ReadFile(ch.log)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers want, the child exits, or the timeout
// passes.
func waitHTTP(ctx context.Context, ch *child, url string, want int, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-ch.done:
			return fmt.Errorf("bench: %s exited (%v) before it was ready:\n%s", ch.name, ch.err, ch.tail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s not ready at %s after %v (%s):\n%s", ch.name, url, timeout, last, ch.tail())
}

// freeAddrs returns n distinct free TCP addresses on 127.0.0.1. They are
// held open together while picked, so they differ from each other.
func freeAddrs(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(errors.New("bench: pick a free port"), err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
