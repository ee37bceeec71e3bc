package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// grpcPath is the method the gRPC scenarios call.
const grpcPath = "/bench.Echo/Unary"

// grpcFrame is one length-prefixed gRPC message (uncompressed).
func grpcFrame(msg []byte) []byte {
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// grpcReply is what the gRPC upstream answers: a message as small as the
// HTTP upstream's body.
var grpcReply = grpcFrame(upstreamBody)

// grpcUpstream answers every call as a gRPC server does: the reply message,
// then grpc-status 0 in the trailers. It speaks cleartext HTTP/2 (and
// HTTP/1.1, for the harness's readiness probe).
func grpcUpstream(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/grpc")
	_, _ = w.Write(grpcReply)
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
}

// grpcBaselineProxy is the gRPC reference point: a plain
// httputil.ReverseProxy whose transport speaks cleartext HTTP/2 to the
// upstream, as portcullis' h2c:// does.
func grpcBaselineProxy(upstream string) (*httputil.ReverseProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("bench: grpc-baseline: bad -upstream %q", upstream)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		Protocols:           new(http.Protocols),
	}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: tr,
	}, nil
}

// h2cProtocols is HTTP/1.1 and cleartext HTTP/2 with prior knowledge.
func h2cProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// grpcSanity makes one call with header over cleartext HTTP/2 and wants
// grpc-status 0, so a broken set-up (a gRPC refusal is an HTTP 200) fails
// loudly instead of measuring refusals.
func grpcSanity(u, header string, ch *child) error {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(grpcFrame([]byte("ping"))))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	if name, value, ok := strings.Cut(header, ": "); ok {
		req.Header.Set(name, value)
	}
	res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", ch.name, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	st := res.Header.Get("Grpc-Status")
	if st == "" {
		st = res.Trailer.Get("Grpc-Status")
	}
	if res.StatusCode != http.StatusOK || st != "0" {
		return fmt.Errorf("bench: %s answered %s, grpc-status %q (%s) to a valid call\n%s", ch.name, res.Status, st,
			res.Header.Get("Grpc-Message"), ch.tail())
	}
	return nil
}

// runH2load runs h2load against u for d with conns connections of streams
// streams each, pinned to cpu when taskset is set: unary gRPC calls with
// header, one small message each. Latencies come from its per-request log.
func runH2load(ctx context.Context, h2load, taskset, dir string, cpu int, u, header string, d time.Duration, conns, streams int) (wrkRun, error) {
	body := dir + "/grpc-request.bin"
	if err := os.WriteFile(body, grpcFrame([]byte("bench")), 0o600); err != nil {
		return wrkRun{}, err
	}
	logFile := dir + "/h2load.log"
	_ = os.Remove(logFile)
	args := []string{"-D", strconv.Itoa(int(d.Seconds())), "-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", "1",
		"-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", logFile}
	if name, value, ok := strings.Cut(header, ": "); ok {
		args = append(args, "-H", strings.ToLower(name)+": "+value)
	}
	args = append(args, u)
	prog := h2load
	if taskset != "" {
		args = append([]string{"-c", strconv.Itoa(cpu), h2load}, args...)
		prog = taskset
	}
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return wrkRun{}, fmt.Errorf("bench: h2load: %w\n%s", err, out)
	}
	w, err := parseH2load(string(out))
	if err != nil {
		return wrkRun{}, err
	}
	if w.P50, w.P99, err = h2loadLatencies(logFile); err != nil {
		return wrkRun{}, err
	}
	return w, nil
}

// parseH2load reads h2load's summary: the rate, the requests that
// completed and those that did not succeed or did not answer 2xx.
func parseH2load(out string) (wrkRun, error) {
	var w wrkRun
	var found bool
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "finished in "):
			// finished in 5.00s, 23456.60 req/s, 1.23MB/s
			f := strings.Fields(strings.ReplaceAll(line, ",", ""))
			if len(f) >= 5 {
				secs, err1 := time.ParseDuration(f[2])
				rps, err2 := strconv.ParseFloat(f[3], 64)
				if err1 == nil && err2 == nil {
					w.Seconds, w.RPS, found = secs.Seconds(), rps, true
				}
			}
		case strings.HasPrefix(line, "requests: "):
			// requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
			for part := range strings.SplitSeq(strings.TrimPrefix(line, "requests: "), ",") {
				f := strings.Fields(part)
				if len(f) != 2 {
					continue
				}
				n, _ := strconv.Atoi(f[0])
				switch f[1] {
				case "succeeded":
					w.Requests = n
				case "failed", "errored", "timeout":
					w.Errors += n
				}
			}
		case strings.HasPrefix(line, "status codes: "):
			// status codes: N 2xx, N 3xx, N 4xx, N 5xx
			for part := range strings.SplitSeq(strings.TrimPrefix(line, "status codes: "), ",") {
				f := strings.Fields(part)
				if len(f) == 2 && f[1] != "2xx" {
					n, _ := strconv.Atoi(f[0])
					w.Non2xx += n
				}
			}
		}
	}
	if !found {
		return w, fmt.Errorf("bench: h2load printed no rate:\n%s", out)
	}
	return w, nil
}

// h2loadLatencies returns the median and the 99th percentile of the
// per-request times in h2load's log (third column, µs).
func h2loadLatencies(file string) (p50, p99 time.Duration, err error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var us []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 3 {
			continue
		}
		if v, err := strconv.Atoi(cols[2]); err == nil {
			us = append(us, v)
		}
	}
	if err := sc.Err(); err != nil || len(us) == 0 {
		return 0, 0, fmt.Errorf("bench: h2load log %s: %d requests, %v", file, len(us), err)
	}
	slices.Sort(us)
	at := func(q float64) time.Duration { return time.Duration(us[int(q*float64(len(us)-1))]) * time.Microsecond }
	return at(0.50), at(0.99), nil
}

// grpcRefusals sums portcullis_grpc_responses_total of every status but
// 0 and none: calls portcullis or the upstream did not answer OK, which
// h2load counts as 2xx. (none is a call its client gave up, as h2load does
// with the calls in flight when its time is up.)
func grpcRefusals(admin string) (int, error) {
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
		if !strings.HasPrefix(line, "portcullis_grpc_responses_total{") || strings.Contains(line, `grpc_status="0"`) ||
			strings.Contains(line, `grpc_status="none"`) {
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

// h2loadVersion is h2load's version line, such as "h2load nghttp2/1.52.0".
func h2loadVersion(h2load string) string {
	out, _ := exec.Command(h2load, "--version").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
