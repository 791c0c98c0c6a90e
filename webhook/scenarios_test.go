package webhook

import (
	"context"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testGroup serves custom resources called Event and Lease: not the control
// plane's records, whatever their kind says.
const testGroup = "strata-test.example.com"

// fixtureSetup is created before strata's registration: the Namespaces the
// scenarios use (labeled as the handler tests' Namespace lookup says) and
// the custom resource definitions.
var fixtureSetup = []string{
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: ledger, labels: {strata.dev/sensitivity: restricted}}\n",
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: ml-training, labels: {strata.dev/sensitivity: public}}\n",
	// Wrongly labeled restricted: the scenario below corrects it.
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: fraud, labels: {strata.dev/sensitivity: restricted}}\n",
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: tools}\n",
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: just-made}\n",
	// Impersonated users need RBAC to get as far as admission.
	"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: oncall}\n" +
		"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n" +
		"subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: platform-oncall}]\n",
	crdDoc("Event", "events"),
	crdDoc("Lease", "leases"),
}

func crdDoc(kind, plural string) string {
	return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ` + plural + `.` + testGroup + `}
spec:
  group: ` + testGroup + `
  scope: Namespaced
  names: {kind: ` + kind + `, plural: ` + plural + `, singular: ` + strings.ToLower(kind) + `}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`
}

type scenario struct {
	name string
	// op, kind and objName identify the request the scenario captures.
	op, kind, objName string
	as                *rest.ImpersonationConfig
	do                func(ctx context.Context, t *testing.T, c client.Client) error
}

func create(doc string, opts ...client.CreateOption) func(context.Context, *testing.T, client.Client) error {
	return func(ctx context.Context, t *testing.T, c client.Client) error {
		return c.Create(ctx, obj(t, doc), opts...)
	}
}

// updateCM reads a ConfigMap, changes it and writes it back.
func updateCM(ns, name string, change func(u *unstructured.Unstructured)) func(context.Context, *testing.T, client.Client) error {
	return func(ctx context.Context, t *testing.T, c client.Client) error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return err
		}
		change(u)
		return c.Update(ctx, u)
	}
}

// terminating creates a ConfigMap held by a finalizer and deletes it, then
// changes it: the UPDATE of an object being deleted.
func terminating(name string, change func(u *unstructured.Unstructured)) func(context.Context, *testing.T, client.Client) error {
	return func(ctx context.Context, t *testing.T, c client.Client) error {
		u := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+name+", namespace: ledger, finalizers: [example.com/hold]}\ndata: {ledger: books}\n")
		if err := c.Create(ctx, u); err != nil {
			return err
		}
		if err := c.Delete(ctx, u); err != nil {
			return err
		}
		return updateCM("ledger", name, change)(ctx, t, c)
	}
}

// restrictedLedger is a restricted Deployment named name in Namespace
// ledger, with extra metadata lines.
func restrictedLedger(name, extra string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: ledger
  labels: {strata.dev/sensitivity: restricted}
%sspec:
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      containers: [{name: ledger, image: registry.onprem.example.internal/finance-ai/ledger:7.2.5}]
`, name, extra)
}

var fixtureScenarios = []scenario{
	{name: "deployment-create-restricted", op: "CREATE", kind: "Deployment", objName: "ledger",
		do: create(restrictedLedger("ledger", ""))},
	{name: "deployment-create-restricted-dry-run", op: "CREATE", kind: "Deployment", objName: "ledger-dry",
		do: create(restrictedLedger("ledger-dry", ""), client.DryRunAll)},
	{name: "deployment-create-restricted-break-glass", op: "CREATE", kind: "Deployment", objName: "ledger-glass",
		as: &rest.ImpersonationConfig{UserName: "alice", Groups: []string{"platform-oncall", "system:authenticated"}},
		do: create(restrictedLedger("ledger-glass", "  annotations: {strata.dev/break-glass: \"INC-4711 ledger failover drill\"}\n"))},
	{name: "deployment-create-restricted-break-glass-dry-run", op: "CREATE", kind: "Deployment", objName: "ledger-glass-dry",
		as: &rest.ImpersonationConfig{UserName: "alice", Groups: []string{"platform-oncall", "system:authenticated"}},
		do: create(restrictedLedger("ledger-glass-dry", "  annotations: {strata.dev/break-glass: \"INC-4711 ledger failover drill\"}\n"), client.DryRunAll)},
	{name: "deployment-create-public-with-restricted-pod-template", op: "CREATE", kind: "Deployment", objName: "trainer",
		do: create(`apiVersion: apps/v1
kind: Deployment
metadata: {name: trainer, namespace: ml-training, labels: {strata.dev/sensitivity: public}}
spec:
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer, strata.dev/sensitivity: restricted}}
    spec:
      containers: [{name: trainer, image: registry.example.com/finance-ai/model-training:2.3.7}]
`)},
	{name: "cronjob-create-public-with-restricted-job-pod-template", op: "CREATE", kind: "CronJob", objName: "nightly",
		do: create(`apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ml-training, labels: {strata.dev/sensitivity: public}}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {strata.dev/sensitivity: restricted}}
        spec:
          restartPolicy: OnFailure
          containers: [{name: train, image: registry.example.com/finance-ai/model-training:2.3.7}]
`)},
	{name: "namespace-create-unlabeled", op: "CREATE", kind: "Namespace", objName: "scratch",
		do: create("apiVersion: v1\nkind: Namespace\nmetadata: {name: scratch}\n")},
	{name: "namespace-update-relabel-restricted-to-confidential", op: "UPDATE", kind: "Namespace", objName: "fraud",
		do: func(ctx context.Context, t *testing.T, c client.Client) error {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("Namespace")
			if err := c.Get(ctx, client.ObjectKey{Name: "fraud"}, u); err != nil {
				return err
			}
			l := u.GetLabels()
			l["strata.dev/sensitivity"] = "confidential"
			u.SetLabels(l)
			return c.Update(ctx, u)
		}},
	{name: "configmap-create-unlabeled-in-unlabeled-namespace", op: "CREATE", kind: "ConfigMap", objName: "notes",
		do: create("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes, namespace: scratch}\ndata: {a: b}\n")},
	{name: "configmap-create-unlabeled-in-tools", op: "CREATE", kind: "ConfigMap", objName: "notes",
		do: create("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes, namespace: tools}\ndata: {a: b}\n")},
	{name: "configmap-create-public-in-just-made-namespace", op: "CREATE", kind: "ConfigMap", objName: "readme",
		do: create("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: readme, namespace: just-made, labels: {strata.dev/sensitivity: public}}\ndata: {a: b}\n")},
	{name: "event-create-core", op: "CREATE", kind: "Event", objName: "scratch.1",
		do: create(`apiVersion: v1
kind: Event
metadata: {name: scratch.1, namespace: scratch}
involvedObject: {kind: ConfigMap, namespace: scratch, name: notes}
reason: Seen
message: the control plane's record
type: Normal
`)},
	{name: "event-create-events-k8s-io", op: "CREATE", kind: "Event", objName: "scratch.2",
		do: create(`apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: scratch.2, namespace: scratch}
eventTime: "2026-12-04T10:00:00.000000Z"
reportingController: example.com/controller
reportingInstance: controller-1
action: Seen
reason: Seen
regarding: {kind: ConfigMap, namespace: scratch, name: notes}
type: Normal
`)},
	{name: "lease-create-coordination", op: "CREATE", kind: "Lease", objName: "leader",
		do: create("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: leader, namespace: scratch}\nspec: {holderIdentity: a}\n")},
	{name: "event-create-custom-resource-restricted", op: "CREATE", kind: "Event", objName: "exfil",
		do: create("apiVersion: " + testGroup + "/v1\nkind: Event\nmetadata: {name: exfil, namespace: ml-training, labels: {strata.dev/sensitivity: restricted}}\nspec: {ledger: the books}\n")},
	{name: "lease-create-custom-resource-restricted", op: "CREATE", kind: "Lease", objName: "exfil",
		do: create("apiVersion: " + testGroup + "/v1\nkind: Lease\nmetadata: {name: exfil, namespace: ml-training, labels: {strata.dev/sensitivity: restricted}}\nspec: {ledger: the books}\n")},
	{name: "configmap-update-terminating-only-removes-finalizer", op: "UPDATE", kind: "ConfigMap", objName: "held",
		do: terminating("held", func(u *unstructured.Unstructured) { u.SetFinalizers(nil) })},
	{name: "configmap-update-terminating-removes-finalizer-and-changes-data", op: "UPDATE", kind: "ConfigMap", objName: "held-changed",
		do: terminating("held-changed", func(u *unstructured.Unstructured) {
			u.SetFinalizers(nil)
			_ = unstructured.SetNestedField(u.Object, "rewritten", "data", "ledger")
		})},
	{name: "clusterrole-create-unlabeled", op: "CREATE", kind: "ClusterRole", objName: "reader",
		do: create("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: [{apiGroups: [''], resources: [configmaps], verbs: [get]}]\n")},
	// The apiserver allocates a Service's ClusterIP as an IPAddress, through
	// admission: denying it would deny every Service.
	{name: "ipaddress-create-for-a-service", op: "CREATE", kind: "IPAddress", objName: "*",
		do: create("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ml-training, labels: {strata.dev/sensitivity: public}}\nspec: {ports: [{port: 80}]}\n")},
	{name: "persistentvolume-create-unlabeled", op: "CREATE", kind: "PersistentVolume", objName: "disk-1",
		do: create("apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: disk-1}\nspec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/disk-1}}\n")},
	// What a dynamic provisioner creates for a claim: an unlabeled volume
	// bound to the claim by spec.claimRef.
	{name: "persistentvolume-create-provisioned-for-ledger-claim", op: "CREATE", kind: "PersistentVolume", objName: "pvc-ledger-data",
		do: create(provisionedVolume("pvc-ledger-data", "ledger"))},
	{name: "persistentvolume-create-provisioned-for-ml-training-claim", op: "CREATE", kind: "PersistentVolume", objName: "pvc-ml-data",
		do: create(provisionedVolume("pvc-ml-data", "ml-training"))},
}

// provisionedVolume is a PersistentVolume as a CSI provisioner creates it
// for the claim "data" in namespace ns: no labels, bound by claimRef.
func provisionedVolume(name, ns string) string {
	return "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: " + name + ", annotations: {pv.kubernetes.io/provisioned-by: csi.example.com}}\n" +
		"spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Delete, storageClassName: standard,\n" +
		"  claimRef: {apiVersion: v1, kind: PersistentVolumeClaim, namespace: " + ns + ", name: data, uid: 6b1c2f4e-0000-4000-8000-000000000001},\n" +
		"  csi: {driver: csi.example.com, volumeHandle: " + name + "}}\n"
}

func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
