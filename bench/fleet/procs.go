package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// Mode is how the fleet is reconciled.
type Mode string

const (
	// Push is one `strata reconcile --kubeconfig-dir` for every cluster.
	Push Mode = "push"
	// Agent is one `strata reconcile --self NAME` per cluster, each with
	// only its own cluster's kubeconfig.
	Agent Mode = "agent"
)

// reconcilers are the strata processes of one run and their push hooks.
type reconcilers struct {
	procs []*childproc.Process
	hooks []*gitserver.Hook
}

// procSettings are the flags every reconciler gets.
type procSettings struct {
	bin, repoURL, dir string
	interval, drift   time.Duration
}

// startReconcilers starts the processes of mode for the clusters names:
// one for all (push) or one per cluster (agent). Each serves its own
// signed push hook; metrics are off (nothing reads them).
func startReconcilers(mode Mode, names []string, lc *localcluster.Manager, s procSettings) (*reconcilers, error) {
	rs := &reconcilers{}
	start := func(name string, args ...string) error {
		secret := make([]byte, 16)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		hexSecret := hex.EncodeToString(secret)
		secretFile := filepath.Join(s.dir, name+".hook-secret")
		if err := os.WriteFile(secretFile, []byte(hexSecret), 0o600); err != nil {
			return err
		}
		port, err := childproc.FreePort()
		if err != nil {
			return err
		}
		base := []string{"reconcile", "--repo", s.repoURL, "--branch", "main", "--env", fleetEnv,
			"--interval", s.interval.String(), "--drift-interval", s.drift.String(),
			"--hook-addr", fmt.Sprintf("127.0.0.1:%d", port), "--hook-secret-file", secretFile,
			"--metrics-addr", "0", "--cache-dir", filepath.Join(s.dir, name+".cache")}
		p, err := childproc.Start("strata reconcile "+name, filepath.Join(s.dir, name+".log"), nil, s.bin, append(base, args...)...)
		if err != nil {
			return err
		}
		rs.procs = append(rs.procs, p)
		rs.hooks = append(rs.hooks, &gitserver.Hook{URL: fmt.Sprintf("http://127.0.0.1:%d%s", port, labels.HookPath), Secret: []byte(hexSecret)})
		return nil
	}
	var err error
	switch mode {
	case Push:
		err = start("push", "--kubeconfig-dir", lc.KubeconfigDir())
	case Agent:
		for _, n := range names {
			// No --peer-kubeconfig-dir: nothing moves between clusters here.
			if err = start("agent-"+n, "--self", n, "--kubeconfig", lc.KubeconfigPath(n)); err != nil {
				break
			}
		}
	default:
		err = fmt.Errorf("unknown mode %q: use push or agent", mode)
	}
	if err != nil {
		rs.stop()
		return nil, err
	}
	return rs, nil
}

// notify posts the push of commit to every reconciler's hook at once, as
// a git host with one webhook per agent would. A hook that is not up yet
// (the process is still starting) is retried for 30 s.
func (rs *reconcilers) notify(ctx context.Context, commit string) error {
	errs := make([]error, len(rs.hooks))
	var wg sync.WaitGroup
	for i, h := range rs.hooks {
		wg.Go(func() {
			deadline := time.Now().Add(30 * time.Second)
			for {
				errs[i] = h.Notify(ctx, commit)
				if errs[i] == nil || time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", rs.procs[i].Name, err)
		}
	}
	return nil
}

// exited names a process that ended, with its log's tail.
func (rs *reconcilers) exited() error {
	for _, p := range rs.procs {
		if p.Exited() {
			return fmt.Errorf("%s exited (%v); log %s:\n%s", p.Name, p.Err, p.Log, p.Tail(20))
		}
	}
	return nil
}

// Usage is what the reconcilers used: CPU (utime+stime) summed over the
// processes, peak RSS (VmHWM) summed and the largest process's.
type Usage struct {
	CPU        time.Duration
	PeakSumKiB int64
	PeakMaxKiB int64
}

// Sub is the CPU used between an earlier reading and u (peaks are kept).
func (u Usage) Sub(earlier Usage) Usage {
	u.CPU -= earlier.CPU
	return u
}

func (rs *reconcilers) usage() Usage {
	var u Usage
	for _, p := range rs.procs {
		u.CPU += p.CPU()
		kib := p.PeakRSS() >> 10
		u.PeakSumKiB += kib
		u.PeakMaxKiB = max(u.PeakMaxKiB, kib)
	}
	return u
}

// stop ends every process (SIGTERM, then SIGKILL after 10 s), in parallel.
func (rs *reconcilers) stop() {
	var wg sync.WaitGroup
	for _, p := range rs.procs {
		wg.Go(p.Stop)
	}
	wg.Wait()
}
