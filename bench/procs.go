package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// clockTicks returns the clock ticks per second of /proc/PID/stat, from
// getconf CLK_TCK, or 100 (Linux's usual value) when getconf fails.
func clockTicks() int {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return n
		}
	}
	fmt.Fprintln(os.Stderr, "getconf CLK_TCK failed; assuming 100 clock ticks per second")
	return 100
}

// procCPU returns the user plus system CPU time process pid (all its
// threads) has used, from fields 14 and 15 of /proc/PID/stat.
func procCPU(pid, clkTck int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after it start with field 3, the state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(clkTck), nil
}

// cpuTimes returns the CPU time each process in pids has used so far.
func cpuTimes(clkTck int, pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		d, err := procCPU(pid, clkTck)
		if err != nil {
			return nil, fmt.Errorf("bench: CPU time: %w", err)
		}
		out[i] = d
	}
	return out, nil
}

// procMemory returns VmRSS and VmHWM (the peak of VmRSS) of process pid
// in KiB, from /proc/PID/status.
func procMemory(pid int) (rss, hwm int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(value), " kB"))
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %q: %w", pid, line, err)
		}
		if name == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return rss, hwm, nil
}
