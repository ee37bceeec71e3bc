package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The soak's traffic, out of every 100 requests: 50 with the same token,
// 25 with distinct ES256 tokens (from a pool larger than the token cache,
// so it keeps evicting), 24 with a session cookie and 1 with garbage (on
// connections of its own, as an attacker's are: the gateway holds back
// answers on connections that keep failing).
const (
	soakSame, soakDistinct, soakSession = 50, 25, 24
	soakPool                            = 50000
	soakWorkers                         = 64
)

// soakSample is what one interval of the soak saw.
type soakSample struct {
	at         time.Duration // since the start, at the end of the interval
	rps        float64
	p99        time.Duration
	rssKiB     int
	goroutines int
	fds        int
	bad        int // valid requests not answered 200, garbage not 401, transport errors
}

// soakHeader heads the soak's table, of [soakSample.row] lines.
const soakHeader = "| time | req/s | p99 | RSS | goroutines | open fds | bad answers |\n|---|---|---|---|---|---|---|\n"

// row is the sample's line of the soak's table.
func (s soakSample) row() string {
	return fmt.Sprintf("| %v | %.0f | %v | %.1f MiB | %d | %d | %d |\n", s.at, s.rps, s.p99.Round(10*time.Microsecond), mib(s.rssKiB), s.goroutines, s.fds, s.bad)
}

// recorder collects one worker's latencies and failures between samples.
type recorder struct {
	mu  sync.Mutex
	lat []time.Duration
	bad int
}

func (r *recorder) add(d time.Duration, ok bool) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	if !ok {
		r.bad++
	}
	r.mu.Unlock()
}

func (r *recorder) take() ([]time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat, bad := r.lat, r.bad
	r.lat, r.bad = make([]time.Duration, 0, len(lat)), 0
	return lat, bad
}

// soak measures portcullis' capacity with one token (wrk, as the
// same-token scenario), then runs it for d at half of that under the mixed
// traffic above, reloading its configuration every five minutes (a
// quarter of d when shorter), and prints RSS, goroutines, open file
// descriptors and p99 every minute (a twelfth of d when shorter). It
// fails if any of them grows from the first half of the run (after the
// first sample, the warm-up) to the second, or if any request is
// answered other than as it must be.
func (e *env) soak(ctx context.Context, k *keys, d time.Duration) error {
	sessionCookie := e.cookie
	interval := min(time.Minute, d/12)
	reloadEvery := min(5*time.Minute, d/4)
	calib, err := e.measure(ctx, scenario{name: "same-token", target: "portcullis", load: load{header: "Authorization: Bearer " + e.same}, warm: load{header: "Authorization: Bearer " + e.same}}, 5*time.Second, time.Second)
	if err != nil {
		return err
	}
	rate := calib.RPS / 2
	step("capacity with one token: %.0f req/s; soaking at %.0f req/s for %v", calib.RPS, rate, d)

	step("making %d distinct ES256 tokens and the garbage", soakPool)
	pool := make([]string, soakPool)
	now := time.Now()
	for i := range pool {
		if pool[i], err = k.mint(k.es, "soak-"+strconv.Itoa(i), now); err != nil {
			return err
		}
	}
	garbage := k.invalid(3000)

	gw, err := e.startGateway(ctx, "soak", 0)
	if err != nil {
		return err
	}
	defer gw.stop()
	pid := gw.cmd.Process.Pid
	url := "http://" + e.gwAddr + "/"

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	valid := &http.Transport{MaxIdleConns: soakWorkers, MaxIdleConnsPerHost: soakWorkers}
	attacker := &http.Transport{MaxIdleConns: 4, MaxIdleConnsPerHost: 4}
	defer valid.CloseIdleConnections()
	defer attacker.CloseIdleConnections()
	recs := make([]*recorder, soakWorkers)
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) * soakWorkers / rate)
	start := time.Now()
	for w := range recs {
		recs[w] = &recorder{}
		wg.Go(func() {
			next := start.Add(every * time.Duration(w) / soakWorkers)
			for n := w; ctx.Err() == nil; n += soakWorkers {
				if wait := time.Until(next); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				next = next.Add(every)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				tr, want := http.RoundTripper(valid), http.StatusOK
				switch m := n % 100; {
				case m < soakSame:
					req.Header.Set("Authorization", "Bearer "+e.same)
				case m < soakSame+soakDistinct:
					req.Header.Set("Authorization", "Bearer "+pool[(n/100*soakDistinct+m-soakSame)%len(pool)])
				case m < soakSame+soakDistinct+soakSession:
					req.Header.Set("Cookie", sessionCookie)
				default:
					req.Header.Set("Authorization", "Bearer "+garbage[(n/100)%len(garbage)])
					tr, want = attacker, http.StatusUnauthorized
				}
				t0 := time.Now()
				res, err := tr.RoundTrip(req)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				if ctx.Err() != nil {
					return
				}
				recs[w].add(time.Since(t0), err == nil && res.StatusCode == want)
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	var samples []soakSample
	reloads := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastReload, last := start, start
	fmt.Fprint(os.Stderr, "\n"+soakHeader)
	for len(samples) < int(d/interval) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-gw.done:
			return fmt.Errorf("bench: portcullis exited during the soak (%v):\n%s", gw.err, gw.tail())
		case t := <-tick.C:
			s, err := sampleSoak(pid, e.admAddr, recs, t.Sub(last))
			if err != nil {
				return err
			}
			last = t
			s.at = t.Sub(start).Round(time.Second)
			samples = append(samples, s)
			fmt.Fprint(os.Stderr, s.row())
			if t.Sub(lastReload) >= reloadEvery {
				reloads++
				if err := e.reload(gw, reloads); err != nil {
					return err
				}
				lastReload = t
			}
		}
	}
	cancel()
	wg.Wait()
	ok, err := metricValue(e.admAddr, `portcullis_config_reloads_total{result="ok"}`)
	if err != nil {
		return err
	}
	fmt.Print(soakReport(samples, calib.RPS, rate, reloads, int(ok)))
	if int(ok) != reloads {
		return fmt.Errorf("bench: soak: %d reloads, %d counted ok", reloads, int(ok))
	}
	return soakVerdict(samples)
}

// reload rewrites the configuration (a comment changes: an unchanged file
// is not reloaded) and sends SIGHUP.
func (e *env) reload(gw *child, n int) error {
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		return err
	}
	text := string(b)
	if i := strings.Index(text, "\n# soak reload "); i >= 0 {
		text = text[:i+1]
	}
	text += fmt.Sprintf("# soak reload %d\n", n)
	if err := os.WriteFile(e.cfgPath, []byte(text), 0o600); err != nil {
		return err
	}
	step("reload %d", n)
	return gw.cmd.Process.Signal(syscall.SIGHUP)
}

// sampleSoak reads the gateway's RSS, open file descriptors and
// goroutines, and takes the workers' latencies since the last sample.
func sampleSoak(pid int, admin string, recs []*recorder, since time.Duration) (soakSample, error) {
	var s soakSample
	var all []time.Duration
	for _, r := range recs {
		lat, bad := r.take()
		all = append(all, lat...)
		s.bad += bad
	}
	s.rps = float64(len(all)) / since.Seconds()
	if len(all) > 0 {
		slices.Sort(all)
		s.p99 = all[len(all)*99/100]
	}
	var err error
	if s.rssKiB, _, err = procMemory(pid); err != nil {
		return s, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	g, err := metricValue(admin, "go_goroutines")
	s.goroutines = int(g)
	return s, err
}

// metricValue reads one sample (name with its labels, exactly as exposed)
// from the admin listener's /metrics.
func metricValue(admin, name string) (float64, error) {
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("bench: /metrics has no %s", name)
}

// soakReport is the soak's markdown table.
func soakReport(samples []soakSample, capacity, rate float64, reloads, ok int) string {
	var b strings.Builder
	sent := 0.0
	for _, s := range samples {
		sent += s.rps
	}
	fmt.Fprintf(&b, "## Soak\n\nCapacity with one token %.0f req/s; soaking at %.0f req/s asked, %.0f req/s sent on average (%d%% same token, %d%% distinct ES256 tokens from a pool of %d, %d%% session cookie, 1%% garbage); %d reloads (%d counted ok).\n\n",
		capacity, rate, sent/float64(max(1, len(samples))), soakSame, soakDistinct, soakPool, soakSession, reloads, ok)
	b.WriteString(soakHeader)
	for _, s := range samples {
		b.WriteString(s.row())
	}
	return b.String()
}

// soakVerdict fails the soak if a request was answered wrongly, or if RSS,
// goroutines, open file descriptors or p99 grew from the first half of the
// samples after the first (the warm-up) to the second half: by more than
// 20% plus 16 MiB for RSS, 10% plus 20 for goroutines and descriptors, and
// twice plus 5ms for the median p99.
func soakVerdict(samples []soakSample) error {
	var errs []error
	bad := 0
	for _, s := range samples {
		bad += s.bad
	}
	if bad > 0 {
		errs = append(errs, fmt.Errorf("%d requests answered wrongly", bad))
	}
	if len(samples) < 5 {
		return errors.Join(append(errs, fmt.Errorf("%d samples; need 5 to judge growth", len(samples)))...)
	}
	rest := samples[1:]
	first, second := rest[:len(rest)/2], rest[len(rest)/2:]
	most := func(ss []soakSample, f func(soakSample) int) int {
		m := 0
		for _, s := range ss {
			m = max(m, f(s))
		}
		return m
	}
	medianP99 := func(ss []soakSample) time.Duration {
		p := make([]time.Duration, len(ss))
		for i, s := range ss {
			p[i] = s.p99
		}
		slices.Sort(p)
		return p[len(p)/2]
	}
	check := func(what string, a, b, limit int, unit string) {
		if b > limit {
			errs = append(errs, fmt.Errorf("%s grew from at most %d%s to %d%s (limit %d%s)", what, a, unit, b, unit, limit, unit))
		}
	}
	rss := func(s soakSample) int { return s.rssKiB }
	a, b := most(first, rss), most(second, rss)
	check("RSS", a, b, a*6/5+16<<10, " KiB")
	gor := func(s soakSample) int { return s.goroutines }
	a, b = most(first, gor), most(second, gor)
	check("goroutines", a, b, a*11/10+20, "")
	fds := func(s soakSample) int { return s.fds }
	a, b = most(first, fds), most(second, fds)
	check("open file descriptors", a, b, a*11/10+20, "")
	if p1, p2 := medianP99(first), medianP99(second); p2 > 2*p1+5*time.Millisecond {
		errs = append(errs, fmt.Errorf("p99 grew from %v to %v", p1, p2))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: soak failed: %w", err)
	}
	step("soak passed: nothing grew")
	return nil
}
