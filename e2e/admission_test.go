package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-gitops/strata/internal/localcluster"
)

// webhookClosesTheHoles performs, with kubectl against the demo's running
// clusters and their webhooks, the ways around the webhook of issue 13
// (items 1-5). Each of them worked before placement and the webhook shared
// one decision core. It needs the RBAC binding e2e-people of the public
// cluster (break-glass by alice sets up the objects the attacks need).
func webhookClosesTheHoles(t *testing.T, lc *localcluster.Manager) {
	oncall := []string{"--as=alice", "--as-group=platform-oncall"}
	// The helpers take the subtest's t, so that a failure names its item.
	ok := func(t *testing.T, cluster, stdin string, args ...string) string {
		t.Helper()
		out, err := kubectl(t, lc, cluster, stdin, args...)
		if err != nil {
			t.Errorf("kubectl %s on %s: %v\n%s", strings.Join(args, " "), cluster, err, out)
		}
		return out
	}
	denied := func(t *testing.T, say, cluster, stdin string, args ...string) {
		t.Helper()
		out, err := kubectl(t, lc, cluster, stdin, args...)
		if err == nil || !strings.Contains(out, "denied the request: strata:") || !strings.Contains(out, say) {
			t.Errorf("kubectl %s on %s: err %v, want a denial saying %q:\n%s", strings.Join(args, " "), cluster, err, say, out)
		}
	}
	cleanup := func(t *testing.T, cluster string, args ...string) {
		t.Cleanup(func() {
			_, _ = kubectl(t, lc, cluster, "", append([]string{"delete", "--wait=false", "--ignore-not-found"}, args...)...)
		})
	}

	t.Run("1: a Namespace is cluster-scoped: unlabeled it passes, a wrong label can be corrected", func(t *testing.T) {
		cleanup(t, "private", "namespace", "e2e-unlabeled")
		ok(t, "private", "", "create", "namespace", "e2e-unlabeled")
		cleanup(t, "public", "namespace", "e2e-wrong")
		ok(t, "public", `apiVersion: v1
kind: Namespace
metadata:
  name: e2e-wrong
  labels: {strata.dev/sensitivity: internal}
  annotations: {strata.dev/break-glass: "INC-4711 e2e: a wrong label to correct"}
`, append([]string{"create", "-f", "-"}, oncall...)...)
		ok(t, "public", "", "label", "namespace", "e2e-wrong", "strata.dev/sensitivity=public", "--overwrite")
		denied(t, "Namespace e2e-wrong is restricted", "public", "", "label", "namespace", "e2e-wrong", "strata.dev/sensitivity=restricted", "--overwrite")
	})

	t.Run("2: only the control plane's own Events and Leases are exempt", func(t *testing.T) {
		cleanup(t, "public", "crd", "events.e2e.strata.dev")
		ok(t, "public", `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: events.e2e.strata.dev}
spec:
  group: e2e.strata.dev
  scope: Namespaced
  names: {kind: Event, plural: events, singular: event}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`, "apply", "-f", "-")
		ok(t, "public", "", "wait", "--for", "condition=established", "--timeout=30s", "crd/events.e2e.strata.dev")
		denied(t, "Event ml-training/exfil is restricted", "public",
			"apiVersion: e2e.strata.dev/v1\nkind: Event\nmetadata: {name: exfil, namespace: ml-training, labels: {strata.dev/sensitivity: restricted}}\nspec: {ledger: the books}\n",
			"apply", "-f", "-")
		cleanup(t, "public", "event", "e2e-seen", "-n", "default")
		ok(t, "public", "apiVersion: v1\nkind: Event\nmetadata: {name: e2e-seen, namespace: default}\ninvolvedObject: {kind: ConfigMap, namespace: default, name: x}\nreason: Seen\nmessage: a record\ntype: Normal\n",
			"create", "-f", "-")
	})

	t.Run("3: unlabeled is denied in the public cloud too", func(t *testing.T) {
		denied(t, "ConfigMap default/notes has no sensitivity", "public", "", "create", "configmap", "notes", "-n", "default", "--from-literal=a=b")
		denied(t, "PersistentVolume e2e-disk has no sensitivity", "public",
			"apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: e2e-disk}\nspec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/e2e-disk}}\n",
			"create", "-f", "-")
		// What kube-controller-manager makes in a labeled Namespace inherits its floor.
		cleanup(t, "public", "namespace", "e2e-labeled")
		ok(t, "public", "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e-labeled, labels: {strata.dev/sensitivity: public}}\n", "create", "-f", "-")
		waitUntil(t, 30*time.Second, func() bool {
			_, errSA := kubectl(t, lc, "public", "", "get", "serviceaccount", "default", "-n", "e2e-labeled")
			_, errCM := kubectl(t, lc, "public", "", "get", "configmap", "kube-root-ca.crt", "-n", "e2e-labeled")
			return errSA == nil && errCM == nil
		}, "kube-controller-manager could not make ServiceAccount default and ConfigMap kube-root-ca.crt in a labeled Namespace")
	})

	t.Run("4: a workload is as sensitive as its pod template", func(t *testing.T) {
		denied(t, "Deployment ml-training/trainer is restricted (label on its pod template)", "public", `apiVersion: apps/v1
kind: Deployment
metadata: {name: trainer, namespace: ml-training, labels: {strata.dev/sensitivity: public}}
spec:
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer, strata.dev/sensitivity: restricted}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
      - name: c
        image: registry.example.com/finance-ai/model-training:2.3.7
        resources: {limits: {cpu: 100m, memory: 64Mi}}
`, "apply", "-f", "-")
	})

	t.Run("5: an object whose label is not allowed can still finish dying", func(t *testing.T) {
		ok(t, "public", `apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  namespace: ml-training
  labels: {strata.dev/sensitivity: restricted}
  annotations: {strata.dev/break-glass: "INC-4711 e2e: a restricted object to delete"}
  finalizers: [e2e.strata.dev/hold]
data: {ledger: books}
`, append([]string{"create", "-f", "-"}, oncall...)...)
		ok(t, "public", "", "delete", "configmap", "held", "-n", "ml-training", "--wait=false")
		ok(t, "public", "", "patch", "configmap", "held", "-n", "ml-training", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
		waitUntil(t, 10*time.Second, func() bool {
			out, _ := kubectl(t, lc, "public", "", "get", "configmap", "held", "-n", "ml-training", "--ignore-not-found", "-o", "name")
			return strings.TrimSpace(out) == ""
		}, "ConfigMap held is still there after its finalizer was removed")
	})
}
