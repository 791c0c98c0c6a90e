package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/strata-gitops/strata/bench/internal/freshclusters"
	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/bench/peers/internal/admission"
)

// runAdmission runs scenarios 4 (admission latency) and 5 (verdict parity)
// against Kyverno on one freshly created cluster.
func runAdmission(ctx context.Context, o options, want map[string]bool, r *report, root, strataBin string, clusters *freshclusters.Set) error {
	if !want["4"] && !want["5"] {
		return nil
	}
	var rates []int
	for _, s := range strings.Split(o.rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-rates %q: %q is not a positive number", o.rates, s)
		}
		rates = append(rates, n)
	}
	fmt.Fprintln(os.Stderr, "scenarios 4 and 5 (admission, parity): recreating the clusters …")
	if err := clusters.Fresh(ctx); err != nil {
		return err
	}
	res, err := admission.Run(ctx, admission.Options{
		KyvernoBin:  filepath.Join(o.peers, "bin", "kyverno"),
		KyvernoCRDs: filepath.Join(o.peers, "crds", "kyverno"),
		StrataBin:   strataBin,
		RepoRoot:    root,
		Kubeconfig:  clusters.M.KubeconfigPath(clusters.Names[0]),
		Rates:       rates,
		Duration:    o.duration,
		RT:          o.rt,
		Progress:    &results.PrefixWriter{W: os.Stderr, Prefix: "  "},
	})
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	r.admission = res
	return nil
}
