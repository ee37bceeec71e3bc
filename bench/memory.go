package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// memWorkers is how many requests the memory scenario keeps in flight,
	// each goroutine signing its next token while the others wait for
	// answers.
	memWorkers = 32
	// memMaxFailed ends the memory scenario once this many requests got no
	// answer at all, rather than waiting out a timeout per token.
	memMaxFailed = 100
	// memTarget is the bound on portcullis' resident memory after
	// one million distinct tokens, in KiB.
	memTarget = 64 << 10
)

// memoryRun is what the memory scenario measured.
type memoryRun struct {
	sent     int           // distinct tokens sent
	statuses map[int]int   // answers by status
	failed   int           // requests that got no answer
	elapsed  time.Duration // sending time
	rss, hwm int           // VmRSS and VmHWM of portcullis afterwards, KiB
}

// rate is the tokens sent per second.
func (m memoryRun) rate() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.sent) / m.elapsed.Seconds()
}

// measureMemory starts a fresh portcullis, unpinned (this measures memory,
// not speed), sends it n distinct valid ES256 tokens, one request each over
// keep-alive connections from memWorkers goroutines that sign them on the
// fly on every CPU, and then reads its VmRSS and VmHWM.
func (e *env) measureMemory(ctx context.Context, k *keys, n int) (memoryRun, error) {
	step("memory: %d distinct ES256 tokens to a fresh portcullis (unpinned), %d in flight", n, memWorkers)
	ch, err := e.startGateway(ctx, "memory", -1)
	if ch != nil {
		defer ch.stop()
	}
	if err != nil {
		return memoryRun{}, err
	}
	url := "http://" + e.gwAddr + "/"
	if err := sanity(url, "Authorization: Bearer "+e.same, ch); err != nil {
		return memoryRun{}, err
	}
	pids := []int{ch.cmd.Process.Pid, e.up.cmd.Process.Pid, os.Getpid()}
	cpu0, err := cpuTimes(e.clkTck, pids)
	if err != nil {
		return memoryRun{}, err
	}
	m, err := sendDistinct(ctx, k, url, n, ch)
	if err != nil {
		return memoryRun{}, err
	}
	cpu1, err := cpuTimes(e.clkTck, pids)
	if err != nil {
		return memoryRun{}, err
	}
	step("  CPU per token: portcullis %.0f µs, upstream %.0f µs, this harness (signing and sending) %.0f µs",
		perReq(cpu1[0]-cpu0[0], m.sent), perReq(cpu1[1]-cpu0[1], m.sent), perReq(cpu1[2]-cpu0[2], m.sent))
	if m.rss, m.hwm, err = procMemory(ch.cmd.Process.Pid); err != nil {
		return memoryRun{}, fmt.Errorf("bench: memory of %s: %w", ch.name, err)
	}
	step("  %d tokens in %v (%.0f tokens/s), answers %v, no answer %d; VmRSS %.1f MiB, VmHWM %.1f MiB",
		m.sent, m.elapsed.Round(time.Second), m.rate(), m.statuses, m.failed, mib(m.rss), mib(m.hwm))
	return m, nil
}

// sendDistinct sends n distinct ES256 tokens to url, one request each, and
// counts the answers. It prints progress every five seconds and stops
// early when ch exits, ctx ends or memMaxFailed requests get no answer.
func sendDistinct(ctx context.Context, k *keys, url string, n int, ch *child) (memoryRun, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-ch.done:
			cancel(fmt.Errorf("bench: %s exited (%v) during the memory scenario:\n%s", ch.name, ch.err, ch.tail()))
		case <-ctx.Done():
		}
	}()
	tr := &http.Transport{MaxIdleConns: memWorkers, MaxIdleConnsPerHost: memWorkers, IdleConnTimeout: 90 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var (
		next, done, failed atomic.Int64
		mu                 sync.Mutex
		statuses           = map[int]int{}
		wg                 sync.WaitGroup
	)
	now := time.Now()
	stopProgress := progress(&done, n, now)
	for range memWorkers {
		wg.Go(func() {
			mine := map[int]int{}
			defer func() {
				mu.Lock()
				for code, c := range mine {
					statuses[code] += c
				}
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				tok, err := k.mint(k.es, "mem-user-"+strconv.FormatInt(i, 10), now)
				if err != nil {
					cancel(fmt.Errorf("bench: memory: sign a token: %w", err))
					return
				}
				code, err := get(ctx, client, url, tok)
				switch {
				case err != nil && ctx.Err() != nil:
					return
				case err != nil:
					if failed.Add(1) >= memMaxFailed {
						cancel(fmt.Errorf("bench: memory: %d requests got no answer, the last: %w", memMaxFailed, err))
						return
					}
				default:
					mine[code]++
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(now)
	stopProgress()
	if err := context.Cause(ctx); err != nil {
		return memoryRun{}, err
	}
	return memoryRun{sent: int(done.Load()), statuses: statuses, failed: int(failed.Load()), elapsed: elapsed}, nil
}

// get sends one GET with a bearer token and returns the answer's status.
func get(ctx context.Context, client *http.Client, url, tok string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, err
}

// progress prints, every five seconds until the returned function is
// called, how many of n tokens are done and the rate since the last line.
func progress(done *atomic.Int64, n int, start time.Time) (stop func()) {
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-quit:
				return
			case at := <-t.C:
				d := done.Load()
				rate := float64(d-last) / at.Sub(lastAt).Seconds()
				eta := "?"
				if rate > 0 {
					eta = time.Duration(float64(int64(n)-d) / rate * float64(time.Second)).Round(time.Second).String()
				}
				step("  memory: %d/%d tokens, %.0f tokens/s, about %s to go", d, n, rate, eta)
				last, lastAt = d, at
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// mib converts KiB to MiB.
func mib(kib int) float64 { return float64(kib) / 1024 }
