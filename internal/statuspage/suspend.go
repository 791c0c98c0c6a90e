package statuspage

import (
	"fmt"
	"strings"

	"github.com/strata-gitops/strata/internal/labels"
)

// suspensionNotes says that on-call froze the cluster (strata suspend),
// with who, why and the command that lifts it, and which objects strata
// leaves alone although they differ from git (strata.dev/reconcile:
// disabled). Both are deliberate, so they need attention, not alarm.
func suspensionNotes(env string, c Cluster) []note {
	var out []note
	switch {
	case c.Suspension != nil:
		s := c.Suspension
		out = append(out, note{level: levelWarn, brief: "suspended by " + s.By,
			text: fmt.Sprintf("%s — nothing is applied, corrected or pruned here; lift it with strata resume --env %s --cluster %s", s, env, c.Name)})
	case c.Status.Suspended != nil && c.Reconciled:
		out = append(out, note{level: levelWarn, brief: "resumed, waiting for the reconciler",
			text: "the suspension was lifted; strata reconciles the cluster at its next tick"})
	}
	if n := c.Status.HeldTotal; n > 0 && c.Reconciled {
		out = append(out, note{level: levelWarn, brief: fmt.Sprintf("%d %s frozen", n, plural(n, "object", "objects")),
			text: fmt.Sprintf("%d %s differ from git and are left as they are (%s: %s): %s", n, plural(n, "object", "objects"),
				labels.Reconcile, labels.ReconcileDisabled, strings.Join(c.Status.Held, ", "))})
	}
	return out
}
