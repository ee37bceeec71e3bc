package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// scenario is one kind of load against one proxy.
type scenario struct {
	name   string
	target string  // "baseline" or "portcullis"
	flood  bool    // read JWKS fetches around the run; count valid 200s
	floor  float64 // the target ratio
	load   load    // measured requests
	warm   load    // warm-up requests (never the measured tokens)
}

// scenarios in the order each round runs them; target is the issue's
// floor for the ratio to the baseline (for the flood: valid 200/s against
// same-token's req/s).
var allScenarios = []scenario{
	{name: "baseline", target: "baseline"},
	{name: "same-token", target: "portcullis", floor: 1.10},
	{name: "distinct-rs256", target: "portcullis", floor: 0.75},
	{name: "distinct-es256", target: "portcullis", floor: 0.55},
	{name: "session-cookie", target: "portcullis", floor: 1.00},
	{name: "invalid-flood", target: "portcullis", flood: true, floor: 0.90},
}

// selectScenarios returns the scenarios named in a comma list (all when
// empty), always with the baseline first.
func selectScenarios(only string) ([]scenario, error) {
	if only == "" {
		return allScenarios, nil
	}
	want := map[string]bool{"baseline": true}
	for _, n := range strings.Split(only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []scenario
	for _, s := range allScenarios {
		if want[s.name] {
			out = append(out, s)
			delete(want, s.name)
		}
	}
	for n := range want {
		if n != "baseline" {
			return nil, fmt.Errorf("bench: unknown scenario %q", n)
		}
	}
	return out, nil
}

// loads are the requests of each scenario, measured and warm-up.
type loads map[string]struct{ load, warm load }

// makeLoads writes the token files and the wrk script into the temporary
// directory and returns every scenario's requests. nRS and nES are the
// numbers of distinct tokens per algorithm, nBad of invalid ones (the
// flood cycles through them once they run out).
func (e *env) makeLoads(k *keys, nRS, nES, nBad int) (loads, error) {
	now := time.Now()
	same, err := k.mint(k.rs, "bench-user", now)
	if err != nil {
		return nil, err
	}
	cookie, err := sessionCookie([]byte(e.secret), same, "bench-user", now)
	if err != nil {
		return nil, err
	}
	script := filepath.Join(e.dir, "tokens.lua")
	if err := os.WriteFile(script, []byte(luaScript), 0o600); err != nil {
		return nil, err
	}
	rsFile, esFile, badFile := filepath.Join(e.dir, "rs256.txt"), filepath.Join(e.dir, "es256.txt"), filepath.Join(e.dir, "invalid.txt")
	start := time.Now()
	if err := k.writeTokens(rsFile, k.rs, nRS, "rs-user-"); err != nil {
		return nil, err
	}
	if err := k.writeTokens(esFile, k.es, nES, "es-user-"); err != nil {
		return nil, err
	}
	if err := k.writeInvalid(badFile, nBad); err != nil {
		return nil, err
	}
	step("tokens written in %v", time.Since(start).Round(time.Millisecond))
	threads := strconv.Itoa(e.o.threads)
	bearer := load{header: "Authorization: Bearer " + same}
	return loads{
		"baseline":       {},
		"same-token":     {load: bearer, warm: bearer},
		"distinct-rs256": {load: load{script: []string{script, rsFile, "list", threads}}, warm: bearer},
		"distinct-es256": {load: load{script: []string{script, esFile, "list", threads}}, warm: bearer},
		"session-cookie": {load: load{header: "Cookie: " + cookie}, warm: load{header: "Cookie: " + cookie}},
		"invalid-flood":  {load: load{script: []string{script, badFile, "flood", threads, same}}, warm: bearer},
	}, nil
}

// result is one measured run.
type result struct {
	wrkRun
	fetches int // JWKS fetches during the run (flood only)
}

// validRPS is the rate of requests answered 2xx/3xx.
func (r result) validRPS() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Requests-r.Non2xx) / r.Seconds
}

// measure starts the scenario's proxy pinned to CPU 0, checks it answers,
// warms it up, runs wrk for d and stops the proxy again, so every run
// starts from a fresh process (and empty caches).
func (e *env) measure(ctx context.Context, s scenario, d, warmup time.Duration) (result, error) {
	var (
		ch  *child
		err error
		url string
	)
	if s.target == "portcullis" {
		url = "http://" + e.gwAddr + "/"
		ch, err = e.ps.start("portcullis-"+s.name, 0, []string{"BENCH_COOKIE_SECRET=" + e.secret},
			e.bin, "serve", "--config", e.cfgPath)
		if err == nil {
			err = waitHTTP(ctx, ch, "http://"+e.admAddr+"/readyz", 200, 20*time.Second)
		}
	} else {
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
	if err := sanity(url, s.warm.header, ch); err != nil {
		return result{}, err
	}
	if warmup > 0 {
		if _, _, err := runWrk(ctx, e.wrk, e.taskset, 1, url, s.warm, warmup, e.o.conns, e.o.threads); err != nil {
			return result{}, err
		}
	}
	var before int
	if s.flood {
		if before, err = jwksFetches(e.admAddr); err != nil {
			return result{}, err
		}
	}
	w, _, err := runWrk(ctx, e.wrk, e.taskset, 1, url, s.load, d, e.o.conns, e.o.threads)
	if err != nil {
		return result{}, err
	}
	r := result{wrkRun: w}
	if s.flood {
		after, err := jwksFetches(e.admAddr)
		if err != nil {
			return result{}, err
		}
		r.fetches = after - before
	}
	return r, nil
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
