package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
)

// answer is what a webhook said about one body.
type answer struct {
	allowed bool
	message string
	proto   int
}

// post sends one body and reads the verdict; any answer other than an
// AdmissionReview with the body's uid is an error.
func post(ctx context.Context, c *http.Client, url string, b *body, timeout time.Duration) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b.data))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
	}
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &r); err != nil || r.Response == nil {
		return answer{}, fmt.Errorf("no AdmissionReview response (%v): %.200s", err, data)
	}
	if string(r.Response.UID) != b.uid {
		return answer{}, fmt.Errorf("answer uid %q, want %q", r.Response.UID, b.uid)
	}
	a := answer{allowed: r.Response.Allowed, proto: resp.ProtoMajor}
	if r.Response.Result != nil {
		a.message = r.Response.Result.Message
	}
	return a, nil
}

// LoadRow is one run of one tool at one rate.
type LoadRow struct {
	Tool       string
	Rate       int
	GOMAXPROCS int
	Run        int
	Duration   time.Duration
	Scheduled  int
	// Errors are requests without a valid answer in time, or never sent
	// because Inflight requests were already waiting.
	Errors   int
	FirstErr string
	// Wrong counts answers whose verdict differs from the tool's own verdict
	// on the same object in the checked pass before the load.
	Wrong          int
	P50, P99, Max  time.Duration
	Denied         int // answered with allowed=false
	HTTP2          bool
	MaxInflight    int64
	AchievedPerSec float64
	// ServerCPU is the CPU time the webhook process used during the
	// measured run; PeakRSS its VmHWM afterwards.
	ServerCPU time.Duration
	PeakRSS   int64
	// OtherCPU is the CPU time the other tool's server used meanwhile
	// (Kyverno, niced, during strata's runs; strata is stopped during
	// Kyverno's).
	OtherCPU time.Duration
}

// runLoad sends rate requests per second for d, open loop: request i is
// due at start+i/rate whatever became of the earlier ones, and its latency
// counts from then, so a slow server cannot slow the sender down and hide
// its queueing. A request due while inflight are unanswered is not sent and
// counts as an error with infinite latency; want[i] is body i's expected
// verdict.
func runLoad(ctx context.Context, c *http.Client, url string, pool []*body, want []bool, rate int, d time.Duration, inflight int, timeout time.Duration) LoadRow {
	n := int(int64(rate) * int64(d) / int64(time.Second))
	lat := make([]time.Duration, n)
	var errs, wrong, denied, h2 atomic.Int64
	var cur, maxIn atomic.Int64
	var errMu sync.Mutex
	row := LoadRow{Rate: rate, Duration: d, Scheduled: n}
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	fail := func(i int, err error) {
		lat[i] = time.Duration(math.MaxInt64)
		errs.Add(1)
		errMu.Lock()
		if row.FirstErr == "" {
			row.FirstErr = err.Error()
		}
		errMu.Unlock()
	}
	// The sender owns an OS thread and sleeps with nanosleep: the runtime's
	// timers can wake a millisecond late, which would count as latency.
	runtime.LockOSThread()
	start := time.Now().Add(20 * time.Millisecond)
	sent := 0
	for i := range n {
		at := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
		sleepUntil(at)
		if ctx.Err() != nil {
			break
		}
		sent++
		select {
		case sem <- struct{}{}:
		default:
			fail(i, fmt.Errorf("not sent: %d requests in flight", inflight))
			continue
		}
		in := cur.Add(1)
		for m := maxIn.Load(); in > m && !maxIn.CompareAndSwap(m, in); m = maxIn.Load() {
		}
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			defer func() { cur.Add(-1); <-sem }()
			b := pool[i%len(pool)]
			a, err := post(ctx, c, url, b, timeout)
			if err != nil {
				fail(i, err)
				return
			}
			lat[i] = time.Since(at)
			if !a.allowed {
				denied.Add(1)
			}
			if a.proto == 2 {
				h2.Add(1)
			}
			if a.allowed != want[i%len(pool)] {
				wrong.Add(1)
			}
		}(i, at)
	}
	runtime.UnlockOSThread()
	wg.Wait()
	elapsed := time.Since(start)
	lat = lat[:sent]
	slices.Sort(lat)
	row.Errors, row.Wrong, row.Denied = int(errs.Load()), int(wrong.Load()), int(denied.Load())
	row.HTTP2 = h2.Load() > 0
	row.MaxInflight = maxIn.Load()
	row.P50, row.P99, row.Max = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	row.AchievedPerSec = float64(sent-row.Errors) / elapsed.Seconds()
	return row
}

// sleepUntil sleeps on the calling (locked) thread with nanosleep(2).
func sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

// pct is the nearest-rank percentile p (0..100) of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// checkPool sends every body once, sequentially, and returns each body's
// verdict and message; any transport or protocol error fails the check.
func checkPool(ctx context.Context, c *http.Client, url string, pool []*body) ([]answer, error) {
	out := make([]answer, len(pool))
	for i, b := range pool {
		a, err := post(ctx, c, url, b, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("body %d (uid %s): %w", i, b.uid, err)
		}
		out[i] = a
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, nil
}

func runtimeRaw(b []byte) kruntime.RawExtension { return kruntime.RawExtension{Raw: b} }
