package admission

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/localcluster"
)

// The tests below need a kwok cluster (and Kyverno for TestRun), so they
// run only with STRATA_PEERS=1:
//
//	STRATA_PEERS=1 go test ./bench/peers/internal/admission -run TestRun -v -timeout 30m
//
// STRATA_PEERS_RATES (e.g. "100,500,1000"), STRATA_PEERS_DURATION (e.g.
// "10s"), STRATA_PEERS_RT (a SCHED_FIFO priority, see Options.RT) and
// STRATA_PEERS_MARKDOWN (a file to write the section body to) tune TestRun.

func peersOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("STRATA_PEERS") != "1" {
		t.Skip("needs a kwok cluster and the peers of bench/peers/build.sh: set STRATA_PEERS=1")
	}
}

// upCluster brings up the kwok cluster "adm" under a temporary home and
// deletes it when the test ends, and builds strata.
func upCluster(ctx context.Context, t *testing.T) (kubeconfig, strataBin string) {
	t.Helper()
	m := localcluster.New(localcluster.Options{Home: t.TempDir(), Progress: testWriter{t}})
	if missing := m.MissingBinaries(); len(missing) > 0 {
		t.Skipf("%s missing from %s: run `make tools`", strings.Join(missing, ", "), m.Bin())
	}
	// However the test binary ends (even a panic in a goroutine), the clusters end with it.
	if err := m.KillOnExit(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := m.Down(cctx, "adm"); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	if err := m.Up(ctx, "adm"); err != nil {
		t.Fatalf("Up: %v", err)
	}
	strataBin = filepath.Join(t.TempDir(), "strata")
	if err := results.BuildStrata(ctx, repoRoot(t), strataBin); err != nil {
		t.Fatal(err)
	}
	return m.KubeconfigPath("adm"), strataBin
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestRun(t *testing.T) {
	peersOnly(t)
	home, _ := os.UserHomeDir()
	peers := filepath.Join(home, ".cache", "strata", "peers")
	kbin, crds := filepath.Join(peers, "bin", "kyverno"), filepath.Join(peers, "crds", "kyverno")
	for _, p := range []string{kbin, crds} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is missing: run bench/peers/build.sh kyverno", p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	kubeconfig, strataBin := upCluster(ctx, t)
	o := Options{KyvernoBin: kbin, KyvernoCRDs: crds, StrataBin: strataBin, RepoRoot: repoRoot(t), Kubeconfig: kubeconfig,
		Rates: []int{100, 500}, Duration: 5 * time.Second, Progress: testWriter{t}, KeepWorkDir: true, Runs: 1, ExtraRates: []int{100}}
	if s := os.Getenv("STRATA_PEERS_RATES"); s != "" {
		o.Rates = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("STRATA_PEERS_RATES: %v", err)
			}
			o.Rates = append(o.Rates, n)
		}
	}
	if s := os.Getenv("STRATA_PEERS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("STRATA_PEERS_DURATION: %v", err)
		}
		o.Duration = d
	}
	if s := os.Getenv("STRATA_PEERS_RT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("STRATA_PEERS_RT: %v", err)
		}
		o.RT = n
	}
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.Text())
	if f := os.Getenv("STRATA_PEERS_MARKDOWN"); f != "" {
		if err := os.WriteFile(f, []byte(r.Markdown()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// As its chart ships it, Kyverno's resource filters skip ReplicaSets;
	// any other difference is a parity failure.
	for _, d := range r.Diffs {
		if !strings.HasPrefix(d.Item, "edge/replicaset-") {
			t.Errorf("verdict difference between Kyverno and strata: %+v", d)
		}
	}
}

// TestStrataSide runs the strata half of Run without Kyverno: corpus,
// bodies, the webhook under load and the corpus through the apiserver.
func TestStrataSide(t *testing.T) {
	peersOnly(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	kubeconfig, strataBin := upCluster(ctx, t)
	o := Options{StrataBin: strataBin, RepoRoot: repoRoot(t), Kubeconfig: kubeconfig, GOMAXPROCS: 1}
	corpus, err := LoadCorpus(o.RepoRoot)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newCluster(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	corpus.Namespaces[labels.SystemNamespace] = nil
	if err := k.ensureNamespaces(ctx, corpus.Namespaces); err != nil {
		t.Fatal(err)
	}
	objs := make([]*unstructured.Unstructured, len(corpus.Items))
	gvrs := make([]schema.GroupVersionResource, len(corpus.Items))
	for i, it := range corpus.Items {
		gvk := it.Obj.GroupVersionKind()
		m, err := k.c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		gvrs[i] = m.Resource
		if objs[i], err = k.dryRunCreate(ctx, it.Obj); err != nil {
			t.Fatalf("%s: %v", it.Name, err)
		}
	}
	pool, err := candidateBodies(candidates(objs, gvrs))
	if err != nil {
		t.Fatal(err)
	}
	s, err := startStrata(ctx, &o, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if rt, _ := strconv.Atoi(os.Getenv("STRATA_PEERS_RT")); rt > 0 {
		if err := setSchedFIFO(s.p.Pid(), rt); err != nil {
			t.Fatal(err)
		}
	}
	if s.client, err = httpClient(s.ca); err != nil {
		t.Fatal(err)
	}
	answers, err := checkPool(ctx, s.client, s.url, pool)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, len(pool))
	for i, a := range answers {
		want[i] = a.allowed
	}
	row := runLoad(ctx, s.client, s.url, pool, want, 300, 3*time.Second, 256, 5*time.Second)
	t.Logf("strata at 300 req/s: p50 %s p99 %s max %s ms, %d errors (%s), %d wrong, http2 %v", ms(row.P50), ms(row.P99), ms(row.Max), row.Errors, row.FirstErr, row.Wrong, row.HTTP2)
	if row.Errors > 0 || row.Wrong > 0 {
		t.Errorf("%d errors, %d wrong verdicts", row.Errors, row.Wrong)
	}
	if err := registerStrata(ctx, k, s); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = k.deleteWebhookConfigs(context.Background(), false, true) }()
	var byName = map[string]*unstructured.Unstructured{}
	for _, it := range corpus.Items {
		byName[it.Name] = it.Obj
	}
	if err := waitDenied(ctx, k, byName[e2eDenied], "policy resource-limits"); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, p := range mustPolicies(t, o.RepoRoot) {
		names = append(names, p.GetName())
	}
	ds, err := e2eSample(ctx, k, []*unstructured.Unstructured{byName[e2eAllowed], byName[e2eDenied]}, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []string{e2eAllowed, e2eDenied} {
		t.Logf("end to end, %s: median %s ms (min %s, max %s)", n, ms(pct(ds[i], 50)), ms(ds[i][0]), ms(ds[i][len(ds[i])-1]))
	}
	sv := throughAPIServer(ctx, k, Strata, names, corpus.Items)
	first := map[int]int{}
	for i, b := range pool {
		if _, ok := first[b.item]; !ok {
			first[b.item] = i
		}
	}
	for i, it := range corpus.Items {
		d := directVerdict(Strata, names, answers[first[i]])
		api, dir := strings.Join(sv[i].denials(), ","), strings.Join(d.denials(), ",")
		t.Logf("%-60s apiserver [%s] direct [%s] other %q err %q", it.Name, api, dir, oneLine(sv[i].Other, 60), sv[i].Err)
		if api != dir || sv[i].Err != "" {
			t.Errorf("%s: through the apiserver [%s] (err %q), directly [%s]", it.Name, api, sv[i].Err, dir)
		}
		if strings.Contains(it.Name, "/denied-") && api == "" {
			t.Errorf("%s: strata allows a denied-* fixture", it.Name)
		}
	}
}

func mustPolicies(t *testing.T, root string) []*unstructured.Unstructured {
	ps, err := readYAMLDir(filepath.Join(root, "policies"))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestRunCanceled cancels Run during the load and checks that it leaves
// neither processes nor webhook registrations behind.
func TestRunCanceled(t *testing.T) {
	peersOnly(t)
	home, _ := os.UserHomeDir()
	peers := filepath.Join(home, ".cache", "strata", "peers")
	kbin, crds := filepath.Join(peers, "bin", "kyverno"), filepath.Join(peers, "crds", "kyverno")
	if _, err := os.Stat(kbin); err != nil {
		t.Skipf("%s is missing: run bench/peers/build.sh kyverno", kbin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kubeconfig, strataBin := upCluster(ctx, t)
	o := Options{KyvernoBin: kbin, KyvernoCRDs: crds, StrataBin: strataBin, RepoRoot: repoRoot(t), Kubeconfig: kubeconfig,
		Rates: []int{100}, Duration: time.Minute, Progress: testWriter{t}}
	// Cancel once the load has started.
	pr, pw := io.Pipe()
	o.Progress = io.MultiWriter(testWriter{t}, pw)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "req/s for") {
				time.Sleep(3 * time.Second)
				rcancel()
			}
		}
	}()
	_, err := Run(rctx, o)
	pw.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if out, err := exec.Command("pgrep", "-af", kubeconfig).Output(); err == nil {
		t.Errorf("processes left behind:\n%s", out)
	}
	k, err := newCluster(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var vl admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := k.c.List(ctx, &vl); err != nil {
		t.Fatal(err)
	}
	for _, w := range vl.Items {
		t.Errorf("ValidatingWebhookConfiguration %s left behind", w.Name)
	}
}
