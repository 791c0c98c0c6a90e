package desired

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/provider"

	"github.com/strata-gitops/strata/internal/labels"
)

// The render path reads the same templates as the webhook: the pod
// template of a workload, the job and pod templates of a CronJob.
func TestObjectsReadTemplateLabels(t *testing.T) {
	rf := provider.NewDefaultDepProvider().GetResourceFactory()
	res, err := rf.SliceFromBytes([]byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app, labels: {strata.dev/sensitivity: public}}
spec:
  template:
    metadata: {labels: {strata.dev/sensitivity: restricted}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: app}
spec:
  jobTemplate:
    metadata: {labels: {strata.dev/sensitivity: internal}}
    spec:
      template:
        spec: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: app}
`))
	if err != nil {
		t.Fatal(err)
	}
	objs := Objects(res)
	want := [][]map[string]string{
		{{labels.Sensitivity: "restricted"}},
		{{labels.Sensitivity: "internal"}, nil},
		nil,
	}
	for i, o := range objs {
		if diff := cmp.Diff(want[i], o.TemplateLabels); diff != "" {
			t.Errorf("%s: TemplateLabels (-want +got):\n%s", o, diff)
		}
	}
}
