package plan_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/plan"
)

// A workload labeled public whose pod template is labeled restricted is
// restricted (its Pods would be): the plan places it on-prem and asks for
// the approvals of a restricted change, as the webhook would judge it.
func TestComparePodTemplateCounts(t *testing.T) {
	base := mustState(t, baseCommit, baseObjects)
	head := mustState(t, headCommit, with(map[string]string{"web-trainer.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: trainer
  namespace: web
  labels: {strata.dev/sensitivity: public}
spec:
  selector: {matchLabels: {app: trainer}}
  template:
    metadata:
      labels: {app: trainer, strata.dev/sensitivity: restricted}
    spec:
      containers: [{name: c, image: registry.example.com/trainer:1}]
`}))
	got := plan.Compare("prod", base, head, map[config.Sensitivity]int{config.Public: 0, config.Restricted: 2})
	want := []change{
		{"public", plan.Changed, "Namespace web", ""}, // its placement reason names onprem too
		{"onprem", plan.Added, "Deployment web/trainer", ""},
		{"onprem", plan.MovedIn, "Namespace web", "public"},
	}
	if diff := cmp.Diff(want, changesOf(got)); diff != "" {
		t.Fatalf("changes (-want +got):\n%s", diff)
	}
	if got.Highest != config.Restricted || got.Approvals != 2 {
		t.Errorf("Highest, Approvals = %q, %d; want restricted, 2", got.Highest, got.Approvals)
	}
}
