package admission

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/config"
)

// repoRoot is the module root, four directories up.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	return root
}

var names = []string{"no-hostpath", "no-loadbalancer-for-confidential", "nonroot-readonly-rootfs",
	"public-cloud-no-secret-refs", "resource-limits", "restricted-images-onprem-registry"}

func TestLoadCorpus(t *testing.T) {
	c, err := LoadCorpus(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	fixtures := 0
	perPolicy := map[string]int{}
	for _, it := range c.Items {
		if p, _, _ := strings.Cut(it.Name, "/"); p != "edge" {
			fixtures++
			perPolicy[p]++
		}
		if _, ok := c.Namespaces[it.Obj.GetNamespace()]; !ok {
			t.Errorf("%s: Namespace %s is not in the corpus", it.Name, it.Obj.GetNamespace())
		}
	}
	for _, p := range names {
		if perPolicy[p] < 2 {
			t.Errorf("policy %s has %d fixtures, want an allowed and a denied one at least", p, perPolicy[p])
		}
	}
	if got := len(c.Items) - fixtures; got != len(edgeCases) {
		t.Errorf("%d edge cases in the corpus, want %d", got, len(edgeCases))
	}
	if got := c.Namespaces["ledger"]["strata.dev/sensitivity"]; got != "restricted" {
		t.Errorf("Namespace ledger has sensitivity %q, want restricted", got)
	}
	for _, n := range []string{e2eAllowed, e2eDenied} {
		if !strings.Contains(strings.Join(itemNames(c), " "), n) {
			t.Errorf("the end-to-end object %s is not in the corpus", n)
		}
	}
}

func itemNames(c *Corpus) []string {
	var out []string
	for _, it := range c.Items {
		out = append(out, it.Name)
	}
	return out
}

func TestCorpusRefusesConflictingNamespaceLabels(t *testing.T) {
	c := &Corpus{Namespaces: map[string]map[string]string{}}
	a := "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {a: b}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\n"
	if err := c.add("a", "", []byte(a)); err != nil {
		t.Fatal(err)
	}
	b := strings.Replace(a, "{a: b}", "{a: c}", 1)
	if err := c.add("b", "", []byte(b)); err == nil || !strings.Contains(err.Error(), "Namespace x") {
		t.Errorf("add with other labels for Namespace x: %v, want an error naming it", err)
	}
}

func TestParseDenial(t *testing.T) {
	kyv := `admission webhook "vpol.validate.kyverno.svc-fail" denied the request: Policy nonroot-readonly-rootfs failed: Pod p is restricted: container(s) a may run as root; set securityContext.runAsNonRoot: true; Policy resource-limits failed: Pod p: container(s) a must set limits; Policy no-hostpath error: no such key: hostPath`
	v := parseDenial(Kyverno, names, kyv)
	want := map[string]string{
		"nonroot-readonly-rootfs": "Pod p is restricted: container(s) a may run as root; set securityContext.runAsNonRoot: true",
		"resource-limits":         "Pod p: container(s) a must set limits",
		"no-hostpath":             "(evaluation error) no such key: hostPath",
	}
	if len(v.Denied) != len(want) || v.Other != "" || v.Err != "" {
		t.Errorf("Kyverno: got %+v", v)
	}
	for p, m := range want {
		if v.Denied[p] != m {
			t.Errorf("Kyverno %s: got %q, want %q", p, v.Denied[p], m)
		}
	}

	str := `admission webhook "validate.strata.dev" denied the request: strata: Pod scratch/x has label strata.dev/sensitivity="Confidential", which is not a sensitivity; policy resource-limits (validations[0]): Pod x: container(s) a must set limits; so that; policy nonroot-readonly-rootfs (validations[1]): Pod x can write`
	v = parseDenial(Strata, names, str)
	if v.Denied["resource-limits"] != "Pod x: container(s) a must set limits; so that" || v.Denied["nonroot-readonly-rootfs"] != "Pod x can write" {
		t.Errorf("strata: got %+v", v.Denied)
	}
	if !strings.HasPrefix(v.Other, "Pod scratch/x has label") || strings.HasSuffix(v.Other, ";") {
		t.Errorf("strata: other = %q", v.Other)
	}
	// Two validations of one policy failing are one policy verdict.
	v = parseDenial(Strata, names, "strata: policy resource-limits (validations[0]): a; policy resource-limits (validations[1]): b")
	if len(v.Denied) != 1 || v.Denied["resource-limits"] != "a | b" {
		t.Errorf("strata, two validations: got %+v", v.Denied)
	}
	// A refusal that names no policy is not a verdict.
	v = parseDenial(Kyverno, names, "denied the request: something else")
	if len(v.Denied) != 0 || v.Err != "something else" {
		t.Errorf("Kyverno, no policy: got %+v", v)
	}
}

func TestCompare(t *testing.T) {
	deny := func(m map[string]string) Verdict { return Verdict{Denied: m} }
	rows := []ParityRow{
		{Item: "same", Kyverno: deny(map[string]string{"resource-limits": "m"}), Strata: deny(map[string]string{"resource-limits": "m"}),
			KyvernoDirect: deny(map[string]string{"resource-limits": "m"}), StrataDirect: deny(map[string]string{"resource-limits": "m"})},
		{Item: "differ", Kyverno: deny(map[string]string{"no-hostpath": "m"}), Strata: deny(map[string]string{"no-hostpath": "other"}),
			KyvernoDirect: deny(map[string]string{}), StrataDirect: deny(map[string]string{"no-hostpath": "x"})},
		{Item: "one-sided", Kyverno: deny(map[string]string{}), Strata: deny(map[string]string{"resource-limits": "m"}),
			KyvernoDirect: deny(map[string]string{}), StrataDirect: deny(map[string]string{"resource-limits": "m"})},
	}
	diffs, msgs, direct := compare(rows, names)
	if len(diffs) != 1 || diffs[0].Item != "one-sided" || diffs[0].Kyverno != "allow" || diffs[0].Strata != "deny: m" {
		t.Errorf("diffs = %+v", diffs)
	}
	if len(msgs) != 1 || msgs[0].Item != "differ" {
		t.Errorf("message diffs = %+v", msgs)
	}
	if len(direct) != 1 || direct[0].Item != "differ" || direct[0].Tool != Kyverno {
		t.Errorf("direct diffs = %+v", direct)
	}
}

func TestMixPool(t *testing.T) {
	svc := func(name, typ string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": name, "namespace": "ns"}, "spec": map[string]any{"type": typ}}}
	}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	objs := []*unstructured.Unstructured{svc("allowed", "ClusterIP"), svc("denied", "LoadBalancer"), svc("differs", "NodePort")}
	cands := candidates(objs, []schema.GroupVersionResource{gvr, gvr, gvr})
	if len(cands) != 6 || cands[0].op != admissionv1.Create || cands[1].op != admissionv1.Update || cands[1].item != 0 {
		t.Fatalf("candidates: want each object's CREATE then its UPDATE, got %+v", cands)
	}
	// Candidates 2, 3 (object "denied") are denied; 4, 5 ("differs") are
	// judged differently by the tools and left out.
	use := []bool{true, true, true, true, false, false}
	denied := []bool{false, false, true, true, false, false}
	pool, err := mixPool(cands, use, denied, 200, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if len(pool) != 200 {
		t.Fatalf("%d bodies, want 200", len(pool))
	}
	uids := map[string]bool{}
	got := map[string]int{}
	for _, b := range pool {
		var r admissionv1.AdmissionReview
		if err := json.Unmarshal(b.data, &r); err != nil {
			t.Fatal(err)
		}
		q := r.Request
		if string(q.UID) != b.uid || q.Operation != b.op || q.Resource.Resource != "services" || q.Kind.Kind != "Service" || q.Namespace != "ns" || len(q.Object.Raw) == 0 {
			t.Errorf("body %s: unexpected request %+v", b.uid, q)
		}
		if q.Name == "differs" {
			t.Errorf("body %s: a request the tools judge differently is in the load", b.uid)
		}
		if q.Operation == admissionv1.Update {
			var old, cur unstructured.Unstructured
			if err := old.UnmarshalJSON(q.OldObject.Raw); err != nil {
				t.Fatal(err)
			}
			if err := cur.UnmarshalJSON(q.Object.Raw); err != nil {
				t.Fatal(err)
			}
			if old.GetUID() == "" || old.GetUID() != cur.GetUID() || old.GetAnnotations()[changeCause] == cur.GetAnnotations()[changeCause] {
				t.Errorf("UPDATE %s: old %v / new %v: want the stored object changed in %s", b.uid, old.GetAnnotations(), cur.GetAnnotations(), changeCause)
			}
		} else if len(q.OldObject.Raw) != 0 {
			t.Errorf("CREATE %s carries an oldObject", b.uid)
		}
		uids[b.uid] = true
		got[fmt.Sprintf("%s %s", q.Name, q.Operation)]++
	}
	if len(uids) != 200 {
		t.Errorf("%d distinct uids, want 200", len(uids))
	}
	want := map[string]int{"allowed CREATE": 95, "allowed UPDATE": 95, "denied CREATE": 5, "denied UPDATE": 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mix (-want +got):\n%s", diff)
	}
	if _, err := mixPool(cands, use, []bool{true, true, true, true, false, false}, 10, 0.05); err == nil {
		t.Error("nothing allowed, yet a mix with allowed requests was made")
	}
}

func TestKyvernoChartConfig(t *testing.T) {
	args := strings.Join(kyvernoChartArgs("/k", 9443, 8000, 8080), " ")
	for _, want := range []string{"--admissionReports=false", "--maxAdmissionReports=1000", "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
		"--omitEvents=PolicyApplied,PolicySkipped", "--v=2", "--webhookServerPort=9443", "--serverIP=127.0.0.1:9443"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %s: %s", want, args)
		}
	}
	data := kyvernoConfigData()
	for _, want := range []string{"[ReplicaSet,*,*]", "[*/*,kyverno,*]", "[Pod,kyverno,kyverno-admission-controller-*]", "[ClusterRole,*,kyverno:reports-controller:additional]"} {
		if !strings.Contains(data["resourceFilters"], want) {
			t.Errorf("resourceFilters lack %s", want)
		}
	}
	var webhooks map[string]any
	if err := json.Unmarshal([]byte(data["webhooks"]), &webhooks); err != nil {
		t.Fatalf("webhooks: %v", err)
	}
	var exposure map[string]any
	if err := json.Unmarshal([]byte(kyvernoMetricsConfigData()["metricsExposure"]), &exposure); err != nil || len(exposure) != 14 {
		t.Fatalf("metricsExposure: %v, %d entries", err, len(exposure))
	}
}

func TestWriteStrataConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := writeStrataConfig(repoRoot(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Sensitivities {
		if len(cfg.Tiers[s]) != 3 {
			t.Errorf("sensitivity %s allowed in %v, want every tier", s, cfg.Tiers[s])
		}
	}
}

func TestReport(t *testing.T) {
	row := func(tool string, gmp, run int, p50, p99 time.Duration) LoadRow {
		return LoadRow{Tool: tool, Rate: 100, GOMAXPROCS: gmp, Run: run, P50: p50, P99: p99, Max: p99 + time.Millisecond, Duration: 10 * time.Second, Scheduled: 1000}
	}
	ms := time.Millisecond
	r := &Result{Options: Options{GOMAXPROCS: 1, ExtraGOMAXPROCS: 2, Runs: 3, Duration: 10 * time.Second, E2ECalls: 20}, Policies: names, KyvernoVersion: "v1.19.1",
		Load: []LoadRow{
			row(Kyverno, 2, 1, 2*ms, 10*ms), row(Strata, 2, 1, ms/10, 2*ms),
			row(Kyverno, 1, 1, 4*ms, 20*ms), row(Strata, 1, 1, ms/10, ms/5),
			row(Strata, 1, 2, ms/10, ms/4), row(Kyverno, 1, 2, 4*ms, 30*ms),
			row(Kyverno, 1, 3, 4*ms, 10*ms), row(Strata, 1, 3, ms/10, ms/2),
		},
		E2E: []E2ERow{{Tool: "none", Item: e2eAllowed}, {Tool: Kyverno, Item: e2eAllowed, Median: 10 * time.Millisecond}, {Tool: Strata, Item: e2eAllowed, Median: 5 * time.Millisecond}},
		Parity: []ParityRow{{Item: "edge/x", Kind: "Pod", Why: "because",
			Kyverno: Verdict{Denied: map[string]string{}}, Strata: Verdict{Denied: map[string]string{"resource-limits": "m"}}}},
	}
	r.Diffs, r.MessageDiffs, r.DirectDiffs = compare(r.Parity, r.Policies)
	md := r.Markdown()
	if i, j := strings.Index(md, "| 1 | 100 |"), strings.Index(md, "| 2 | 100 |"); i < 0 || j < i {
		t.Errorf("the GOMAXPROCS=1 row should come first:\n%s", md)
	}
	for _, want := range []string{
		"| 1 | 100 | 4.00 (4.00–4.00) | 20.00 (10.00–30.00) | 31.00 | 0 | 0.10 (0.10–0.10) | 0.25 (0.20–0.50) | 1.50 | 0 | 0.025 | 0.013 |",
		"| 2 | 100 | 2.00 | 10.00 | 11.00 | 0 | 0.10 | 2.00 | 3.00 | 0 | 0.050 | 0.200 |",
		"strata p99 0.25 ms (worst run 0.50 ms), Kyverno 20.00 ms, ratio 0.013 — PASS",
		"GOMAXPROCS=2 100 req/s not met (p99 ratio 0.200)", "**ok/deny**", "**1 differences**", "`edge/x`: because", "0.500"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if ok, s99, k99, found := r.GoalMet(); !ok || !found || s99 != ms/4 || k99 != 20*ms {
		t.Errorf("GoalMet = %v %v %v %v", ok, s99, k99, found)
	}
	// strata's p99 above 0.5 ms misses the goal even at a tiny ratio.
	r.Load[3].P99, r.Load[4].P99, r.Load[7].P99 = ms, ms, ms
	if ok, _, _, _ := r.GoalMet(); ok {
		t.Error("GoalMet with strata's p99 at 1 ms: want a miss")
	}
	if txt := r.Text(); !strings.Contains(txt, "DIFFERENCE edge/x resource-limits") {
		t.Errorf("Text lacks the difference:\n%s", txt)
	}
}
