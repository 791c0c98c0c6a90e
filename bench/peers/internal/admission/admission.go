// Package admission compares strata's validating webhook with the Kyverno
// admission controller on the same cluster, the same six ValidatingPolicy
// files of policies/ and the same requests (issue 8, scenarios 4 and 5):
//
//   - admission latency: identical AdmissionReview bodies POSTed over HTTPS
//     straight to each webhook server at fixed rates, open loop, and
//     dry-run creates through the apiserver with only one tool's webhook
//     registered;
//   - verdict parity: every allowed-*/denied-* fixture of
//     internal/policy/testdata and a few edge cases, judged by both tools
//     through the apiserver, compared per object and policy.
//
// Both servers run as child processes with the same GOMAXPROCS. Kyverno is
// run out of cluster as /work/shared/peers.md describes; it is built by
// bench/peers/build.sh, never in CI.
package admission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/bench/internal/results"
	"github.com/strata-gitops/strata/internal/labels"
)

// Options configure Run. Zero values of the optional fields take the
// defaults in brackets.
type Options struct {
	KyvernoBin  string // $HOME/.cache/strata/peers/bin/kyverno
	KyvernoCRDs string // $HOME/.cache/strata/peers/crds/kyverno (the module's config/crds)
	// KyvernoChart is the chart rendered by bench/peers/build.sh, whose
	// ServiceAccounts and RBAC are installed [KyvernoCRDs + "-chart.yaml"].
	KyvernoChart string
	StrataBin    string // a built strata binary
	RepoRoot     string // strata.yaml, policies/ and internal/policy/testdata are read from here
	Kubeconfig   string // one running kwok cluster, used exclusively
	Rates        []int  // requests per second, e.g. 100, 500, 1000
	Duration     time.Duration
	Progress     io.Writer // nil: discard

	GOMAXPROCS int     // of both webhook servers [1]
	Runs       int     // measured runs per rate and tool [3]
	DenyRate   float64 // share of the load's requests the policies deny [0.05]
	// ExtraRates also run with both servers at ExtraGOMAXPROCS [2]
	// (restarted for it), e.g. the goal's 100 req/s; none when empty.
	ExtraRates      []int
	ExtraGOMAXPROCS int
	Warmup          time.Duration // unmeasured load before each measured run [2s]
	Inflight        int           // most requests in flight per run; more are errors [512]
	Timeout         time.Duration // per request, like a webhook registration's timeoutSeconds [5s]
	Pool            int           // distinct AdmissionReview bodies [400]
	E2ECalls        int           // dry-run creates per object and tool [20]
	// KeepWorkDir keeps the logs and certificates after a successful run
	// (they are always kept after a failure).
	KeepWorkDir bool
	// RT, when 1-99, runs both servers, and this process during the load,
	// under SCHED_FIFO with this priority (needs root): on a shared machine
	// it stands in for a dedicated core. 0: normal scheduling.
	RT int
}

func (o *Options) defaults() error {
	switch {
	case o.KyvernoBin == "" || o.KyvernoCRDs == "" || o.StrataBin == "" || o.RepoRoot == "" || o.Kubeconfig == "":
		return errors.New("admission: KyvernoBin, KyvernoCRDs, StrataBin, RepoRoot and Kubeconfig are required")
	case len(o.Rates) == 0:
		return errors.New("admission: no Rates to run")
	case o.RT < 0 || o.RT > 99:
		return errors.New("admission: RT must be 0 (off) or a SCHED_FIFO priority 1-99")
	case o.Duration < time.Second:
		return errors.New("admission: Duration must be at least 1s")
	}
	if o.KyvernoChart == "" {
		o.KyvernoChart = o.KyvernoCRDs + "-chart.yaml"
	}
	for _, f := range []string{o.KyvernoBin, o.KyvernoCRDs, o.KyvernoChart, o.StrataBin, o.Kubeconfig} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("admission: %w", err)
		}
	}
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	set(&o.GOMAXPROCS, 1)
	set(&o.Runs, 3)
	set(&o.ExtraGOMAXPROCS, 2)
	if o.DenyRate == 0 {
		o.DenyRate = 0.05
	}
	if o.DenyRate < 0 || o.DenyRate > 1 {
		return errors.New("admission: DenyRate must be between 0 and 1")
	}
	set(&o.Inflight, 512)
	set(&o.Pool, 400)
	set(&o.E2ECalls, 20)
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// E2ERow is the dry-run create latency of one object through the
// apiserver with one tool's webhook registered ("none": no webhook).
type E2ERow struct {
	Tool, Item, Verdict string
	N                   int
	Median, Min, Max    time.Duration
}

// Result is everything one Run measured.
type Result struct {
	Machine        results.Machine
	LoadAvg        string // when the load phase started
	Started        time.Time
	Elapsed        time.Duration
	KyvernoVersion string
	Options        Options
	Policies       []string
	Bodies         int
	Objects        int
	DeniedBodies   int // bodies of the load both tools deny
	UpdateBodies   int // bodies of the load that are UPDATEs (the rest: CREATEs)
	// ExcludedFromLoad are the objects the tools give different verdicts
	// (strata's sensitivity rule), whose bodies the load leaves out.
	ExcludedFromLoad []string
	Load             []LoadRow
	E2E              []E2ERow
	Parity           []ParityRow
	Diffs            []Difference
	MessageDiffs     []Difference
	DirectDiffs      []DirectDiff
	WorkDir          string
}

// Objects of the end-to-end latency measurement: a Deployment every policy
// allows and one that resource-limits denies.
const (
	e2eAllowed = "resource-limits/allowed-all-containers-limited"
	e2eDenied  = "resource-limits/denied-missing-memory-limit"
)

// Run runs both scenarios on the cluster of o.Kubeconfig. Every process it
// starts and every webhook registration it makes is gone when it returns,
// also on error or when ctx ends.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &Result{Machine: results.ReadMachine(), Started: time.Now(), KyvernoVersion: kyvernoVersion(o.KyvernoBin), Options: o}
	say := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "[%5.1fs] admission: "+format+"\n", append([]any{time.Since(r.Started).Seconds()}, args...)...)
	}
	corpus, err := LoadCorpus(o.RepoRoot)
	if err != nil {
		return nil, err
	}
	policies, err := readYAMLDir(filepath.Join(o.RepoRoot, "policies"))
	if err != nil {
		return nil, err
	}
	for _, p := range policies {
		r.Policies = append(r.Policies, p.GetName())
	}
	k, err := newCluster(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "strata-admission-")
	if err != nil {
		return nil, err
	}
	r.WorkDir = work
	var kyv, str, floor *server
	defer func() {
		// A fresh context: ctx may be the reason we are leaving.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		kyv.stop()
		str.stop()
		floor.stop()
		if cerr := k.deleteWebhookConfigs(cctx, true, true); cerr != nil && err == nil {
			err = fmt.Errorf("removing the webhook registrations: %w", cerr)
		}
		if err != nil {
			err = fmt.Errorf("%w (logs in %s)", err, work)
		} else if !o.KeepWorkDir {
			_ = os.RemoveAll(work)
			r.WorkDir = ""
		}
	}()

	say("%d objects, %d policies; preparing the cluster", len(corpus.Items), len(r.Policies))
	if err := k.deleteWebhookConfigs(ctx, true, true); err != nil {
		return nil, err
	}
	nss := corpus.Namespaces
	nss[labels.SystemNamespace] = nil // where strata's webhook writes its audit records
	if err := k.ensureNamespaces(ctx, nss); err != nil {
		return nil, err
	}
	// Bodies carry the objects as the apiserver defaults them, which is
	// what both webhooks see when called by the apiserver.
	objs := make([]*unstructured.Unstructured, len(corpus.Items))
	gvrs := make([]schema.GroupVersionResource, len(corpus.Items))
	for i, it := range corpus.Items {
		gvk := it.Obj.GroupVersionKind()
		m, err := k.c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Name, err)
		}
		gvrs[i] = m.Resource
		if objs[i], err = k.dryRunCreate(ctx, it.Obj); err != nil {
			return nil, fmt.Errorf("%s is refused with no webhook registered: %w", it.Name, err)
		}
	}
	cands := candidates(objs, gvrs)
	candBodies, err := candidateBodies(cands)
	if err != nil {
		return nil, err
	}
	r.Objects = len(objs)
	byName := map[string]*unstructured.Unstructured{}
	for _, it := range corpus.Items {
		byName[it.Name] = it.Obj
	}
	e2e := func(tool string) error {
		objs := []*unstructured.Unstructured{byName[e2eAllowed], byName[e2eDenied]}
		ds, err := e2eSample(ctx, k, objs, o.E2ECalls)
		if err != nil {
			return fmt.Errorf("%s: %w", tool, err)
		}
		for i, name := range []string{e2eAllowed, e2eDenied} {
			verdict := "allowed"
			if name == e2eDenied && tool != "none" {
				verdict = "denied"
			}
			d := ds[i]
			r.E2E = append(r.E2E, E2ERow{Tool: tool, Item: name, Verdict: verdict, N: len(d), Median: pct(d, 50), Min: d[0], Max: d[len(d)-1]})
		}
		return nil
	}
	say("end-to-end baseline: dry-run creates with no webhook registered")
	if err := e2e("none"); err != nil {
		return nil, err
	}

	// The load's groups by GOMAXPROCS; the main one last, so that the
	// end-to-end part afterwards runs both servers at o.GOMAXPROCS.
	type group struct {
		gomaxprocs int
		rates      []int
	}
	var groups []group
	if len(o.ExtraRates) > 0 {
		groups = append(groups, group{o.ExtraGOMAXPROCS, o.ExtraRates})
	}
	groups = append(groups, group{o.GOMAXPROCS, o.Rates})
	say("starting Kyverno %s as its Helm chart %s ships it (GOMAXPROCS=%d) and loading the policies", r.KyvernoVersion, kyvernoChartVersion, groups[0].gomaxprocs)
	if err := installKyvernoPrereqs(ctx, k, o.KyvernoCRDs, o.KyvernoChart, policies); err != nil {
		return nil, err
	}
	if kyv, err = startKyverno(ctx, k, &o, work, r.Policies, groups[0].gomaxprocs); err != nil {
		return nil, err
	}
	say("Kyverno serves the policies at %s; starting strata webhook (tier %s, GOMAXPROCS=%d)", kyv.url, Tier, groups[0].gomaxprocs)
	if str, err = startStrata(ctx, &o, work, groups[0].gomaxprocs); err != nil {
		return nil, err
	}
	deniedBody := -1
	for i, b := range candBodies {
		if corpus.Items[b.item].Name == e2eDenied && b.op == admissionv1.Create {
			deniedBody = i
			break
		}
	}
	// ready waits until s denies what resource-limits denies: Ready
	// policies may not be in Kyverno's engine yet.
	ready := func(s *server) error {
		var err error
		if s.client, err = httpClient(s.ca); err != nil {
			return err
		}
		err = poll(ctx, 60*time.Second, func() (bool, error) {
			a, err := post(ctx, s.client, s.url, candBodies[deniedBody], 10*time.Second)
			return err == nil && !a.allowed && strings.Contains(strings.ToLower(a.message), "policy resource-limits"), err
		})
		if err != nil {
			return fmt.Errorf("%s does not deny %s when called directly: %w", s.tool, e2eDenied, err)
		}
		return nil
	}
	direct := map[string][]answer{}
	for _, s := range []*server{kyv, str} {
		if err := ready(s); err != nil {
			return nil, err
		}
		if direct[s.tool], err = checkPool(ctx, s.client, s.url, candBodies); err != nil {
			return nil, fmt.Errorf("%s: checking every body once: %w", s.tool, err)
		}
	}
	// The load sends only requests both tools give the same verdict, so
	// that both do the same work (strata's own sensitivity rule denies some
	// objects the policies allow; Kyverno as shipped skips ReplicaSets).
	use, denied := make([]bool, len(cands)), make([]bool, len(cands))
	excluded := map[string]bool{}
	for i, b := range candBodies {
		ka, sa := direct[Kyverno][i].allowed, direct[Strata][i].allowed
		use[i], denied[i] = ka == sa, !ka
		if ka != sa {
			excluded[corpus.Items[b.item].Name] = true
		}
	}
	pool, err := mixPool(cands, use, denied, o.Pool, o.DenyRate)
	if err != nil {
		return nil, err
	}
	want := make([]bool, len(pool)) // allowed?
	for i, b := range pool {
		want[i] = !denied[b.cand]
		if denied[b.cand] {
			r.DeniedBodies++
		}
		if b.op == admissionv1.Update {
			r.UpdateBodies++
		}
	}
	r.Bodies, r.ExcludedFromLoad = len(pool), slices.Sorted(maps.Keys(excluded))

	// Each tool runs alone during its load: strata's process is stopped
	// while Kyverno is loaded (and started again for its own runs); Kyverno
	// cannot be stopped (it exits when it loses its leader lease) and is
	// put at the lowest priority, under SCHED_OTHER and nice 19, while
	// strata is loaded, its CPU then reported.
	m := &measurer{ctx: ctx, o: &o, pool: pool, want: want, say: say}
	r.LoadAvg = results.LoadAvg()

	floorBin, err := buildFloor(ctx, &o, work)
	if err != nil {
		return nil, err
	}
	for gi, g := range groups {
		if gi > 0 {
			say("restarting both servers with GOMAXPROCS=%d", g.gomaxprocs)
			kyv.stop()
			str.stop()
			str = nil
			if kyv, err = startKyverno(ctx, k, &o, work, r.Policies, g.gomaxprocs); err != nil {
				return nil, err
			}
			if err := ready(kyv); err != nil {
				return nil, err
			}
		}
		if floor, err = startFloor(ctx, floorBin, work, g.gomaxprocs); err != nil {
			return nil, err
		}
		for ri, rate := range g.rates {
			for run := 1; run <= o.Runs; run++ {
				// The tools take turns in a rotating order, so that drift
				// hurts them alike.
				order := []string{Kyverno, Strata, Floor}
				first := (ri + run) % len(order)
				order = append(order[first:], order[:first]...)
				for _, tool := range order {
					var row LoadRow
					switch tool {
					case Kyverno:
						str.stop()
						str = nil
						row, err = m.load(kyv, nil, rate, g.gomaxprocs, run)
					case Floor:
						str.stop()
						str = nil
						row, err = m.load(floor, kyv, rate, g.gomaxprocs, run)
					default:
						if str == nil {
							if str, err = startStrata(ctx, &o, work, g.gomaxprocs); err != nil {
								return nil, err
							}
							if err := ready(str); err != nil {
								return nil, err
							}
						}
						row, err = m.load(str, kyv, rate, g.gomaxprocs, run)
					}
					if err != nil {
						return nil, err
					}
					r.Load = append(r.Load, row)
				}
			}
		}
		floor.stop()
		floor = nil
	}
	if o.RT > 0 {
		// The apiserver runs with normal scheduling: real-time servers would
		// preempt it on the end-to-end path.
		pids := []int{0, kyv.p.Pid()}
		if str != nil {
			pids = append(pids, str.p.Pid())
		}
		for _, pid := range pids {
			if err := setSchedFIFO(pid, 0); err != nil {
				return nil, err
			}
		}
	}
	if err := setNice(kyv.p.Pid(), 0); err != nil {
		return nil, err
	}
	if str == nil {
		if str, err = startStrata(ctx, &o, work, o.GOMAXPROCS); err != nil {
			return nil, err
		}
	}

	// Scenario 5 and the end-to-end latency: one tool's webhook at a time.
	say("Kyverno alone: parity corpus and end-to-end latency through the apiserver")
	if err := waitDenied(ctx, k, byName[e2eDenied], "Policy resource-limits"); err != nil {
		return nil, fmt.Errorf("Kyverno's webhook does not deny through the apiserver: %w", err)
	}
	kv := throughAPIServer(ctx, k, Kyverno, r.Policies, corpus.Items)
	if err := e2e(Kyverno); err != nil {
		return nil, err
	}
	kyv.stop()
	if err := k.deleteWebhookConfigs(ctx, true, false); err != nil {
		return nil, err
	}
	say("strata alone: parity corpus and end-to-end latency through the apiserver")
	if err := registerStrata(ctx, k, str); err != nil {
		return nil, err
	}
	if err := waitDenied(ctx, k, byName[e2eDenied], "policy resource-limits"); err != nil {
		return nil, fmt.Errorf("strata's webhook does not deny through the apiserver: %w", err)
	}
	sv := throughAPIServer(ctx, k, Strata, r.Policies, corpus.Items)
	if err := e2e(Strata); err != nil {
		return nil, err
	}
	if err := k.deleteWebhookConfigs(ctx, false, true); err != nil {
		return nil, err
	}
	str.stop()

	// The CREATE candidate of each object gives its direct verdicts.
	firstBody := map[int]int{}
	for i, b := range candBodies {
		if _, ok := firstBody[b.item]; !ok && b.op == admissionv1.Create {
			firstBody[b.item] = i
		}
	}
	for i, it := range corpus.Items {
		row := ParityRow{Item: it.Name, Kind: it.Obj.GetKind(), Why: it.Why, Kyverno: kv[i], Strata: sv[i]}
		row.KyvernoDirect = directVerdict(Kyverno, r.Policies, direct[Kyverno][firstBody[i]])
		row.StrataDirect = directVerdict(Strata, r.Policies, direct[Strata][firstBody[i]])
		r.Parity = append(r.Parity, row)
	}
	r.Diffs, r.MessageDiffs, r.DirectDiffs = compare(r.Parity, r.Policies)
	r.Elapsed = time.Since(r.Started)
	say("done in %s: %d parity differences", r.Elapsed.Round(time.Second), len(r.Diffs))
	return r, nil
}

func directVerdict(tool string, names []string, a answer) Verdict {
	if a.allowed {
		return Verdict{Denied: map[string]string{}}
	}
	return parseDenial(tool, names, a.message)
}

// waitDenied waits until a dry-run create of obj is denied with a message
// containing want: the apiserver picks up a new registration (and Kyverno
// its policies) a moment after they appear.
func waitDenied(ctx context.Context, k *cluster, obj *unstructured.Unstructured, want string) error {
	return poll(ctx, 60*time.Second, func() (bool, error) {
		_, err := k.dryRunCreate(ctx, obj)
		if err == nil {
			return false, errors.New("allowed")
		}
		return strings.Contains(err.Error(), want), err
	})
}
