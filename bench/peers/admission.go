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
	rates, err := parseRates("-rates", o.rates)
	if err != nil {
		return err
	}
	extra, err := parseRates("-gomaxprocs2-rates", o.gomaxprocs2)
	if err != nil {
		return err
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
		ExtraRates:  extra,
		Runs:        o.runs,
		DenyRate:    o.denyRate,
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

// parseRates reads a comma-separated list of positive rates ("" is none).
func parseRates(flag, list string) ([]int, error) {
	var rates []int
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s %q: %q is not a positive number", flag, list, s)
		}
		rates = append(rates, n)
	}
	return rates, nil
}
