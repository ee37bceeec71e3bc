// Command bench measures portcullis against a plain, tuned
// httputil.ReverseProxy on loopback, with wrk as the load generator.
//
//	go run ./bench [-duration 10s] [-runs 3] [-connections 32] [-threads 1] [-out bench/README.md]
//
// It builds portcullis, starts an upstream, a JWKS server, the baseline
// proxy and portcullis as child processes (the upstream and the proxy under
// test pinned to CPU 0, wrk to CPU 1, when taskset is there), runs every wrk
// scenario -runs times interleaved, reading the CPU time of the proxy and the
// upstream around each run, then sends a million distinct tokens to a fresh
// portcullis and reads its memory, and prints a markdown table. Everything
// listens on 127.0.0.1 and every wrk run is bounded in time; every child is
// stopped at the end and on Ctrl-C. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// tokenBudget bounds the time spent making RS256 tokens (about 1 ms of
// one core each) when -tokens is not given.
const tokenBudget = 60 * time.Second

// options are the harness's flags.
type options struct {
	duration, warmup, refetch time.Duration
	runs, conns, threads      int
	attackConns               int
	tokens, memTokens         int
	out                       string
	pin, keep                 bool
	only                      string
	soak                      time.Duration
}

func main() {
	var o options
	role := flag.String("role", "", "internal: run as a helper server (upstream, jwks, baseline)")
	addr := flag.String("addr", "", "internal: listen address of a helper server")
	upstream := flag.String("upstream", "", "internal: upstream URL of the baseline role")
	jwksFile := flag.String("jwks-file", "", "internal: key set file of the jwks role")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured run (whole seconds)")
	flag.IntVar(&o.runs, "runs", 3, "runs of each scenario, interleaved")
	flag.IntVar(&o.conns, "connections", 32, "wrk connections")
	flag.IntVar(&o.threads, "threads", 1, "wrk threads")
	flag.IntVar(&o.attackConns, "attack-connections", 32, "connections of the invalid-flood attacker's wrk")
	flag.IntVar(&o.memTokens, "memory-tokens", 1000000, "distinct ES256 tokens the memory scenario sends")
	flag.StringVar(&o.out, "out", "", "rewrite the table section of this README (e.g. bench/README.md)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured run before each measured one; 0 for none")
	flag.DurationVar(&o.refetch, "refetch-interval", 10*time.Second, "jwks_refetch_interval given to portcullis")
	flag.IntVar(&o.tokens, "tokens", 0, "distinct tokens per algorithm of the distinct-* scenarios; 0 sizes them from a calibration run")
	flag.BoolVar(&o.pin, "pin", true, "pin with taskset when it is available and there are 2+ CPUs")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, logs, tokens)")
	flag.StringVar(&o.only, "scenarios", "", "comma-separated scenarios to run (default all; baseline always runs)")
	flag.DurationVar(&o.soak, "soak", 0, "instead of the scenarios: mixed traffic at half the capacity for this long (e.g. 30m), failing if memory, goroutines, descriptors or p99 grow")
	flag.Parse()

	if *role != "" {
		if err := runRole(*role, *addr, *upstream, *jwksFile); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	if ctx.Err() != nil {
		err = errors.New("bench: interrupted; every process it started is stopped")
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// env is everything a scenario run needs.
type env struct {
	o        options
	ps       *children
	self     string // this program, re-run for the helper roles
	bin      string // the portcullis binary
	wrk      string
	taskset  string // "" when unpinned
	dir      string
	cfgPath  string
	secret   string
	upstream string // URL
	up       *child // the upstream process, whose CPU time is read around runs
	baseAddr string
	// The gRPC scenarios': h2load, the h2c upstream and the reference
	// proxy's address; unset when none is selected.
	h2load       string
	grpcUp       *child
	grpcUpstream string // h2c upstream's URL, http://host:port
	grpcBaseAddr string
	gwAddr       string
	admAddr      string
	clkTck       int    // clock ticks per second of /proc/PID/stat
	same         string // the valid token of same-token, the warm-ups and the flood's legit load
	cookie       string // a Cookie header with a session for same
	made         made   // what prepare made, for the report
	otlpAddr     string // the OTLP sink's, once started
}

func run(ctx context.Context, o options) error {
	if o.runs < 1 || o.conns < 1 || o.threads < 1 || o.threads > o.conns || o.attackConns < o.threads || o.duration < time.Second {
		return errors.New("bench: need -runs >= 1, -connections >= -threads >= 1, -attack-connections >= -threads, -duration >= 1s")
	}
	if o.memTokens < 1 {
		return errors.New("bench: need -memory-tokens >= 1")
	}
	if o.soak > 0 {
		if o.soak < time.Minute {
			return errors.New("bench: need -soak >= 1m")
		}
		o.only = "same-token"
	}
	scens, err := selectScenarios(o.only)
	if err != nil {
		return err
	}
	wrk, err := ensureWrk(ctx)
	if err != nil {
		return err
	}
	h2load := ""
	if has(scens, "grpc-baseline") {
		if h2load, err = ensureTool(ctx, "h2load", "nghttp2-client"); err != nil {
			return err
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "portcullis-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{o: o, wrk: wrk, h2load: h2load, dir: dir, bin: filepath.Join(dir, "portcullis"), clkTck: clockTicks()}
	if e.self, err = os.Executable(); err != nil {
		return err
	}
	if p, err := exec.LookPath("taskset"); err == nil && o.pin && runtime.NumCPU() >= 2 {
		e.taskset = p
	} else {
		fmt.Fprintln(os.Stderr, "not pinning: taskset missing, -pin=false or fewer than 2 CPUs")
	}
	e.ps = &children{dir: dir, taskset: e.taskset}
	defer e.ps.stopAll()

	step("building portcullis")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/portcullis")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("bench: go build ./cmd/portcullis: %w", err)
	}
	k, err := e.startHelpers(ctx, has(scens, "grpc-baseline"))
	if err != nil {
		return err
	}
	if err := e.prepare(ctx, k, scens); err != nil {
		return err
	}
	if o.soak > 0 {
		return e.soak(ctx, k, o.soak)
	}
	res := &results{runs: map[string][]result{}}
	for round := 1; round <= o.runs; round++ {
		for _, s := range scens {
			if s.memory {
				continue
			}
			step("round %d/%d: %s", round, o.runs, s.name)
			r, err := e.measure(ctx, s, o.duration, o.warmup)
			if err != nil {
				return err
			}
			step("  %.0f req/s, p50 %v, p99 %v, non-2xx %d, proxy CPU %.0f µs/req%s", r.RPS, r.P50, r.P99, r.Non2xx, r.cpuPerReq(), floodNote(r))
			res.add(s.name, r)
		}
	}
	if has(scens, "memory") {
		m, err := e.measureMemory(ctx, k, o.memTokens)
		if err != nil {
			return err
		}
		res.memory = &m
	}
	rep := report(e, res, scens)
	fmt.Print(rep)
	if o.out != "" {
		if err := rewriteReadme(o.out, rep); err != nil {
			return err
		}
		step("table written to %s", o.out)
	}
	return nil
}

// sizeTokens returns how many distinct RS256 and ES256 tokens to make, 0
// for an algorithm whose scenario is not selected: -tokens, or enough for
// the fastest run this machine allows, read from a calibration run of the
// baseline, with the RSA signing time bounded by tokenBudget.
func (e *env) sizeTokens(ctx context.Context, k *keys, rs, es bool) (nRS, nES int, err error) {
	o := e.o
	if o.tokens > 0 {
		if rs {
			nRS = o.tokens
		}
		if es {
			nES = o.tokens
		}
		return nRS, nES, nil
	}
	d := min(o.duration, 3*time.Second)
	step("calibrating: %v of baseline", d)
	calib, err := e.measure(ctx, scenario{name: "baseline", target: "baseline"}, d, 0)
	if err != nil {
		return 0, 0, err
	}
	signRS, verifyRS, verifyES, err := k.costs()
	if err != nil {
		return 0, 0, err
	}
	step("baseline does %.0f req/s; an RS256 token takes %v to make (all CPUs), one core checks RS256 in %v, ES256 in %v",
		calib.RPS, signRS.Round(time.Microsecond), verifyRS.Round(time.Microsecond), verifyES.Round(time.Microsecond))
	// Sized as if checking a token were free: portcullis' own checks are
	// faster than the standard library's timed here (ES256 by far), and a
	// list that wraps would hand it tokens it has cached.
	if rs {
		nRS = tokenCount(calib.RPS, o.duration, 0)
		// A run that outlasts the list is flagged in the table ("wrapped").
		if most := int(tokenBudget / signRS); nRS > most {
			nRS = most
		}
		step("RS256 signing: about %v for %d tokens", (time.Duration(nRS) * signRS).Round(time.Second), nRS)
	}
	if es {
		nES = tokenCount(calib.RPS, o.duration, 0)
	}
	return nRS, nES, nil
}

// floodNote is the flood's part of a run's progress line.
func floodNote(r result) string {
	if r.attack == nil {
		return ""
	}
	return fmt.Sprintf(", attacker %.0f req/s (%s), JWKS fetches %d", r.attack.RPS, statusMix(r.attack), r.fetches)
}

// startHelpers starts the upstream and the JWKS server (and, for the gRPC
// scenarios, the h2c upstream) and writes the gateway's configuration; it
// returns the issuer's keys.
func (e *env) startHelpers(ctx context.Context, grpc bool) (*keys, error) {
	addrs, err := freeAddrs(7)
	if err != nil {
		return nil, err
	}
	upAddr, jwksAddr := addrs[0], addrs[1]
	e.baseAddr, e.gwAddr, e.admAddr = addrs[2], addrs[3], addrs[4]
	if grpc {
		e.grpcUpstream, e.grpcBaseAddr = "http://"+addrs[5], addrs[6]
		if e.grpcUp, err = e.ps.start("grpc-upstream", 0, nil, e.self, "-role", "grpc-upstream", "-addr", addrs[5]); err != nil {
			return nil, err
		}
		if err := waitHTTP(ctx, e.grpcUp, e.grpcUpstream+"/", 200, 10*time.Second); err != nil {
			return nil, err
		}
	}
	e.upstream = "http://" + upAddr
	issuer := "http://" + jwksAddr
	k, err := newKeys(issuer)
	if err != nil {
		return nil, err
	}
	jwksFile := filepath.Join(e.dir, "jwks.json")
	if err := k.writeJWKS(jwksFile); err != nil {
		return nil, err
	}
	if e.up, err = e.ps.start("upstream", 0, nil, e.self, "-role", "upstream", "-addr", upAddr); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, e.up, e.upstream+"/", 200, 10*time.Second); err != nil {
		return nil, err
	}
	js, err := e.ps.start("jwks", 1, nil, e.self, "-role", "jwks", "-addr", jwksAddr, "-jwks-file", jwksFile)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, js, issuer+"/jwks", 200, 10*time.Second); err != nil {
		return nil, err
	}
	e.secret = strings.ToLower(strings.Repeat(randText(), 2)) // 52 chars, over the 32-byte minimum
	e.cfgPath = filepath.Join(e.dir, "portcullis.yaml")
	cfg := gatewayConfig(e.gwAddr, e.admAddr, issuer, e.upstream, e.grpcUpstream, e.o.refetch)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	check := exec.CommandContext(ctx, e.bin, "check", "--config", e.cfgPath)
	check.Env = append(os.Environ(), "BENCH_COOKIE_SECRET="+e.secret)
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: portcullis check of the generated configuration: %w\n%s", err, out)
	}
	return k, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("bench: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("bench: run from inside the portcullis module (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

// step prints progress to standard error; the report goes to standard output.
func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
