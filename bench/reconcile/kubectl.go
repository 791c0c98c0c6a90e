package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// kubeSide applies each cluster's rendered files with kubectl and waits for
// its Deployments, the three clusters in parallel (strata reconciles them
// concurrently too; issue 16 §4).
func (r *report) kubeSide(ctx context.Context, kubectl, kcdir, rendered string) (kubeRep, error) {
	kr := kubeRep{apply: map[string]time.Duration{}, wait: map[string]time.Duration{}, applied: map[string]int{}, maxRSSKiB: -1}
	var mu sync.Mutex
	add := func(p proc) {
		mu.Lock()
		defer mu.Unlock()
		kr.cpu += p.cpu
		kr.maxRSSKiB = max(kr.maxRSSKiB, p.maxRSSKiB)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(clusterNames))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clusterNames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kc := filepath.Join(kcdir, c+".kubeconfig")
			fail := func(err error) { errs[i] = err; cancel() }
			p, err := runProc(ctx, kubectl, "--kubeconfig", kc, "apply", "--server-side", "--field-manager=bench", "-f", filepath.Join(rendered, c)+string(filepath.Separator))
			add(p)
			if err != nil {
				fail(err)
				return
			}
			applied := bytes.Count(p.stdout, []byte(" serverside-applied\n"))
			mu.Lock()
			kr.apply[c], kr.applied[c] = p.wall, applied
			mu.Unlock()
			if applied != r.rendered[c] {
				fail(fmt.Errorf("kubectl apply to %s reported %d objects serverside-applied, %d files were rendered:\n%s", c, applied, r.rendered[c], p.stdout))
				return
			}
			p, err = runProc(ctx, kubectl, "--kubeconfig", kc, "wait", "--for=condition=Available", "deployment", "--all", "-A", "--timeout=5m")
			add(p)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			kr.wait[c] = p.wall
			mu.Unlock()
			if n := bytes.Count(p.stdout, []byte(" condition met\n")); n != r.repo.Deployments[c] {
				fail(fmt.Errorf("kubectl wait in %s: %d Deployments met the condition, want %d:\n%s", c, n, r.repo.Deployments[c], p.stdout))
			}
		}()
	}
	wg.Wait()
	kr.wall = time.Since(start)
	return kr, errors.Join(errs...)
}

// checkRendered counts the files per cluster and checks that kubectl can
// apply them in name order (which is how `kubectl apply -f DIR/` reads a
// directory): every object's Namespace is in the same directory, in a file
// that sorts before the object's.
func checkRendered(dir string, repo *Repo) (map[string]int, error) {
	out := map[string]int{}
	for _, c := range clusterNames {
		entries, err := os.ReadDir(filepath.Join(dir, c))
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		slices.Sort(names)
		seen := map[string]bool{}
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(dir, c, n))
			if err != nil {
				return nil, err
			}
			var obj struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(b, &obj); err != nil {
				return nil, fmt.Errorf("%s/%s: %w", c, n, err)
			}
			switch {
			case obj.Kind == "Namespace":
				seen[obj.Metadata.Name] = true
			case obj.Metadata.Namespace != "" && !seen[obj.Metadata.Namespace]:
				return nil, fmt.Errorf("%s/%s: its Namespace %s is not in an earlier file; kubectl apply -f %s/ would fail on it",
					c, n, obj.Metadata.Namespace, c)
			}
		}
		out[c] = len(names)
		if len(names) != repo.Expected[c] {
			return nil, fmt.Errorf("strata render --out wrote %d files for %s, the generator expects %d objects there", len(names), c, repo.Expected[c])
		}
	}
	return out, nil
}
