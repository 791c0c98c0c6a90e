package charttest

import (
	"strings"
	"testing"

	"github.com/strata-gitops/strata/internal/labels"
)

// TestLintAndTemplate lints and renders every configuration and checks the
// objects each one contains.
func TestLintAndTemplate(t *testing.T) {
	for _, r := range renderings(t) {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"lint", "--strict", "--namespace", labels.SystemNamespace, "strata"}, r.args...)
			if out, err := helm(t, args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			_, objs := mustRender(t, r)
			got := map[string]int{}
			for _, o := range objs {
				got[o.GetKind()]++
				if o.GetLabels()["app.kubernetes.io/instance"] != releaseName {
					t.Errorf("%s %s has no app.kubernetes.io/instance label", o.GetKind(), o.GetName())
				}
			}
			for kind, n := range r.kinds {
				if got[kind] != n {
					t.Errorf("%d %s objects, want %d", got[kind], kind, n)
				}
			}
			for kind, n := range got {
				if _, ok := r.kinds[kind]; !ok {
					t.Errorf("%d unexpected %s objects", n, kind)
				}
			}
		})
	}
}

// TestSchemaRejectsBadValues checks that values.schema.json (or a template's
// own check) refuses wrong or missing values with a message naming the field.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // each must appear in the error
	}{
		{"unknown tier", []string{"--set", "webhook.tier=moon"}, []string{"/webhook/tier", "public-cloud"}},
		{"missing repo url", []string{"--set", "reconciler.repo.url=null"}, []string{"/reconciler/repo", "url"}},
		{"empty repo url", []string{"--set", "reconciler.repo.url="}, []string{"/reconciler/repo", "url"}},
		{"repo url not http", []string{"--set", "reconciler.repo.url=/srv/git/config"}, []string{"/reconciler/repo/url"}},
		{"agent mode without self", []string{"--set", "reconciler.mode=agent"}, []string{"/reconciler/self"}},
		{"unknown mode", []string{"--set", "reconciler.mode=sideways"}, []string{"/reconciler/mode", "push"}},
		{"zero replicas", []string{"--set", "reconciler.replicas=0"}, []string{"/reconciler/replicas"}},
		{"webhook replicas not an integer", []string{"--set", "webhook.replicas=two"}, []string{"/webhook/replicas"}},
		{"replicas without leader election", []string{"--set", "reconciler.leaderElect=false"}, []string{"/reconciler/leaderElect"}},
		{"push mode without clusters", []string{"--set", "reconciler.clusters=null"}, []string{"/reconciler", "clusters"}},
		{"cluster name not a DNS label", []string{"--set", "reconciler.clusters[0].name=On_Prem"}, []string{"/reconciler/clusters/0/name"}},
		{"hook without secret", []string{"--set", "reconciler.hook.enabled=true"}, []string{"/reconciler/hook", "secret"}},
		{"missing environment", []string{"--set", "environment="}, []string{"/environment"}},
		{"policy file not yaml", []string{"--set", "policies.README=x"}, []string{"/policies", "README"}},
		{"typo in a key", []string{"--set", "webhook.teir=on-prem"}, []string{"/webhook", "teir"}},
		{"bad interval", []string{"--set", "reconciler.interval=often"}, []string{"/reconciler/interval"}},
		{"pdb blocks drains", []string{"--set", "webhook.replicas=1"}, []string{"webhook.pdb.minAvailable"}},
		{"trusted key not a fingerprint", []string{"--set", "reconciler.trustedKeys[0]=alice"}, []string{"/reconciler/trustedKeys/0"}},
		{"unknown issuer kind", []string{"--set", "certManager.issuerRef.kind=Vault"}, []string{"/certManager/issuerRef/kind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, tc.args...)
			if err == nil {
				t.Fatalf("helm template %v rendered; want an error naming %v\n%.400s", tc.args, tc.want, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}

// The approval gate's root of trust reaches the reconciler's arguments.
func TestTrustedKeysReachTheReconciler(t *testing.T) {
	fp := "SHA256:" + strings.Repeat("ab", 32)
	out, err := template(t, "--set", "reconciler.trustedKeys[0]="+fp, "--set", "webhook.enabled=false")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "- --trusted-keys="+fp) {
		t.Errorf("rendered reconciler lacks --trusted-keys=%s", fp)
	}
}
