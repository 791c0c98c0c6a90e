package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
)

// Each test here performs one of the ways around the webhook of issue 13
// (items 1-6) with the AdmissionReview kube-apiserver sends
// (testdata/admission, see TestAdmissionFixturesAreWhatTheAPIServerSends).
// Every one of them failed before placement and the webhook shared one
// decision core.

// attackLookup is the live Namespaces of the attack cluster: fraud still
// carries a wrong restricted label, just-made is not in the cache yet and
// the apiserver did not answer.
func attackLookup(name string) (map[string]string, bool) {
	switch name {
	case "ledger", "fraud":
		return map[string]string{"strata.dev/sensitivity": "restricted"}, true
	case "ml-training":
		return map[string]string{"strata.dev/sensitivity": "public"}, true
	case "scratch", "tools", "default":
		return map[string]string{"kubernetes.io/metadata.name": name}, true
	}
	return nil, false
}

type attackRecords struct {
	mu         sync.Mutex
	audit      []audit.Event
	breakGlass []BreakGlassEvent
	reg        *prometheus.Registry
}

func (r *attackRecords) Record(e audit.Event) {
	r.mu.Lock()
	r.audit = append(r.audit, e)
	r.mu.Unlock()
}
func (r *attackRecords) RecordBreakGlass(_ context.Context, e BreakGlassEvent) {
	r.mu.Lock()
	r.breakGlass = append(r.breakGlass, e)
	r.mu.Unlock()
}

// counted sums the counters of the webhook's metrics.
func (r *attackRecords) counted(t *testing.T) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// attackHandler is the webhook of one cluster of tier with strata.yaml's
// defaults, as `strata webhook` builds it.
func attackHandler(tier config.Tier) (*Handler, *attackRecords) {
	cfg := &config.Config{}
	cfg.SetDefaults()
	rec := &attackRecords{reg: prometheus.NewRegistry()}
	return &Handler{
		Checker:    NewChecker(cfg, map[config.Tier]string{config.PublicCloud: "public", config.PrivateCloud: "private", config.OnPrem: "onprem"}[tier], tier),
		Namespaces: attackLookup, BreakGlassGroups: []string{"platform-oncall"},
		Recorder: rec, Audit: rec, Metrics: NewMetrics(rec.reg), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, rec
}

// admit sends the fixture to h as the apiserver does and returns the answer.
func admit(t *testing.T, h http.Handler, fixture string) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "admission", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Response == nil {
		t.Fatalf("%s: HTTP %d: %s", fixture, rec.Code, rec.Body)
	}
	return out.Response
}

type attack struct {
	tier    config.Tier
	fixture string
	allowed bool
	// say are parts of the denial message (why and what to do).
	say []string
}

func runAttacks(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(string(a.tier)+"/"+a.fixture, func(t *testing.T) {
			h, _ := attackHandler(a.tier)
			resp := admit(t, h, a.fixture)
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			if resp.Allowed != a.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", resp.Allowed, a.allowed, msg)
			}
			for _, s := range a.say {
				if !strings.Contains(msg, s) {
					t.Errorf("denial %q does not say %q", msg, s)
				}
			}
		})
	}
}

// Item 1: the apiserver sets request.namespace to a Namespace's own name.
func TestAttackNamespaceRequestsAreClusterScoped(t *testing.T) {
	runAttacks(t, []attack{
		{tier: config.PrivateCloud, fixture: "namespace-create-unlabeled", allowed: true},
		{tier: config.OnPrem, fixture: "namespace-create-unlabeled", allowed: true},
		// The cached old label must not be the Namespace's own floor.
		{tier: config.PrivateCloud, fixture: "namespace-update-relabel-restricted-to-confidential", allowed: true},
		{tier: config.PublicCloud, fixture: "namespace-update-relabel-restricted-to-confidential",
			say: []string{"Namespace fraud is confidential (label on the object)", "allowed only in [private-cloud on-prem]"}},
	})
}

// Item 2: exemptions by exact group/version/kind, not by kind alone.
func TestAttackExemptionByKindAlone(t *testing.T) {
	runAttacks(t, []attack{
		{tier: config.PublicCloud, fixture: "event-create-custom-resource-restricted",
			say: []string{"Event ml-training/exfil is restricted", "tier public-cloud"}},
		{tier: config.PublicCloud, fixture: "lease-create-custom-resource-restricted",
			say: []string{"Lease ml-training/exfil is restricted"}},
		{tier: config.PublicCloud, fixture: "event-create-core", allowed: true},
		{tier: config.PublicCloud, fixture: "event-create-events-k8s-io", allowed: true},
		{tier: config.PublicCloud, fixture: "lease-create-coordination", allowed: true},
	})
}

// Item 3: fail closed in every tier; a failed Namespace lookup denies.
func TestAttackUnlabeledPassesInPublicCloud(t *testing.T) {
	runAttacks(t, []attack{
		{tier: config.PublicCloud, fixture: "configmap-create-unlabeled-in-unlabeled-namespace",
			say: []string{"ConfigMap scratch/notes has no sensitivity", "label the object or the Namespace"}},
		{tier: config.PublicCloud, fixture: "configmap-create-public-in-just-made-namespace",
			say: []string{"Namespace just-made could not be read", "retry"}},
		{tier: config.PublicCloud, fixture: "persistentvolume-create-unlabeled",
			say: []string{"PersistentVolume disk-1 has no sensitivity", "need their own strata.dev/sensitivity label"}},
		// A provisioned volume is as sensitive as its claim's Namespace.
		{tier: config.PublicCloud, fixture: "persistentvolume-create-provisioned-for-ml-training-claim", allowed: true},
		{tier: config.PublicCloud, fixture: "persistentvolume-create-provisioned-for-ledger-claim",
			say: []string{"PersistentVolume pvc-ledger-data is restricted (floor of Namespace ledger)", "allowed only in [on-prem]"}},
		{tier: config.OnPrem, fixture: "persistentvolume-create-provisioned-for-ledger-claim", allowed: true},
		{tier: config.PublicCloud, fixture: "clusterrole-create-unlabeled", allowed: true},
		// The apiserver's own allocation of a Service's ClusterIP.
		{tier: config.PublicCloud, fixture: "ipaddress-create-for-a-service", allowed: true},
	})
}

// Item 4: a workload is as sensitive as its pod template.
func TestAttackPodTemplateNotJudged(t *testing.T) {
	runAttacks(t, []attack{
		{tier: config.PublicCloud, fixture: "deployment-create-public-with-restricted-pod-template",
			say: []string{"Deployment ml-training/trainer is restricted (label on its pod template)", "allowed only in [on-prem]"}},
		{tier: config.PublicCloud, fixture: "cronjob-create-public-with-restricted-job-pod-template",
			say: []string{"CronJob ml-training/nightly is restricted (label on its pod template)"}},
		{tier: config.OnPrem, fixture: "deployment-create-public-with-restricted-pod-template", allowed: true},
	})
}

// Item 5: an object whose label became disallowed can still finish dying.
func TestAttackTerminatingObjectStuck(t *testing.T) {
	runAttacks(t, []attack{
		{tier: config.PublicCloud, fixture: "configmap-update-terminating-only-removes-finalizer", allowed: true},
		{tier: config.PublicCloud, fixture: "configmap-update-terminating-removes-finalizer-and-changes-data",
			say: []string{"ConfigMap ledger/held-changed is restricted (floor of Namespace ledger)"}},
	})
}

// Item 6: dry-run requests leave no audit event and no metric.
func TestAttackDryRunHasSideEffects(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		allowed bool
		records int
	}{
		{"deployment-create-restricted-dry-run", false, 0},
		{"deployment-create-restricted-break-glass-dry-run", true, 0},
		// The same requests for real are recorded.
		{"deployment-create-restricted", false, 1},
		{"deployment-create-restricted-break-glass", true, 2},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			h, rec := attackHandler(config.PublicCloud)
			if resp := admit(t, h, tc.fixture); resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%v)", resp.Allowed, tc.allowed, resp.Result)
			}
			got := len(rec.audit) + len(rec.breakGlass)
			if got != tc.records {
				t.Errorf("%d audit events and break-glass records (%+v %+v), want %d", got, rec.audit, rec.breakGlass, tc.records)
			}
			if n := rec.counted(t); (n == 0) != (tc.records == 0) {
				t.Errorf("metrics counted %v samples; want some exactly when the request is recorded", n)
			}
		})
	}
}
