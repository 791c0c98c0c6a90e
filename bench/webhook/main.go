// Command webhook measures the latency of `strata webhook` under a constant
// open-loop load of AdmissionReview requests over HTTPS on loopback.
//
//	go run ./bench/webhook [-rate 1000] [-duration 30s] [-markdown bench/RESULTS.md] [-profile DIR]
//
// It builds strata, brings up one local kwok cluster (the webhook watches its
// Namespaces), creates the demo's labeled Namespaces, starts the webhook as a
// child process with GOMAXPROCS=1 (tier private-cloud, the demo's strata.yaml
// and policies/), builds a pool of AdmissionReview bodies from the demo's
// rendered prod overlay (defaulted by the apiserver with a server-side-apply
// dry run, ~70 % allowed, ~30 % denied, CREATEs and UPDATEs), checks every
// body's verdict once, then sends them at a fixed rate for a fixed time
// without waiting for answers (latency counts from the scheduled send time, so
// a slow webhook cannot slow the generator down and hide its own latency).
// The cluster and the webhook are torn down on every exit path, SIGINT
// included.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	rate      int
	duration  time.Duration
	warmup    time.Duration
	inflight  int
	timeout   time.Duration
	pool      int
	seed      int64
	http1     bool
	markdown  string
	strata    string
	profile   string
	profDur   time.Duration
	keepLogs  bool
	goalP99   time.Duration
	settle    time.Duration
	quietLoad float64
	quietMax  time.Duration
	nice      int
	rt        int
	perf      string
	perfDur   time.Duration
	note      string
	env       string
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 1000, "requests per second (fixed, open loop)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of the measured run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured run at the same rate before the measured one (0: none)")
	flag.IntVar(&o.inflight, "inflight", 256, "most requests in flight; a request due when the limit is reached is dropped and counted as an error")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout (the registration's timeoutSeconds); a timeout is an error")
	flag.IntVar(&o.pool, "pool", 1000, "distinct AdmissionReview bodies (each with its own request uid), sent round-robin")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the shuffle of the body pool")
	flag.BoolVar(&o.http1, "http1", false, "use HTTP/1.1 keep-alive connections instead of HTTP/2 (the kube-apiserver speaks HTTP/2 to webhooks)")
	flag.StringVar(&o.markdown, "markdown", "", "write the results into the section \""+sectionHeader+"\" of this markdown file")
	flag.StringVar(&o.strata, "strata", "", "use this strata binary instead of building ./cmd/strata")
	flag.StringVar(&o.profile, "profile", "", "after the run, call webhook.Handler.ServeHTTP in this process (GOMAXPROCS=1, same bodies, same policies) under the CPU profiler and write cpu.pprof, allocs.pprof and top.txt into this directory")
	flag.DurationVar(&o.profDur, "profile-duration", 15*time.Second, "how long the in-process profile runs")
	flag.BoolVar(&o.keepLogs, "keep", false, "keep the temporary directory (webhook log, certificates) after the run")
	flag.DurationVar(&o.goalP99, "goal-p99", 5*time.Millisecond, "goal for the p99 latency")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "pause after the cluster is up and the webhook is healthy, for start-up work to die down")
	flag.Float64Var(&o.quietLoad, "wait-quiet", 0, "before measuring, wait up to -wait-quiet-max for the 1-minute load average to drop below this (0: do not wait); the machine's other work counts against the webhook's latency")
	flag.DurationVar(&o.quietMax, "wait-quiet-max", 2*time.Minute, "longest wait for -wait-quiet")
	flag.IntVar(&o.nice, "nice", 0, "nice value for this process and the webhook (e.g. -10, needs root) so that other work on a shared machine does not preempt them: the stand-in for a CPU request; the kwok cluster keeps its own")
	flag.IntVar(&o.rt, "rt", 0, "run this process and the webhook under SCHED_FIFO with this priority (1-99, needs root): isolates them from other work on a shared machine, like a dedicated core; the kwok cluster keeps normal scheduling")
	flag.StringVar(&o.perf, "perf", "", "after the measured run, record the webhook process with perf(1) during an extra -perf-duration of the same load and write the data and report into this directory")
	flag.DurationVar(&o.perfDur, "perf-duration", 10*time.Second, "length of the -perf phase")
	flag.StringVar(&o.env, "webhook-env", "", "extra environment for the webhook, comma-separated KEY=VALUE (e.g. GOGC=400), to try runtime settings")
	flag.StringVar(&o.note, "note", "", "a sentence to add to the markdown section")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/webhook:", err)
		os.Exit(2)
	}

	// The first SIGINT/SIGTERM cancels the run, which then stops the webhook
	// and deletes the cluster; later ones only say that it is doing so.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			fmt.Fprintf(os.Stderr, "\nbench/webhook: %v: stopping the webhook and deleting the cluster …\n", s)
			cancel()
		}
	}()
	err := run(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/webhook:", err)
		os.Exit(1)
	}
}

func (o *options) validate() error {
	switch {
	case o.rate < 1:
		return fmt.Errorf("-rate must be at least 1")
	case o.duration < time.Second:
		return fmt.Errorf("-duration must be at least 1s")
	case o.inflight < 1:
		return fmt.Errorf("-inflight must be at least 1")
	case o.pool < 100:
		return fmt.Errorf("-pool must be at least 100 (the mix is in percent)")
	case o.timeout <= 0:
		return fmt.Errorf("-timeout must be positive")
	case o.rt < 0 || o.rt > 99:
		return fmt.Errorf("-rt must be 1-99 (0: normal scheduling)")
	case o.warmup < 0:
		return fmt.Errorf("-warmup must not be negative")
	}
	return nil
}
