package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results collects the measured runs of every scenario, in run order.
type results struct {
	runs map[string][]result
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

// report renders the machine, the table and the per-round ratios as
// markdown.
func report(e *env, rs *results, scens []scenario, nRS, nES int) string {
	var b strings.Builder
	o := e.o
	pin := "yes: upstream and proxy under test on CPU 0, wrk (and the JWKS server) on CPU 1"
	if e.taskset == "" {
		pin = "no (taskset missing, -pin=false or one CPU): every process unpinned"
	}
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s, nproc %d, Linux %s\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(&b, "- Go %s, %s\n", strings.TrimPrefix(runtime.Version(), "go"), wrkVersion(e.wrk))
	fmt.Fprintf(&b, "- pinned: %s\n", pin)
	fmt.Fprintf(&b, "- command: `go run ./bench %s`\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "- each scenario %d× %v interleaved (after a %v warm-up), %d connections, %d wrk thread(s); %d RS256 and %d ES256 distinct tokens; jwks_refetch_interval %v\n\n",
		o.runs, o.duration, o.warmup, o.conns, o.threads, nRS, nES, o.refetch)

	base := median(rs.pick("baseline", rps))
	same := median(rs.pick("same-token", rps))
	b.WriteString("| scenario | req/s (median) | p50 | p99 | × baseline | target | notes |\n")
	b.WriteString("|---|--:|--:|--:|--:|---|---|\n")
	for _, s := range scens {
		runs := rs.runs[s.name]
		if len(runs) == 0 {
			continue
		}
		m := median(rs.pick(s.name, rps))
		ratio, target, notes := "1.00", "", []string{}
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", m/base)
		}
		if s.floor > 0 && !s.flood {
			target = verdict(m/base, s.floor, "")
		}
		if s.flood {
			v := median(rs.pick(s.name, result.validRPS))
			fetches := rs.pick(s.name, func(r result) float64 { return float64(r.fetches) })
			limit := int(o.duration/o.refetch) + 1
			notes = append(notes, fmt.Sprintf("valid 200s %.0f/s = %.2f× baseline", v, v/base))
			if same > 0 {
				notes = append(notes, fmt.Sprintf("%.2f× same-token", v/same))
				target = verdict(v/same, s.floor, " of same-token (valid)")
			}
			notes = append(notes, fmt.Sprintf("JWKS fetches per run %s (at most %d allowed by the interval)", joinInts(fetches), limit))
		}
		var non2xx, errs, wraps int
		for _, r := range runs {
			if !s.flood {
				non2xx += r.Non2xx
			}
			errs += r.Errors
			if !s.flood { // the flood cycles its invalid tokens on purpose
				wraps += r.Wraps
			}
		}
		if non2xx > 0 {
			notes = append(notes, fmt.Sprintf("**%d non-2xx responses**", non2xx))
		}
		if errs > 0 {
			notes = append(notes, fmt.Sprintf("%d socket errors", errs))
		}
		if wraps > 0 {
			notes = append(notes, fmt.Sprintf("**token list wrapped %d× (raise -tokens)**", wraps))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s |\n", s.name, m,
			fmtDur(median(rs.pick(s.name, p50))), fmtDur(median(rs.pick(s.name, p99))), ratio, target, strings.Join(notes, "; "))
	}
	b.WriteString("\nPer round (req/s, and the ratio to the same round's baseline):\n\n")
	b.WriteString("| scenario | req/s per round | × baseline per round |\n|---|---|---|\n")
	baseRuns := rs.pick("baseline", rps)
	for _, s := range scens {
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
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.name, joinInts(v), strings.Join(ratios, ", "))
	}
	return b.String()
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
