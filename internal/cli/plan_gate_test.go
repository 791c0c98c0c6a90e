package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// planJSON is the part of `strata plan -o json` the approval tests read.
type planJSON struct {
	Environments []struct {
		Name            string   `json:"name"`
		Highest         string   `json:"highestSensitivity"`
		Approvals       int      `json:"approvals"`
		ApprovalReasons []string `json:"approvalReasons"`
		NotCounted      []string `json:"notCounted"`
	} `json:"environments"`
}

func planOf(t *testing.T, dir, base, head string) planJSON {
	t.Helper()
	code, out, stderr := strata(t, "plan", "--repo", dir, "--base", base, "--head", head, "--env", "prod", "-o", "json")
	if code != 0 {
		t.Fatalf("strata plan: exit %d\n%s", code, stderr)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	if len(p.Environments) != 1 {
		t.Fatalf("plan has %d environments", len(p.Environments))
	}
	return p
}

// The PR comment must not understate what the gate will ask for: a change
// of the trust file alone needs the approvals of a restricted change, as
// the gate counts it, and a reviewer who authored it is named.
func TestPlanCountsGovernanceChangesLikeTheGate(t *testing.T) {
	r := demoRepo(t)
	root := moduleRoot(t)
	copyTree(t, filepath.Join(root, ".strata"), filepath.Join(r.dir, ".strata"))
	base := r.commit(t, "trust file")
	trust := readFile(t, filepath.Join(r.dir, ".strata", "trust.yaml"))
	// test@example.com (the committer of every test commit) becomes a reviewer.
	writeFile(t, r.dir, ".strata/trust.yaml", strings.Replace(trust, "email: bob@finance-ai.example", "email: test@example.com", 1))
	head := r.commit(t, "bob's email")
	p := planOf(t, r.dir, base, head)
	e := p.Environments[0]
	if e.Highest != "restricted" || e.Approvals != 2 {
		t.Errorf("trust change: highest %q, approvals %d; want restricted, 2 (as the gate counts it)", e.Highest, e.Approvals)
	}
	if !strings.Contains(strings.Join(e.ApprovalReasons, "\n"), ".strata/trust.yaml") {
		t.Errorf("reasons %q do not name the trust file", e.ApprovalReasons)
	}
	// bob's email at base is bob@finance-ai.example: nobody is excluded yet.
	if len(e.NotCounted) != 0 {
		t.Errorf("not counted %q, want none under the base's trust file", e.NotCounted)
	}
	// A restricted change by the same person, now that base names them:
	// the plan says their approval will not count.
	f := filepath.Join(r.dir, "overlays/base/ledger/audit-trail.yaml")
	writeFile(t, r.dir, "overlays/base/ledger/audit-trail.yaml", strings.Replace(readFile(t, f), "cpu: 500m", "cpu: 750m", 1))
	next := r.commit(t, "audit-trail: more CPU")
	e = planOf(t, r.dir, head, next).Environments[0]
	if e.Approvals != 2 || len(e.NotCounted) != 1 || !strings.Contains(e.NotCounted[0], "bob authored commit") {
		t.Errorf("approvals %d, not counted %q; want 2 and bob named as the author", e.Approvals, e.NotCounted)
	}
}
