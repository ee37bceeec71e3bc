package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scenario is one kind of load against one proxy.
type scenario struct {
	name   string
	target string  // "baseline" or "portcullis"
	flood  bool    // an attacker's wrk runs alongside; JWKS fetches are read around the run
	memory bool    // not a wrk run: distinct tokens from the harness, then portcullis' memory
	grpc   bool    // unary gRPC calls over cleartext HTTP/2, driven by h2load
	ref    string  // the scenario its ratios are taken against; "" is baseline
	floor  float64 // the target ratio
	// vs, when set, is the scenario the target is judged against instead
	// of the baseline (the table's ratio stays the baseline's).
	vs     string
	path   string // the URL path portcullis is sent; "" is /
	load   load   // measured requests (the legit ones in the flood)
	warm   load   // warm-up requests (never the measured tokens)
	attack load   // the flood attacker's requests
	// env is added to portcullis' environment: the variants of same-token
	// that run without one of its special paths, to measure what each
	// saves.
	env []string
}

// scenarios in the order each round runs them; floor is the issue's
// target for the ratio to the baseline (for the flood: the legit req/s
// against same-token's). The memory scenario runs once, after every round.
var allScenarios = []scenario{
	{name: "baseline", target: "baseline"},
	{name: "same-token", target: "portcullis", floor: 1.10},
	{name: "distinct-rs256", target: "portcullis", floor: 0.75},
	{name: "distinct-es256", target: "portcullis", floor: 0.55},
	{name: "session-cookie", target: "portcullis", floor: 1.00},
	{name: "invalid-flood", target: "portcullis", flood: true, floor: 0.90},
	// gRPC: unary calls with one token over h2c, against a plain
	// ReverseProxy with an HTTP/2 transport.
	// same-token on a route with three CEL rules, the third deciding.
	{name: "same-token-rules", target: "portcullis", path: "/rules/x", vs: "same-token", floor: 0.95},
	{name: "grpc-baseline", target: "grpc-baseline", grpc: true},
	{name: "grpc-unary", target: "portcullis", grpc: true, ref: "grpc-baseline", floor: 1.00},
	// same-token without the HTTP/1.1 upstream fast path (the standard
	// http.Transport instead), and with the runtime's default GC pace.
	// same-token with tracing on, exporting to an OTLP sink of the
	// harness: sampling nothing (the cost of the spans' bookkeeping and the
	// upstream's traceparent), and everything (three spans a request).
	{name: "same-token-traced-0", target: "portcullis", vs: "same-token", floor: 0.97,
		env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpSink, "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0"}},
	{name: "same-token-traced-1", target: "portcullis", vs: "same-token",
		env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + otlpSink, "OTEL_TRACES_SAMPLER=always_on"}},
	{name: "same-token-std-transport", target: "portcullis", env: []string{"PORTCULLIS_UPSTREAM_TRANSPORT=std"}},
	{name: "same-token-default-gc", target: "portcullis", env: []string{"GOGC=100"}},
	{name: "memory", target: "portcullis", memory: true},
}

// selectScenarios returns the scenarios named in a comma list (all when
// empty), always with the baseline first.
func selectScenarios(only string) ([]scenario, error) {
	if only == "" {
		return slices.Clone(allScenarios), nil
	}
	want := map[string]bool{"baseline": true}
	for _, n := range strings.Split(only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	if want["grpc-unary"] {
		want["grpc-baseline"] = true // its reference
	}
	for _, n := range []string{"same-token-rules", "same-token-traced-0", "same-token-traced-1"} {
		if want[n] {
			want["same-token"] = true // what its target is judged against
		}
	}
	var out []scenario
	for _, s := range allScenarios {
		if want[s.name] {
			out = append(out, s)
			delete(want, s.name)
		}
	}
	for n := range want {
		if n != "baseline" && n != "grpc-baseline" {
			return nil, fmt.Errorf("bench: unknown scenario %q", n)
		}
	}
	return out, nil
}

// has reports whether the scenario name is among scens.
func has(scens []scenario, name string) bool {
	return slices.ContainsFunc(scens, func(s scenario) bool { return s.name == name })
}

// invalidTokens is the length of the flood attacker's list, which it
// cycles through. Refusals are not cached, so a repeat costs portcullis
// what a new one would.
const invalidTokens = 30000

// made records what prepare made, for the report.
type made struct {
	rs, es, invalid int // lines of each token file; 0 when not made
}

// Files prepare writes into the temporary directory.
const (
	scriptFile  = "tokens.lua"
	rsFile      = "rs256.txt"
	esFile      = "es256.txt"
	invalidFile = "invalid.txt"
)

// prepare writes what the selected scenarios need into the temporary
// directory and sets their requests: the valid same-token and its session
// cookie (cheap, always), distinct RS256 and ES256 token files only when
// their scenario is selected, sized as sizeTokens says (its calibration
// runs only then), and the invalid tokens only for the flood.
func (e *env) prepare(ctx context.Context, k *keys, scens []scenario) error {
	now := time.Now()
	var err error
	if e.same, err = k.mint(k.rs, "bench-user", now); err != nil {
		return err
	}
	cookie, err := sessionCookie([]byte(e.secret), e.same, "bench-user", now)
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.file(scriptFile), []byte(luaScript), 0o600); err != nil {
		return err
	}
	if err := e.writeTokenFiles(ctx, k, scens); err != nil {
		return err
	}
	e.cookie = cookie
	e.setLoads(scens, cookie)
	return nil
}

// file is the path of name in the temporary directory.
func (e *env) file(name string) string { return filepath.Join(e.dir, name) }

// writeTokenFiles writes the token files the selected scenarios read and
// records their lengths in e.made.
func (e *env) writeTokenFiles(ctx context.Context, k *keys, scens []scenario) error {
	rs, es := has(scens, "distinct-rs256"), has(scens, "distinct-es256")
	if rs || es {
		var err error
		if e.made.rs, e.made.es, err = e.sizeTokens(ctx, k, rs, es); err != nil {
			return err
		}
		step("making %s", e.made.distinct())
		start := time.Now()
		if rs {
			if err := k.writeTokens(e.file(rsFile), k.rs, e.made.rs, "rs-user-"); err != nil {
				return err
			}
		}
		if es {
			if err := k.writeTokens(e.file(esFile), k.es, e.made.es, "es-user-"); err != nil {
				return err
			}
		}
		step("tokens written in %v", time.Since(start).Round(time.Millisecond))
	}
	if has(scens, "invalid-flood") {
		e.made.invalid = invalidTokens
		return k.writeInvalid(e.file(invalidFile), e.made.invalid)
	}
	return nil
}

// setLoads sets every scenario's measured, warm-up and attack requests.
func (e *env) setLoads(scens []scenario, cookie string) {
	threads := strconv.Itoa(e.o.threads)
	list := func(file, mode string) load {
		return load{script: []string{e.file(scriptFile), e.file(file), mode, threads}}
	}
	bearer := load{header: "Authorization: Bearer " + e.same}
	for i := range scens {
		s := &scens[i]
		switch s.name {
		case "same-token", "same-token-std-transport", "same-token-default-gc", "same-token-traced-0", "same-token-traced-1":
			s.load, s.warm = bearer, bearer
		case "distinct-rs256":
			s.load, s.warm = list(rsFile, "list"), bearer
		case "distinct-es256":
			s.load, s.warm = list(esFile, "list"), bearer
		case "session-cookie":
			s.load = load{header: "Cookie: " + cookie}
			s.warm = s.load
		case "invalid-flood":
			s.load, s.warm, s.attack = bearer, bearer, list(invalidFile, "attack")
		case "same-token-rules":
			s.load, s.warm = bearer, bearer
		case "grpc-unary", "grpc-baseline":
			// The plain proxy gets the same requests, token included:
			// h2load, like every nghttp2 client, never indexes
			// authorization in HPACK (RFC 7541 §7.1.3), so each request
			// carries the whole token as a Huffman-coded literal that any
			// HTTP/2 server decodes. That is the request's cost, not the
			// proxy's.
			s.load, s.warm = bearer, bearer
		}
	}
}

// result is one measured run.
type result struct {
	wrkRun                   // the measured wrk (in the flood, the legit one)
	attack     *wrkRun       // the flood's attacker; nil elsewhere
	fetches    int           // JWKS fetches during the run (flood only)
	cpu, upCPU time.Duration // CPU time of the proxy and of the upstream during the run
}

// requests counts the requests of every wrk of the run.
func (r result) requests() int {
	n := r.Requests
	if r.attack != nil {
		n += r.attack.Requests
	}
	return n
}

// cpuPerReq is the proxy's CPU time per request, in µs.
func (r result) cpuPerReq() float64 { return perReq(r.cpu, r.requests()) }

// upCPUPerReq is the upstream's CPU time per request, in µs.
func (r result) upCPUPerReq() float64 { return perReq(r.upCPU, r.requests()) }

func perReq(d time.Duration, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// measure starts the scenario's proxy pinned to CPU 0, checks it answers,
// warms it up, runs the load for d and stops the proxy again, so every run
// starts from a fresh process (and empty caches). Around the measured load
// it reads the CPU time of the proxy and of the upstream and, for the
// flood, portcullis' JWKS fetch counter.
func (e *env) measure(ctx context.Context, s scenario, d, warmup time.Duration) (result, error) {
	var (
		ch  *child
		err error
		url string
	)
	upPid := e.up.cmd.Process.Pid
	switch {
	case s.grpc:
		upPid = e.grpcUp.cmd.Process.Pid
		if s.target == "portcullis" {
			url = "http://" + e.gwAddr + grpcPath
			ch, err = e.startGateway(ctx, s.name, 0, s.env...)
		} else {
			url = "http://" + e.grpcBaseAddr + grpcPath
			ch, err = e.ps.start("grpc-baseline", 0, nil, e.self, "-role", "grpc-baseline", "-addr", e.grpcBaseAddr, "-upstream", e.grpcUpstream)
			if err == nil {
				err = waitHTTP(ctx, ch, "http://"+e.grpcBaseAddr+"/", 200, 10*time.Second)
			}
		}
	case s.target == "portcullis":
		url = "http://" + e.gwAddr + cmp.Or(s.path, "/")
		ch, err = e.startGateway(ctx, s.name, 0, s.env...)
	default:
		url = "http://" + e.baseAddr + "/"
		ch, err = e.ps.start("baseline", 0, nil, e.self, "-role", "baseline", "-addr", e.baseAddr, "-upstream", e.upstream)
		if err == nil {
			err = waitHTTP(ctx, ch, url, 200, 10*time.Second)
		}
	}
	if ch != nil {
		defer ch.stop()
	}
	if err != nil {
		return result{}, err
	}
	check := sanity
	if s.grpc {
		check = grpcSanity
	}
	if err := check(url, s.warm.header, ch); err != nil {
		return result{}, err
	}
	if warmup > 0 {
		if _, err := e.driveAny(ctx, url, s, s.warm, warmup); err != nil {
			return result{}, err
		}
	}
	var r result
	before := 0
	if s.flood {
		if before, err = jwksFetches(e.admAddr); err != nil {
			return result{}, err
		}
	}
	refused := 0
	if s.grpc && s.target == "portcullis" {
		if refused, err = grpcRefusals(e.admAddr); err != nil {
			return result{}, err
		}
	}
	pids := []int{ch.cmd.Process.Pid, upPid}
	cpu0, err := cpuTimes(e.clkTck, pids)
	if err != nil {
		return result{}, err
	}
	if r.wrkRun, r.attack, err = e.runLoad(ctx, url, s, d); err != nil {
		return result{}, err
	}
	cpu1, err := cpuTimes(e.clkTck, pids)
	if err != nil {
		return result{}, err
	}
	r.cpu, r.upCPU = cpu1[0]-cpu0[0], cpu1[1]-cpu0[1]
	if s.grpc && s.target == "portcullis" {
		// A gRPC refusal is an HTTP 200 to h2load: count them here.
		after, err := grpcRefusals(e.admAddr)
		if err != nil {
			return result{}, err
		}
		r.Non2xx += after - refused
	}
	if s.flood {
		after, err := jwksFetches(e.admAddr)
		if err != nil {
			return result{}, err
		}
		r.fetches = after - before
	}
	return r, nil
}

// startGateway starts a fresh portcullis, pinned to cpu (unpinned when
// cpu < 0), and waits until it is ready.
func (e *env) startGateway(ctx context.Context, name string, cpu int, env ...string) (*child, error) {
	vars := []string{"BENCH_COOKIE_SECRET=" + e.secret}
	for _, v := range env {
		if strings.Contains(v, otlpSink) {
			addr, err := e.otlp()
			if err != nil {
				return nil, err
			}
			v = strings.ReplaceAll(v, otlpSink, addr)
		}
		vars = append(vars, v)
	}
	ch, err := e.ps.start("portcullis-"+name, cpu, vars,
		e.bin, "serve", "--config", e.cfgPath)
	if err != nil {
		return nil, err
	}
	return ch, waitHTTP(ctx, ch, "http://"+e.admAddr+"/readyz", 200, 20*time.Second)
}

// runLoad runs the scenario's measured load for d. For the flood it runs
// the attacker's wrk at the same time, for the same duration, and returns
// its run too; should either fail, the other is stopped.
func (e *env) runLoad(ctx context.Context, url string, s scenario, d time.Duration) (wrkRun, *wrkRun, error) {
	if !s.flood {
		w, err := e.driveAny(ctx, url, s, s.load, d)
		return w, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		atk    wrkRun
		atkErr error
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		if atk, atkErr = e.drive(ctx, url, s.attack, d, e.o.attackConns); atkErr != nil {
			cancel()
		}
	})
	legit, err := e.drive(ctx, url, s.load, d, e.o.conns)
	if err != nil {
		cancel()
	}
	wg.Wait()
	if err := errors.Join(err, atkErr); err != nil {
		return wrkRun{}, nil, err
	}
	return legit, &atk, nil
}

// driveAny runs the scenario's load generator with l: h2load for gRPC
// (a quarter of -connections, four streams each: gRPC clients multiplex),
// wrk for the rest.
func (e *env) driveAny(ctx context.Context, url string, s scenario, l load, d time.Duration) (wrkRun, error) {
	if s.grpc {
		return runH2load(ctx, e.h2load, e.taskset, e.dir, 1, url, l.header, d, max(1, e.o.conns/4), 4)
	}
	return e.drive(ctx, url, l, d, e.o.conns)
}

// drive runs one wrk against url, pinned to CPU 1 when pinning.
func (e *env) drive(ctx context.Context, url string, l load, d time.Duration, conns int) (wrkRun, error) {
	w, _, err := runWrk(ctx, e.wrk, e.taskset, 1, url, l, d, conns, e.o.threads)
	return w, err
}

// sanity sends one request with header and wants 200, so a broken set-up
// fails loudly instead of measuring a stream of 401s.
func sanity(url, header string, ch *child) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if name, value, ok := strings.Cut(header, ": "); ok {
		req.Header.Set(name, value)
	}
	res, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", ch.name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: %s answered %s to a valid request: %s\n%s", ch.name, res.Status, body, ch.tail())
	}
	return nil
}

// jwksFetches sums portcullis_jwks_fetches_total over issuers and results.
func jwksFetches(admin string) (int, error) {
	res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("bench: metrics: %w", err)
	}
	defer res.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "portcullis_jwks_fetches_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("bench: metrics: %q: %w", line, err)
		}
		total += v
	}
	return int(total), sc.Err()
}

func randText() string { return rand.Text() }

// otlpSink stands for the OTLP sink's address in a scenario's env.
const otlpSink = "{{otlp}}"

// otlp returns the address of the harness's OTLP/HTTP sink, starting it
// the first time: it answers every export with success and keeps nothing,
// so the traced scenarios measure the gateway's side of tracing alone.
func (e *env) otlp() (string, error) {
	if e.otlpAddr != "" {
		return e.otlpAddr, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse
	})}
	go func() { _ = srv.Serve(ln) }()
	e.otlpAddr = ln.Addr().String()
	return e.otlpAddr, nil
}
