package main

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results collects the measured runs of every scenario, in run order, and
// the memory scenario's outcome.
type results struct {
	runs   map[string][]result
	memory *memoryRun
}

func (rs *results) add(name string, r result) { rs.runs[name] = append(rs.runs[name], r) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pick returns f of every run of a scenario.
func (rs *results) pick(name string, f func(result) float64) []float64 {
	var out []float64
	for _, r := range rs.runs[name] {
		out = append(out, f(r))
	}
	return out
}

func rps(r result) float64 { return r.RPS }
func p50(r result) float64 { return float64(r.P50) }
func p99(r result) float64 { return float64(r.P99) }

func fmtDur(ns float64) string {
	d := time.Duration(ns)
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", ns/1e3)
	}
	return fmt.Sprintf("%.2f ms", ns/1e6)
}

// report renders the machine, the table and the per-round figures as
// markdown.
func report(e *env, rs *results, scens []scenario) string {
	var b strings.Builder
	header(&b, e, scens)
	b.WriteString("| scenario | req/s (median) | p50 | p99 | × baseline | proxy CPU/req | baseline CPU ÷ this | upstream CPU/req | target | notes |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, s := range scens {
		if s.memory {
			if rs.memory != nil {
				fmt.Fprintf(&b, "| %s |  |  |  |  |  |  |  | %s | %s |\n", s.name, memoryVerdict(*rs.memory), strings.Join(memoryNotes(*rs.memory), "; "))
			}
			continue
		}
		if len(rs.runs[s.name]) == 0 {
			continue
		}
		base := median(rs.pick(s.refName(), rps))
		baseCPU := median(rs.pick(s.refName(), result.cpuPerReq))
		m := median(rs.pick(s.name, rps))
		cpu := median(rs.pick(s.name, result.cpuPerReq))
		ratio, cpuRatio, target := "1.00", "", ""
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", m/base)
		}
		if cpu > 0 && baseCPU > 0 {
			cpuRatio = fmt.Sprintf("%.2f", baseCPU/cpu)
		}
		var notes []string
		switch {
		case s.vs != "":
			// Paired by round: the rounds interleave the scenarios, so a
			// round's ratio cancels what the machine did meanwhile.
			ratios, extra := pairedBy(rs.pick(s.name, rps), rs.pick(s.vs, rps), func(a, b float64) float64 { return a / b }),
				pairedBy(rs.pick(s.name, result.cpuPerReq), rs.pick(s.vs, result.cpuPerReq), func(a, b float64) float64 { return a - b })
			if len(ratios) > 0 {
				r := median(ratios)
				target = verdict(r, s.floor, " of "+s.vs+" (median of the rounds' ratios)")
				notes = append(notes, fmt.Sprintf("%.2f× %s's req/s, the median of the rounds' ratios; proxy CPU %+.0f µs/req against it, the median of the rounds' differences",
					r, s.vs, median(extra)))
			}
		case s.floor > 0 && !s.flood && base > 0:
			target = verdict(m/base, s.floor, "")
		}
		if s.flood {
			target, notes = floodNotes(e.o, rs, s)
		}
		notes = append(notes, runNotes(rs.runs[s.name])...)
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %.0f µs | %s | %.0f µs | %s | %s |\n", s.name, m,
			fmtDur(median(rs.pick(s.name, p50))), fmtDur(median(rs.pick(s.name, p99))), ratio,
			cpu, cpuRatio, median(rs.pick(s.name, result.upCPUPerReq)), target, strings.Join(notes, "; "))
	}
	b.WriteString("\nPer round (req/s, its ratio to the same round's baseline, and the proxy's CPU per request):\n\n")
	b.WriteString("| scenario | req/s per round | × baseline per round | proxy CPU/req per round (µs) |\n|---|---|---|---|\n")
	for _, s := range scens {
		baseRuns := rs.pick(s.refName(), rps)
		v := rs.pick(s.name, rps)
		if len(v) == 0 {
			continue
		}
		var ratios []string
		for i, x := range v {
			if i < len(baseRuns) && baseRuns[i] > 0 {
				ratios = append(ratios, fmt.Sprintf("%.2f", x/baseRuns[i]))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.name, joinInts(v), strings.Join(ratios, ", "), joinInts(rs.pick(s.name, result.cpuPerReq)))
	}
	return b.String()
}

// refName is the scenario whose medians are 1.00× for s: the baseline, or
// the gRPC baseline for the gRPC scenario.
func (s scenario) refName() string {
	if s.ref != "" || s.target == "grpc-baseline" {
		return "grpc-baseline"
	}
	return "baseline"
}

// header writes the list that describes the machine and the run.
func header(b *strings.Builder, e *env, scens []scenario) {
	o := e.o
	pin := "yes: upstream and proxy under test on CPU 0, wrk (and the JWKS server) on CPU 1"
	if e.taskset == "" {
		pin = "no (taskset missing, -pin=false or one CPU): every process unpinned"
	}
	fmt.Fprintf(b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "- machine: %s, nproc %d, Linux %s\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(b, "- Go %s, %s\n", strings.TrimPrefix(runtime.Version(), "go"), wrkVersion(e.wrk))
	fmt.Fprintf(b, "- pinned: %s\n", pin)
	fmt.Fprintf(b, "- command: `go run ./bench %s`\n", strings.Join(os.Args[1:], " "))
	warm := "no warm-up"
	if o.warmup > 0 {
		warm = fmt.Sprintf("after a %v warm-up", o.warmup)
	}
	fmt.Fprintf(b, "- each scenario %d× %v interleaved (%s), %d connections, %d wrk thread(s)%s; jwks_refetch_interval %v\n",
		o.runs, o.duration, warm, o.conns, o.threads, tokenNote(e.made), o.refetch)
	fmt.Fprintf(b, "- CPU/req: user+system time of the proxy and of the upstream (`/proc/PID/stat`, %d ticks/s) during each measured run over the requests of every wrk in it; \"baseline CPU ÷ this\" above 1 means cheaper than the baseline\n", e.clkTck)
	if has(scens, "invalid-flood") {
		fmt.Fprintf(b, "- invalid-flood: a legit wrk (%d connections, the valid same-token) and an attacker's wrk (%d connections, cycling through %d invalid tokens) at once, both on CPU 1; req/s, p50 and p99 are the legit wrk's\n",
			o.conns, o.attackConns, e.made.invalid)
	}
	if has(scens, "grpc-baseline") {
		fmt.Fprintf(b, "- grpc: unary calls to %s over cleartext HTTP/2 by %s (%d connections × 4 streams, on CPU 1), one small message each way, against an h2c upstream answering as a gRPC server; grpc-unary (one valid RS256 token) is compared with grpc-baseline, a plain `httputil.ReverseProxy` with an HTTP/2 transport sent the same token; p50 and p99 from h2load's per-request log; gRPC refusals (HTTP 200 to h2load) are read from `portcullis_grpc_responses_total` and count as non-2xx\n",
			grpcPath, h2loadVersion(e.h2load), max(1, o.conns/4))
	}
	if has(scens, "memory") {
		fmt.Fprintf(b, "- memory: a fresh portcullis, unpinned (this measures memory, not speed), sent %d distinct ES256 tokens signed by the harness, %d requests in flight\n",
			o.memTokens, memWorkers)
	}
	b.WriteString("\n")
}

// tokenNote names the distinct tokens made, if any, for the header.
func tokenNote(m made) string {
	if m.rs == 0 && m.es == 0 {
		return ""
	}
	return "; " + m.distinct()
}

// distinct names the distinct tokens made, e.g. "100 RS256 and 80 ES256
// distinct tokens".
func (m made) distinct() string {
	var parts []string
	if m.rs > 0 {
		parts = append(parts, fmt.Sprintf("%d RS256", m.rs))
	}
	if m.es > 0 {
		parts = append(parts, fmt.Sprintf("%d ES256", m.es))
	}
	return strings.Join(parts, " and ") + " distinct tokens"
}

// floodNotes returns the flood's target verdict (the legit wrk's req/s
// against same-token's) and its notes: the attacker's rate and answers and
// the JWKS fetches against what the refetch interval allows.
func floodNotes(o options, rs *results, s scenario) (target string, notes []string) {
	legit := median(rs.pick(s.name, rps))
	if same := median(rs.pick("same-token", rps)); same > 0 {
		notes = append(notes, fmt.Sprintf("legit %.0f req/s = %.2f× same-token", legit, legit/same))
		target = verdict(legit/same, s.floor, " of same-token (legit req/s)")
	} else {
		target = fmt.Sprintf("≥ %.2f× of same-token (legit req/s): run same-token too", s.floor)
	}
	atk := rs.pick(s.name, func(r result) float64 { return r.attack.RPS })
	var all wrkRun
	for _, r := range rs.runs[s.name] {
		all.Requests += r.attack.Requests
		all.Non2xx += r.attack.Non2xx
		for code, n := range r.attack.Statuses {
			if all.Statuses == nil {
				all.Statuses = map[int]int{}
			}
			all.Statuses[code] += n
		}
	}
	mix := statusMix(&all)
	if !onlyStatus(&all, http.StatusUnauthorized) {
		mix = "**" + mix + "**"
	}
	notes = append(notes, fmt.Sprintf("attacker %.0f req/s, answers %s", median(atk), mix))
	fetches := rs.pick(s.name, func(r result) float64 { return float64(r.fetches) })
	limit := int(o.duration/o.refetch) + 1
	over := ""
	if slices.Max(fetches) > float64(limit) {
		over = " **over the limit**"
	}
	notes = append(notes, fmt.Sprintf("JWKS fetches per run %s (at most %d allowed by the interval)%s", joinInts(fetches), limit, over))
	return target, notes
}

// runNotes flags what went wrong in a scenario's runs: non-2xx answers to
// requests that should all succeed, socket errors, wrapped token lists.
func runNotes(runs []result) []string {
	var non2xx, errs, wraps int
	for _, r := range runs {
		non2xx += r.Non2xx
		errs += r.Errors
		wraps += r.Wraps
		if r.attack != nil {
			errs += r.attack.Errors
		}
	}
	var notes []string
	if non2xx > 0 {
		notes = append(notes, fmt.Sprintf("**%d non-2xx responses**", non2xx))
	}
	if errs > 0 {
		notes = append(notes, fmt.Sprintf("%d socket errors", errs))
	}
	if wraps > 0 {
		notes = append(notes, fmt.Sprintf("**token list wrapped %d× (raise -tokens)**", wraps))
	}
	return notes
}

// statusMix renders a wrk run's answers by status, e.g. "401 100%", or,
// when the run did not count them by status, its non-2xx count.
func statusMix(w *wrkRun) string {
	total := 0
	for _, n := range w.Statuses {
		total += n
	}
	if total == 0 {
		return fmt.Sprintf("%d non-2xx of %d", w.Non2xx, w.Requests)
	}
	codes := slices.Sorted(maps.Keys(w.Statuses))
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%d %s", code, percent(w.Statuses[code], total))
	}
	return strings.Join(parts, ", ")
}

// onlyStatus reports whether every counted answer of w had status code.
func onlyStatus(w *wrkRun, code int) bool {
	return len(w.Statuses) == 1 && w.Statuses[code] > 0
}

// percent renders n of total with as many decimals as a small share needs.
func percent(n, total int) string {
	p := 100 * float64(n) / float64(total)
	switch {
	case n == total:
		return "100%"
	case p >= 1:
		return fmt.Sprintf("%.1f%%", p)
	default:
		return fmt.Sprintf("%.3f%% (%d)", p, n)
	}
}

// memoryVerdict renders the memory target and whether VmRSS meets it.
func memoryVerdict(m memoryRun) string {
	mark := "met"
	if m.rss >= memTarget {
		mark = "**not met**"
	}
	if m.sent < 1000000 {
		mark += fmt.Sprintf(" (after %d tokens only)", m.sent)
	}
	return "RSS < 64 MiB after 1M distinct tokens: " + mark
}

// memoryNotes describes the memory scenario's outcome.
func memoryNotes(m memoryRun) []string {
	notes := []string{fmt.Sprintf("VmRSS %.1f MiB, VmHWM %.1f MiB after %d distinct ES256 tokens", mib(m.rss), mib(m.hwm), m.sent)}
	if ok := m.statuses[http.StatusOK]; ok == m.sent {
		notes = append(notes, "all answered 200")
	} else {
		var others []string
		for _, code := range slices.Sorted(maps.Keys(m.statuses)) {
			if code != http.StatusOK {
				others = append(others, fmt.Sprintf("%d× %d", m.statuses[code], code))
			}
		}
		if m.failed > 0 {
			others = append(others, fmt.Sprintf("%d× no answer", m.failed))
		}
		notes = append(notes, fmt.Sprintf("**%d of %d answered 200; %s**", ok, m.sent, strings.Join(others, ", ")))
	}
	notes = append(notes, fmt.Sprintf("%.0f tokens/s", m.rate()), "portcullis unpinned")
	return notes
}

// verdict renders a target and whether the ratio meets it.
func verdict(ratio, floor float64, what string) string {
	mark := "met"
	if ratio < floor {
		mark = "**not met**"
	}
	return fmt.Sprintf("≥ %.2f×%s: %s", floor, what, mark)
}

func joinInts(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, ", ")
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	out, err := exec.Command("uname", "-r").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// Markers around the generated part of the README.
const (
	tableBegin = "<!-- bench-table:begin (go run ./bench -out bench/README.md rewrites this part) -->"
	tableEnd   = "<!-- bench-table:end -->"
)

// rewriteReadme replaces the text between the table markers of path.
func rewriteReadme(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bench: -out: %w", err)
	}
	i := bytes.Index(b, []byte(tableBegin))
	j := bytes.Index(b, []byte(tableEnd))
	if i < 0 || j < i {
		return fmt.Errorf("bench: -out: %s lacks the lines %q and %q", path, tableBegin, tableEnd)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(tableBegin)])
	out.WriteString("\n\n")
	out.WriteString(table)
	out.WriteString("\n")
	out.Write(b[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// pairedBy applies f to the values of the same round in a and b.
func pairedBy(a, b []float64, f func(a, b float64) float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			out = append(out, f(a[i], b[i]))
		}
	}
	return out
}
