package policy

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/strata-gitops/strata/internal/config"
)

// renderProd renders overlays/prod as `kubectl kustomize overlays/prod` does.
func renderProd(t testing.TB) []map[string]any {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../../overlays/prod")
	if err != nil {
		t.Fatalf("rendering overlays/prod: %v", err)
	}
	var out []map[string]any
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// demoTier is the tier placement picks in prod for a sensitivity.
func demoTier(s string) config.Tier {
	switch config.Sensitivity(s) {
	case config.Public:
		return config.PublicCloud
	case config.Restricted:
		return config.OnPrem
	default:
		return config.PrivateCloud
	}
}

func sensitivityOf(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	l, _ := md["labels"].(map[string]any)
	s, _ := l["strata.dev/sensitivity"].(string)
	return s
}

// demoInputs turns the rendered prod objects into CREATE requests, each with
// its Namespace and the tier it is placed in.
func demoInputs(t testing.TB) []Input {
	objs := renderProd(t)
	namespaces := map[string]map[string]any{}
	for _, o := range objs {
		if o["kind"] == "Namespace" {
			namespaces[o["metadata"].(map[string]any)["name"].(string)] = o
		}
	}
	var ins []Input
	for _, o := range objs {
		in := Input{Operation: "CREATE", Object: o}
		md := o["metadata"].(map[string]any)
		sens := sensitivityOf(o)
		if ns, ok := md["namespace"].(string); ok {
			in.Namespace = namespaces[ns]
			if in.Namespace == nil {
				t.Fatalf("%s/%s: namespace %s is not rendered", o["kind"], md["name"], ns)
			}
			if config.Sensitivity(sensitivityOf(in.Namespace)).Rank() > config.Sensitivity(sens).Rank() {
				sens = sensitivityOf(in.Namespace)
			}
		}
		in.Tier = demoTier(sens)
		ins = append(ins, in)
	}
	return ins
}

// TestDemoPassesEveryPolicy: every object of the prod demo passes every
// policy in the tier it is placed in (and in every other tier too).
func TestDemoPassesEveryPolicy(t *testing.T) {
	s := loadRepoPolicies(t)
	ins := demoInputs(t)
	if len(ins) < 30 {
		t.Fatalf("rendered only %d objects", len(ins))
	}
	kinds := map[string]int{}
	for _, in := range ins {
		kinds[in.Object["kind"].(string)]++
		for _, tier := range []config.Tier{in.Tier, ""} {
			in.Tier = tier
			if v := s.Evaluate(context.Background(), in); len(v) != 0 {
				md := in.Object["metadata"].(map[string]any)
				t.Errorf("%s %v/%v (tier %q): %+v", in.Object["kind"], md["namespace"], md["name"], tier, v)
			}
		}
	}
	for _, k := range []string{"Deployment", "StatefulSet", "CronJob", "Job", "Service", "Namespace"} {
		if kinds[k] == 0 {
			t.Errorf("the demo rendered no %s; the test covers less than it claims", k)
		}
	}
}

// TestDemoBreakagesAreDenied makes sure the demo check above is not vacuous:
// breaking a rendered object the way each policy forbids gets it denied.
func TestDemoBreakagesAreDenied(t *testing.T) {
	s := loadRepoPolicies(t)
	find := func(kind, name string) Input {
		for _, in := range demoInputs(t) {
			md := in.Object["metadata"].(map[string]any)
			if in.Object["kind"] == kind && md["name"] == name {
				return in
			}
		}
		t.Fatalf("%s %s not rendered", kind, name)
		return Input{}
	}
	podSpec := func(in Input) map[string]any {
		return in.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	}
	container := func(in Input) map[string]any {
		return podSpec(in)["containers"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name, kind, obj string
		brk             func(in Input)
		want            []string
	}{
		{"ledger image from docker hub", "Deployment", "ledger", func(in Input) {
			container(in)["image"] = "docker.io/library/ledger:7"
		}, []string{"restricted-images-onprem-registry validations[0]"}},
		{"fraud-scoring writable rootfs", "Deployment", "fraud-scoring", func(in Input) {
			delete(container(in)["securityContext"].(map[string]any), "readOnlyRootFilesystem")
		}, []string{"nonroot-readonly-rootfs validations[1]"}},
		{"ledger-db as root", "StatefulSet", "ledger-db", func(in Input) {
			delete(podSpec(in)["securityContext"].(map[string]any), "runAsNonRoot")
		}, []string{"nonroot-readonly-rootfs validations[0]"}},
		{"risk-dashboard without limits", "Deployment", "risk-dashboard", func(in Input) {
			delete(container(in), "resources")
		}, []string{"resource-limits validations[0]"}},
		{"feature-pipeline hostPath", "Deployment", "feature-pipeline", func(in Input) {
			podSpec(in)["volumes"] = append(podSpec(in)["volumes"].([]any), map[string]any{"name": "host", "hostPath": map[string]any{"path": "/"}})
		}, []string{"no-hostpath validations[0]"}},
		{"fraud-scoring LoadBalancer", "Service", "fraud-scoring", func(in Input) {
			in.Object["spec"].(map[string]any)["type"] = "LoadBalancer"
		}, []string{"no-loadbalancer-for-confidential validations[0]"}},
		{"model-training bootstrap reads a Secret", "Job", "model-training-bootstrap", func(in Input) {
			container(in)["envFrom"] = append(container(in)["envFrom"].([]any), map[string]any{"secretRef": map[string]any{"name": "warehouse"}})
		}, []string{"public-cloud-no-secret-refs validations[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := find(tt.kind, tt.obj)
			tt.brk(in)
			if diff := cmp.Diff(tt.want, policyNames(s.Evaluate(context.Background(), in))); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkEvaluate evaluates the prod fraud-scoring Deployment (with its
// Namespace) against every policy of policies/.
func BenchmarkEvaluate(b *testing.B) {
	s := loadRepoPolicies(b)
	in := fixtureInput(b, readDocs(b, "testdata/nonroot-readonly-rootfs/allowed-pod-level-nonroot.yaml"), "")
	for _, i := range demoInputs(b) {
		if i.Object["kind"] == "Deployment" && i.Object["metadata"].(map[string]any)["name"] == "fraud-scoring" {
			in = i
		}
	}
	ctx := context.Background()
	if v := s.Evaluate(ctx, in); len(v) != 0 {
		b.Fatalf("unexpected verdicts: %+v", v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Evaluate(ctx, in)
	}
}
