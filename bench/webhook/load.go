package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// outcome classifies one scheduled request.
type outcome uint8

const (
	outOK        outcome = iota // HTTP 200, the expected uid and verdict
	outVerdict                  // HTTP 200 but the wrong verdict (or uid, or an unreadable review)
	outStatus                   // HTTP status other than 200
	outTimeout                  // no answer within -timeout
	outTransport                // connection or TLS error
	outDropped                  // due while -inflight requests were in flight: never sent
	outCanceled                 // the run was interrupted before it was due
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "wrong verdict", "non-200", "timeout", "transport error", "dropped (in-flight limit)", "canceled"}

// sample is the fate of one scheduled request. Durations count from the
// scheduled send time.
type sample struct {
	lag   time.Duration // scheduled → handed to the HTTP client
	lat   time.Duration // scheduled → response body read
	body  int32         // index into the pool
	out   outcome
	proto uint8 // 1: HTTP/1.x, 2: HTTP/2
}

// loadResult is one run of the generator.
type loadResult struct {
	rate      int
	duration  time.Duration
	inflight  int
	samples   []sample
	start     time.Time // first scheduled send
	lastSched time.Time
	end       time.Time // last response (or the end of the schedule)
	// maxInflight is the highest number of requests in flight at once.
	maxInflight int64
	// firstErr holds the first message of each error outcome.
	firstErr [numOutcomes]string
	// genCPU is the CPU time of this process (generator and client) during the run.
	genCPU time.Duration
}

// newClient returns a client that trusts the webhook's CA and keeps its
// connections: HTTP/2 (one multiplexed connection, as the kube-apiserver
// uses) unless http1.
func newClient(caPEM []byte, inflight int, http1 bool) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the webhook's CA bundle has no certificate")
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	if !http1 {
		protos.SetHTTP2(true)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Protocols:           protos,
		MaxIdleConns:        inflight,
		MaxIdleConnsPerHost: inflight,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   !http1,
	}
	return &http.Client{Transport: tr}, nil
}

// reviewAnswer is the part of an AdmissionReview response the generator checks.
type reviewAnswer struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   *struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
		Status  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	} `json:"response"`
}

// post sends one body and checks the answer. It returns the outcome, the
// protocol major version, the denial message and, for errors, a description.
func post(ctx context.Context, c *http.Client, url string, b *body, timeout time.Duration) (outcome, uint8, string, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b.data))
	if err != nil {
		return outTransport, 0, "", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return outTimeout, 0, "", err.Error()
		}
		return outTransport, 0, "", err.Error()
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	proto := uint8(resp.ProtoMajor)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return outTimeout, proto, "", err.Error()
		}
		return outTransport, proto, "", err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return outStatus, proto, "", fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var a reviewAnswer
	if err := json.Unmarshal(data, &a); err != nil || a.Response == nil {
		return outVerdict, proto, "", fmt.Sprintf("unreadable AdmissionReview (%v): %.200s", err, data)
	}
	msg := ""
	if a.Response.Status != nil {
		msg = a.Response.Status.Message
	}
	c0 := b.bcase
	switch {
	case a.APIVersion != "admission.k8s.io/v1" || a.Kind != "AdmissionReview":
		return outVerdict, proto, msg, fmt.Sprintf("answer is %s %s, want admission.k8s.io/v1 AdmissionReview", a.APIVersion, a.Kind)
	case a.Response.UID != b.uid:
		return outVerdict, proto, msg, fmt.Sprintf("answer uid %q, want %q", a.Response.UID, b.uid)
	case a.Response.Allowed != c0.wantAllowed:
		return outVerdict, proto, msg, fmt.Sprintf("%s: allowed=%v, want %v (%s)", c0.name, a.Response.Allowed, c0.wantAllowed, msg)
	case !c0.wantAllowed && !strings.Contains(msg, c0.wantMsg):
		return outVerdict, proto, msg, fmt.Sprintf("%s: denied, but the message does not contain %q: %s", c0.name, c0.wantMsg, msg)
	}
	return outOK, proto, msg, ""
}

// verify sends every body of the pool once (four at a time) and fails on
// any answer that is not the expected verdict. It returns one denial
// message per case.
func verify(ctx context.Context, c *http.Client, url string, pool []*body, timeout time.Duration) (map[*benchCase]string, error) {
	msgs := map[*benchCase]string{}
	var mu sync.Mutex
	var errs []string
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(pool) || ctx.Err() != nil {
					return
				}
				b := pool[i]
				out, _, msg, why := post(ctx, c, url, b, timeout)
				mu.Lock()
				if out != outOK {
					errs = append(errs, fmt.Sprintf("body %d (%s): %s: %s", i, b.bcase.name, outcomeNames[out], why))
				} else if _, ok := msgs[b.bcase]; !ok {
					msgs[b.bcase] = msg
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		if len(errs) > 10 {
			errs = append(errs[:10], fmt.Sprintf("… and %d more", len(errs)-10))
		}
		return nil, fmt.Errorf("%d of %d bodies did not get the expected verdict:\n  %s", len(errs), len(pool), strings.Join(errs, "\n  "))
	}
	return msgs, nil
}

// sleepUntil sleeps with nanosleep(2) on the calling (locked) thread: the
// runtime's timers wake up to a millisecond late, which would count as
// webhook latency here since latency starts at the scheduled time.
func sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for {
		err := syscall.Nanosleep(&ts, &ts)
		if err != syscall.EINTR {
			return
		}
	}
}

// runLoad sends rate requests per second for d, open loop: request i is due
// at start + i/rate whatever happened to the earlier ones, and is dropped
// (an error) if inflight requests are still waiting for an answer then.
// Body i%len(pool)+offset is sent as request i.
func runLoad(ctx context.Context, c *http.Client, url string, pool []*body, rate int, d time.Duration, inflight int, timeout time.Duration, offset int) *loadResult {
	n := int(int64(rate) * int64(d) / int64(time.Second))
	r := &loadResult{rate: rate, duration: d, inflight: inflight, samples: make([]sample, n)}
	sem := make(chan struct{}, inflight)
	var cur atomic.Int64
	var maxIn atomic.Int64
	var errMu sync.Mutex
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		start := time.Now().Add(20 * time.Millisecond)
		r.start = start
		for i := range n {
			at := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
			r.lastSched = at
			sleepUntil(at)
			bi := (i + offset) % len(pool)
			if ctx.Err() != nil {
				for j := i; j < n; j++ {
					r.samples[j] = sample{out: outCanceled, body: int32((j + offset) % len(pool))}
				}
				return
			}
			select {
			case sem <- struct{}{}:
			default:
				r.samples[i] = sample{out: outDropped, body: int32(bi), lag: time.Since(at), lat: time.Duration(math.MaxInt64)}
				continue
			}
			in := cur.Add(1)
			for m := maxIn.Load(); in > m && !maxIn.CompareAndSwap(m, in); m = maxIn.Load() {
			}
			wg.Add(1)
			go func(i, bi int, at time.Time) {
				defer wg.Done()
				defer func() { cur.Add(-1); <-sem }()
				lag := time.Since(at)
				out, proto, _, why := post(ctx, c, url, pool[bi], timeout)
				r.samples[i] = sample{lag: lag, lat: time.Since(at), body: int32(bi), out: out, proto: proto}
				if out != outOK {
					errMu.Lock()
					if r.firstErr[out] == "" {
						r.firstErr[out] = why
					}
					errMu.Unlock()
				}
			}(i, bi, at)
		}
	}()
	<-schedDone
	wg.Wait()
	r.end = time.Now()
	r.maxInflight = maxIn.Load()
	r.genCPU = selfCPU() - cpu0
	return r
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// counts returns how many samples had each outcome.
func (r *loadResult) counts() [numOutcomes]int {
	var c [numOutcomes]int
	for _, s := range r.samples {
		c[s.out]++
	}
	return c
}

// errors is the number of scheduled requests that were not answered with
// the expected verdict in time.
func (r *loadResult) errors() int {
	c := r.counts()
	return len(r.samples) - c[outOK]
}

// answered is the number of requests with an HTTP answer.
func (r *loadResult) answered() int {
	c := r.counts()
	return c[outOK] + c[outVerdict] + c[outStatus]
}

// latencies returns the sorted latencies (from the scheduled time) of the
// samples that keep(s) accepts; dropped requests count as infinitely late.
func (r *loadResult) latencies(keep func(s sample) bool) []time.Duration {
	out := make([]time.Duration, 0, len(r.samples))
	for _, s := range r.samples {
		if s.out != outCanceled && (keep == nil || keep(s)) {
			out = append(out, s.lat)
		}
	}
	slices.Sort(out)
	return out
}

// lags returns the sorted scheduler lags of sent requests.
func (r *loadResult) lags() []time.Duration {
	out := make([]time.Duration, 0, len(r.samples))
	for _, s := range r.samples {
		if s.out != outCanceled && s.out != outDropped {
			out = append(out, s.lag)
		}
	}
	slices.Sort(out)
	return out
}

// services returns the sorted latencies from the actual send (scheduled
// time plus lag) of answered requests: the service time the client saw.
func (r *loadResult) services() []time.Duration {
	out := make([]time.Duration, 0, len(r.samples))
	for _, s := range r.samples {
		if s.out == outOK || s.out == outVerdict || s.out == outStatus {
			out = append(out, s.lat-s.lag)
		}
	}
	slices.Sort(out)
	return out
}

// protocols counts answers per HTTP major version.
func (r *loadResult) protocols() map[uint8]int {
	m := map[uint8]int{}
	for _, s := range r.samples {
		if s.proto != 0 {
			m[s.proto]++
		}
	}
	return m
}

// pct returns the nearest-rank percentile p (0..100) of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	i = max(0, min(i, len(ds)-1))
	return ds[i]
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum float64
	for _, d := range ds {
		if d == time.Duration(math.MaxInt64) {
			return time.Duration(math.MaxInt64)
		}
		sum += float64(d)
	}
	return time.Duration(sum / float64(len(ds)))
}

// fracWithin is the fraction of ds at or below limit.
func fracWithin(ds []time.Duration, limit time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(ds, limit+1)
	return float64(i) / float64(len(ds))
}

// windowP99s returns the p99 latency of each whole second of the schedule.
func (r *loadResult) windowP99s() []time.Duration {
	if r.rate <= 0 {
		return nil
	}
	var out []time.Duration
	for start := 0; start+r.rate <= len(r.samples); start += r.rate {
		w := make([]time.Duration, 0, r.rate)
		for _, s := range r.samples[start : start+r.rate] {
			if s.out != outCanceled {
				w = append(w, s.lat)
			}
		}
		slices.Sort(w)
		out = append(out, pct(w, 99))
	}
	return out
}
