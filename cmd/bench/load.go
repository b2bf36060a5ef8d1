package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// newHTTPClient keeps one idle keep-alive connection per worker and never
// follows redirects: the flows read the Location themselves.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// op is one measured unit of work: a request or a whole flow. worker is
// the index of the goroutine running it, for per-worker state such as a
// refresh token chain.
type op func(ctx context.Context, worker int) error

// result is what one scenario run measured.
type result struct {
	ops      int
	errors   int
	firstErr error
	elapsed  time.Duration
	p50, p99 time.Duration
	// cpu is the CPU time the server used while measuring.
	cpu time.Duration
}

// cpuPerOp is the server's CPU time per operation: unlike the rate, it
// hardly depends on what else runs on the machine.
func (r result) cpuPerOp() time.Duration {
	if r.ops == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ops)
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// run calls o from c goroutines for d, after a short warm-up that is not
// counted, and collects every latency. Operations in flight at the end
// finish uncounted rather than being cancelled, so the server sees no
// aborted requests. ctx only interrupts the bench.
func run(ctx context.Context, c int, d time.Duration, o op, srv *process) result {
	warm := min(d/5, time.Second)
	var (
		measuring, stopped atomic.Bool
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		all                []time.Duration
		res                result
	)
	for w := range c {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var errs int
			var first error
			for !stopped.Load() && ctx.Err() == nil {
				t0 := time.Now()
				err := o(ctx, w)
				if !measuring.Load() || stopped.Load() || ctx.Err() != nil {
					continue
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		})
	}
	time.Sleep(warm)
	measuring.Store(true)
	start, cpu := time.Now(), srv.cpuTime()
	time.Sleep(d)
	stopped.Store(true)
	res.elapsed, res.cpu = time.Since(start), srv.cpuTime()-cpu
	wg.Wait()
	res.ops = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		res.p50 = all[len(all)*50/100]
		res.p99 = all[len(all)*99/100]
	}
	return res
}

// expect turns an unexpected status into an error that names the request.
func expect(resp *http.Response, status int) error {
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: status %d, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status)
	}
	return nil
}
