package statuspage

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/inventory"
)

// A suspended cluster is amber with who, why and the resume command; the
// objects left alone (strata.dev/reconcile: disabled) are named.
func TestAmberSuspendedClusterAndHeldObjects(t *testing.T) {
	snap := greenProd()
	onprem := &snap.Environments[0].Clusters[2]
	onprem.Suspension = &inventory.Suspension{By: "alice@example.com", At: now.Add(-10 * time.Minute), Reason: "INC-4711 ledger-db hand fix"}
	onprem.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: inventory.ReasonSuspended}}
	priv := &snap.Environments[0].Clusters[1]
	priv.Status.Held, priv.Status.HeldTotal = []string{"Deployment risk/dashboard"}, 1

	_, body := get(t, snap, nil)
	class, headline := verdictOf(t, body)
	if class != "warn" {
		t.Errorf("verdict = %s %q, want warn", class, headline)
	}
	mustContain(t, body, "suspended by alice@example.com", "INC-4711 ledger-db hand fix",
		"strata resume --env prod --cluster onprem", "1 object frozen", "Deployment risk/dashboard",
		"strata.dev/reconcile: disabled")
	if n := strings.Count(body, `<tr class="row warn">`); n != 2 {
		t.Errorf("%d amber rows, want 2 (onprem suspended, private holding an object)", n)
	}
}
