package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/gitserver"
	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/reconciler"
)

// strataTool runs `strata reconcile` as its own process, as an operator
// would: following the branch, with the push hook.
type strataTool struct {
	bin     string
	sc      *setup
	proc    *childproc.Process
	hook    *gitserver.Hook
	metrics string
	connect *cluster.KubeconfigDir
	// before are the reconcile counts per cluster when a no-op was triggered.
	before map[string]float64
}

func (s *strataTool) name() string { return "strata" }

func (s *strataTool) start(ctx context.Context, sc *setup, head string, want map[string]int) error {
	s.sc = sc
	secret := make([]byte, 16)
	rand.Read(secret)
	secretFile := filepath.Join(sc.work, "hook-secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		return err
	}
	hookPort, err := childproc.FreePort()
	if err != nil {
		return err
	}
	metricsPort, err := childproc.FreePort()
	if err != nil {
		return err
	}
	s.hook = &gitserver.Hook{URL: fmt.Sprintf("http://127.0.0.1:%d%s", hookPort, labels.HookPath), Secret: []byte(hex.EncodeToString(secret))}
	s.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	s.connect = &cluster.KubeconfigDir{Dir: sc.kcdir}
	s.proc, err = childproc.Start("strata reconcile", filepath.Join(sc.work, "strata.log"), nil, s.bin,
		"reconcile", "--repo", sc.repoURL, "--branch", "main", "--env", sc.env, "--kubeconfig-dir", sc.kcdir,
		"--interval", "1m", "--hook-addr", fmt.Sprintf("127.0.0.1:%d", hookPort), "--hook-secret-file", secretFile,
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--cache-dir", filepath.Join(sc.work, "cache"))
	if err != nil {
		return err
	}
	return s.wait(ctx, head, want, false)
}

func (s *strataTool) trigger(ctx context.Context, commit string) error {
	if counts, err := s.reconciles(ctx); err == nil {
		s.before = counts
	}
	return s.hook.Notify(ctx, commit)
}

func (s *strataTool) wait(ctx context.Context, commit string, want map[string]int, noop bool) error {
	err := waitFor(ctx, s.sc.timeout, func(ctx context.Context) (bool, error) {
		if s.proc.Exited() {
			return false, fatal{Err: fmt.Errorf("strata reconcile exited")}
		}
		for _, c := range s.sc.clusters {
			inv, _, err := cluster.ReadInventory(ctx, s.connect, c, s.sc.env)
			if err != nil {
				return false, err
			}
			st := inv.Status
			if st.Revision != commit || st.LastError != "" || st.Objects != want[c] || st.Healthy != st.Objects {
				return false, fmt.Errorf("cluster %s: revision %.8s, %d/%d objects healthy, want %d at %.8s %s", c, st.Revision, st.Healthy, st.Objects, want[c], commit, st.LastError)
			}
		}
		if !noop {
			return true, nil
		}
		// A no-op changes nothing in the inventory: count reconciles.
		counts, err := s.reconciles(ctx)
		if err != nil {
			return false, err
		}
		for _, c := range s.sc.clusters {
			if counts[c] <= s.before[c] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("strata: %w\nlog tail:\n%s", err, s.proc.Tail(30))
	}
	return nil
}

// reconciles reads strata_reconcile_duration_seconds_count per cluster.
func (s *strataTool) reconciles(ctx context.Context) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.metrics, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	prefix := reconciler.MetricReconcileDuration + "_count{"
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		lbls, val, _ := strings.Cut(rest, "} ")
		for _, kv := range strings.Split(lbls, ",") {
			if v, ok := strings.CutPrefix(kv, `cluster="`); ok {
				out[strings.TrimSuffix(v, `"`)], _ = strconv.ParseFloat(val, 64)
			}
		}
	}
	return out, sc.Err()
}

// reconcileCount is how many reconciles (of every cluster) strata has
// finished so far, by its metrics.
func (s *strataTool) reconcileCount(ctx context.Context) (int, error) {
	counts, err := s.reconciles(ctx)
	n := 0
	for _, c := range counts {
		n += int(c)
	}
	return n, err
}

func (s *strataTool) usage() (usage, error) { return usageOf(s.proc) }

func (s *strataTool) stop() {
	if s.proc != nil {
		s.proc.Stop()
	}
	if s.connect != nil {
		s.connect.Close()
	}
}
