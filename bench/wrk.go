package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ensureWrk returns the path of wrk, installing it from the distribution
// when it is missing and the harness runs as root.
func ensureWrk(ctx context.Context) (string, error) { return ensureTool(ctx, "wrk", "wrk") }

// ensureTool returns the path of program, installing Debian's package pkg
// with apt-get when it is missing and the harness runs as root.
func ensureTool(ctx context.Context, program, pkg string) (string, error) {
	if p, err := exec.LookPath(program); err == nil {
		return p, nil
	}
	fmt.Fprintf(os.Stderr, "%s is not installed; install it with: apt-get install -y %s\n", program, pkg)
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("bench: %s missing and not running as root; run: sudo apt-get install -y %s", program, pkg)
	}
	apt := func(args ...string) error {
		fmt.Fprintln(os.Stderr, "running: apt-get", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if err := apt("install", "-y", pkg); err != nil {
		if err := apt("update"); err != nil {
			return "", fmt.Errorf("bench: apt-get update: %w", err)
		}
		if err := apt("install", "-y", pkg); err != nil {
			return "", fmt.Errorf("bench: apt-get install -y %s: %w", pkg, err)
		}
	}
	return exec.LookPath(program)
}

// wrkVersion returns wrk's first line of -v output.
func wrkVersion(wrk string) string {
	out, _ := exec.Command(wrk, "-v").CombinedOutput() // exits 1 after printing
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " Copyright")
	return strings.TrimSpace(line)
}

// luaScript drives the scenarios whose requests differ. Arguments (after
// --): a file of tokens, one a line; a mode; and wrk's thread count. Both
// modes send the tokens in order (thread k of n takes tokens k+1, k+1+n, …,
// so no token repeats until the list wraps). Mode "list" is for the
// distinct-* scenarios: done prints how often a list wrapped, which the
// harness reports. Mode "attack" is the flood's attacker, which cycles
// through its invalid tokens on purpose and counts the answers by status
// (response is defined only then, as wrk parses every response once a
// script has one; wrk checks for it after init). Each thread reads the
// file at init (setup runs thread by thread, so the thread count must come
// as an argument).
const luaScript = `
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    tokens[#tokens + 1] = line
  end
  f:close()
  n = #tokens
  stride = tonumber(args[3]) or 1
  i = id
  wraps = 0
  statuses = {}
  if args[2] == "attack" then
    response = function(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
    end
  end
end

local function nexttoken()
  i = i + stride
  if i > n then
    i = ((i - 1) % n) + 1
    wraps = wraps + 1
  end
  return tokens[i]
end

function request()
  return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. nexttoken()})
end

function done(summary, latency, requests)
  local w = 0
  local st = {}
  for _, t in ipairs(threads) do
    w = w + (t:get("wraps") or 0)
    for code, c in pairs(t:get("statuses") or {}) do
      st[code] = (st[code] or 0) + c
    end
  end
  io.write(string.format("bench-wraps: %d\n", w))
  for code, c in pairs(st) do
    io.write(string.format("bench-status: %d %d\n", code, c))
  end
end
`

// wrkRun is what one wrk run reports.
type wrkRun struct {
	Requests int           // completed requests
	Seconds  float64       // measured run time
	RPS      float64       // Requests/sec line
	P50, P99 time.Duration // from --latency
	Non2xx   int           // "Non-2xx or 3xx responses"
	Errors   int           // socket errors of every kind
	Wraps    int           // token list wraps (script scenarios)
	Statuses map[int]int   // answers by status (the flood's attacker only)
}

// load describes the requests of one wrk run.
type load struct {
	header string   // a fixed header, "" for none
	script []string // lua file then its arguments; nil for none
}

// runWrk runs wrk against url, pinned to cpu when pinning, for d.
func runWrk(ctx context.Context, wrk, taskset string, cpu int, url string, l load, d time.Duration, conns, threads int) (wrkRun, string, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	argv := []string{wrk, "--latency", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s"}
	if l.header != "" {
		argv = append(argv, "-H", l.header)
	}
	if l.script != nil {
		argv = append(argv, "-s", l.script[0], url, "--")
		argv = append(argv, l.script[1:]...)
	} else {
		argv = append(argv, url)
	}
	if taskset != "" && cpu >= 0 {
		argv = append([]string{taskset, "-c", strconv.Itoa(cpu)}, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return wrkRun{}, out.String(), fmt.Errorf("bench: wrk: %w:\n%s", err, out.String())
	}
	r, err := parseWrk(out.String())
	return r, out.String(), err
}

var (
	reTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reP50     = regexp.MustCompile(`(?m)^\s+50%\s+([\d.]+(?:us|ms|s|m))\s*$`)
	reP99     = regexp.MustCompile(`(?m)^\s+99%\s+([\d.]+(?:us|ms|s|m))\s*$`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reWraps   = regexp.MustCompile(`bench-wraps: (\d+)`)
	reStatus  = regexp.MustCompile(`(?m)^bench-status: (\d+) (\d+)$`)
)

// parseWrk reads wrk's summary.
func parseWrk(s string) (wrkRun, error) {
	var r wrkRun
	m := reTotal.FindStringSubmatch(s)
	rps := reRPS.FindStringSubmatch(s)
	p50 := reP50.FindStringSubmatch(s)
	p99 := reP99.FindStringSubmatch(s)
	if m == nil || rps == nil || p50 == nil || p99 == nil {
		return r, fmt.Errorf("bench: cannot parse wrk output:\n%s", s)
	}
	r.Requests, _ = strconv.Atoi(m[1])
	d, _ := time.ParseDuration(m[2] + m[3])
	r.Seconds = d.Seconds()
	r.RPS, _ = strconv.ParseFloat(rps[1], 64)
	r.P50, _ = time.ParseDuration(p50[1])
	r.P99, _ = time.ParseDuration(p99[1])
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		r.Non2xx, _ = strconv.Atoi(m[1])
	}
	if m := reSockErr.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(v)
			r.Errors += n
		}
	}
	if m := reWraps.FindStringSubmatch(s); m != nil {
		r.Wraps, _ = strconv.Atoi(m[1])
	}
	for _, m := range reStatus.FindAllStringSubmatch(s, -1) {
		code, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if r.Statuses == nil {
			r.Statuses = map[int]int{}
		}
		r.Statuses[code] += n
	}
	return r, nil
}
