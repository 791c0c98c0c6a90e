package approval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/source"
)

// chainRepo is a config repository for gate tests: environment prod on
// three clusters, a restricted and a public namespace.
type chainRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	when time.Time
}

const chainEnv = "prod"

func chainStrata(extra string) string {
	return `apiVersion: strata.dev/v1alpha1
kind: Config
environments:
  prod:
    path: overlays/prod
    clusters:
      - {name: public,  tier: public-cloud}
      - {name: private, tier: private-cloud}
      - {name: onprem,  tier: on-prem}
` + extra
}

func chainTrust(t *testing.T, names ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: strata.dev/v1alpha1\nkind: Trust\nreviewers:\n")
	for _, n := range names {
		b.WriteString("  - name: " + n + "\n    email: " + n + "@bank.example\n    publicKey: |\n")
		for _, l := range strings.Split(strings.TrimSpace(key(t, n).pub), "\n") {
			b.WriteString("      " + l + "\n")
		}
	}
	return b.String()
}

// objects returns the overlay with a ledger (restricted) and a model (public).
func objects(ledger, model string) map[string]string {
	return map[string]string{
		"overlays/prod/kustomization.yaml": "resources: [ns.yaml, ledger.yaml, model.yaml]\n",
		"overlays/prod/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: vault\n  labels:\n    strata.dev/sensitivity: restricted\n---\n" +
			"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: open\n  labels:\n    strata.dev/sensitivity: public\n",
		"overlays/prod/ledger.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ledger\n  namespace: vault\ndata:\n  value: " + ledger + "\n",
		"overlays/prod/model.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: model\n  namespace: open\ndata:\n  value: " + model + "\n",
	}
}

func newChainRepo(t *testing.T) *chainRepo {
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &chainRepo{t: t, dir: dir, repo: r, when: now.Add(-24 * time.Hour)}
}

// commit writes files ("" deletes) and commits them as author (an email).
func (g *chainRepo) commit(author, msg string, files ...map[string]string) string {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, fs := range files {
		for p, content := range fs {
			full := filepath.Join(g.dir, p)
			if content == "" {
				_ = os.Remove(full)
				continue
			}
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				g.t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				g.t.Fatal(err)
			}
		}
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		g.t.Fatal(err)
	}
	g.when = g.when.Add(time.Minute)
	sig := &object.Signature{Name: author, Email: author, When: g.when}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		g.t.Fatal(err)
	}
	return h.String()
}

// approve stores reviewer's approval of commit's tree, signed at signed.
func (g *chainRepo) approve(reviewer, commit string, signed time.Time, lifetime time.Duration) {
	g.t.Helper()
	c, err := g.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		g.t.Fatal(err)
	}
	st := Statement{Tree: c.TreeHash.String(), Environment: chainEnv, Reviewer: reviewer, Time: signed}
	if lifetime > 0 {
		st.Expires = signed.Add(lifetime)
	}
	e := sign(g.t, reviewer, st)
	if err := (Store{}).Add(g.repo, c.TreeHash.String(), chainEnv, e); err != nil {
		g.t.Fatal(err)
	}
}

func (g *chainRepo) chain(pinned ...string) *Chain {
	g.t.Helper()
	r, err := source.Open(context.Background(), g.dir, source.OpenOptions{})
	if err != nil {
		g.t.Fatal(err)
	}
	var pubs [][]byte
	for _, n := range pinned {
		pubs = append(pubs, []byte(key(g.t, n).pub))
	}
	pin, err := PinKeys(pubs...)
	if err != nil {
		g.t.Fatal(err)
	}
	return &Chain{Repo: r, Env: chainEnv, Pin: pin}
}

func decide(t *testing.T, c *Chain, commit string, at time.Time) *Verdict {
	t.Helper()
	v, err := c.Decide(commit, at)
	if err != nil {
		t.Fatalf("Decide(%s): %v", commit[:8], err)
	}
	return v
}

func wantVerdict(t *testing.T, v *Verdict, allowed bool, contains ...string) {
	t.Helper()
	if v.Allowed != allowed {
		t.Errorf("Allowed = %v, want %v: %s", v.Allowed, allowed, v.Message)
	}
	for _, s := range contains {
		if !strings.Contains(v.Message, s) {
			t.Errorf("message %q lacks %q", v.Message, s)
		}
	}
}

var gated = chainStrata("approvals: {public: 0, internal: 1, confidential: 1, restricted: 2}\n")

// root commits an approved first revision (alice and bob, pinned).
func (g *chainRepo) root() string {
	root := g.commit("ops@bank.example", "first", map[string]string{"strata.yaml": gated, ".strata/trust.yaml": chainTrust(g.t, "alice", "bob", "carol")}, objects("v1", "v1"))
	g.approve("alice", root, g.when, 0)
	g.approve("bob", root, g.when, 0)
	return root
}

// Without a root of trust pinned outside the repository, a revision with
// no approved revision before it would be judged by its own trust file —
// whoever writes the repository would pick the reviewers. Refused.
func TestUnpinnedRootIsRefused(t *testing.T) {
	g := newChainRepo(t)
	root := g.root()
	wantVerdict(t, decide(t, g.chain(), root, now), false, "no root of trust is pinned", "--trusted-keys")
	v := decide(t, g.chain("alice", "bob"), root, now)
	wantVerdict(t, v, true, "restricted change needs 2 approvals, has 2")
	if !v.Pinned || !v.Enforced || v.Base != "" {
		t.Errorf("verdict %+v: want pinned, enforced, no base", v)
	}
	// Keys the operator did not pin do not count at the root, whatever the
	// repository's trust file says.
	wantVerdict(t, decide(t, g.chain("alice", "carol"), root, now), false, "has 1: alice")
}

// A commit that carries approvals but not enough of them is no base: the
// next commit on top is judged from the last revision that passed, so the
// restricted change in between still needs its two approvals.
func TestUnapprovedAncestorIsNotABase(t *testing.T) {
	g := newChainRepo(t)
	root := g.root()
	bad := g.commit("mallory@bank.example", "ledger v2", objects("v2", "v1"))
	g.approve("carol", bad, g.when, 0) // one of two
	top := g.commit("mallory@bank.example", "model v2", objects("v2", "v2"))
	c := g.chain("alice", "bob")
	wantVerdict(t, decide(t, c, bad, now), false, "restricted change needs 2 approvals, has 1: carol")
	v := decide(t, c, top, now)
	wantVerdict(t, v, false, "restricted change needs 2 approvals, has 0")
	if v.Base != root {
		t.Errorf("base = %s, want the approved root %s", v.Base, root)
	}
}

// A restricted object committed under a window's component while the
// window is closed must be approved when it is committed, not slip in
// when the window opens.
func TestWindowComponentNeedsApprovalWhenCommitted(t *testing.T) {
	g := newChainRepo(t)
	windowed := chainStrata(`approvals: {public: 0, internal: 1, confidential: 1, restricted: 2}
windows:
  month-end:
    environments: [prod]
    component: overlays/components/peak
    lastDaysOfMonth: 1
`)
	peak := func(extra string) map[string]string {
		return map[string]string{"overlays/components/peak/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [extra.yaml]\n",
			"overlays/components/peak/extra.yaml": extra}
	}
	publicExtra := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: peak\n  namespace: open\ndata:\n  replicas: \"3\"\n"
	root := g.commit("ops@bank.example", "first", map[string]string{"strata.yaml": windowed, ".strata/trust.yaml": chainTrust(t, "alice", "bob")},
		objects("v1", "v1"), peak(publicExtra))
	g.approve("alice", root, g.when, 0)
	g.approve("bob", root, g.when, 0)
	restrictedExtra := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: peak-ledger-export\n  namespace: vault\ndata:\n  dump: all\n"
	sneaky := g.commit("mallory@bank.example", "tune peak capacity", peak(restrictedExtra))
	closed := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) // the window is shut
	v := decide(t, g.chain("alice", "bob"), sneaky, closed)
	wantVerdict(t, v, false, "restricted change needs 2 approvals")
	if !strings.Contains(strings.Join(v.Reasons, "\n"), "month-end") {
		t.Errorf("reasons %q do not name the window", v.Reasons)
	}
}

// Four eyes: the author of a change cannot approve it.
func TestAuthorCannotApproveOwnChange(t *testing.T) {
	g := newChainRepo(t)
	g.root()
	change := g.commit("alice@bank.example", "ledger v2", objects("v2", "v1"))
	g.approve("alice", change, g.when, 0)
	g.approve("bob", change, g.when, 0)
	c := g.chain("alice", "bob")
	v := decide(t, c, change, now)
	wantVerdict(t, v, false, "has 1: bob", "alice authored commit", "four eyes")
	g.approve("carol", change, g.when, 0)
	wantVerdict(t, decide(t, c, change, now), true, "has 2: bob, carol")
}

// A change of the trust file is approved under the old one, and a change
// cannot switch off the gate that judges it.
func TestGovernanceChangesAreJudgedByTheBase(t *testing.T) {
	g := newChainRepo(t)
	g.commit("ops@bank.example", "first", map[string]string{"strata.yaml": gated, ".strata/trust.yaml": chainTrust(t, "alice", "bob")}, objects("v1", "v1"))
	root := g.commit("ops@bank.example", "first", nil)
	g.approve("alice", root, g.when, 0)
	g.approve("bob", root, g.when, 0)
	c := g.chain("alice", "bob")
	addMallory := g.commit("mallory@bank.example", "add a reviewer", map[string]string{".strata/trust.yaml": chainTrust(t, "alice", "bob", "mallory")})
	g.approve("mallory", addMallory, g.when, 0)
	g.approve("alice", addMallory, g.when, 0)
	wantVerdict(t, decide(t, c, addMallory, now), false, "restricted change needs 2 approvals, has 1: alice", "mallory: not a reviewer")
	off := g.commit("mallory@bank.example", "gate off", map[string]string{"strata.yaml": chainStrata("approvals: {public: 0, internal: 0, confidential: 0, restricted: 0, enforce: false}\n")})
	v := decide(t, c, off, now)
	wantVerdict(t, v, false, "restricted change needs 2 approvals")
	if !v.Enforced {
		t.Error("the head's own enforce: false switched off the gate that judges it")
	}
}

// Rolling back to a tree that passed the gate needs no new approval, even
// once the approvals it passed with have expired.
func TestRollbackToApprovedTreeNeedsNoNewApproval(t *testing.T) {
	g := newChainRepo(t)
	root := g.root()
	bad := g.commit("dave@bank.example", "ledger v2", objects("v2", "v1"))
	g.approve("alice", bad, g.when, 0)
	g.approve("bob", bad, g.when, 0)
	revert := g.commit("oncall@bank.example", "Revert \"ledger v2\"", objects("v1", "v1"))
	later := now.Add(60 * 24 * time.Hour) // every approval has expired
	v := decide(t, g.chain("alice", "bob"), revert, later)
	wantVerdict(t, v, true, "applied and approved before")
	if v.Restores != root {
		t.Errorf("Restores = %s, want %s", v.Restores, root)
	}
}

// An approval that claims to last a year counts for approvals.maxLifetime
// (default 30 days) only.
func TestApprovalLifetimeIsCapped(t *testing.T) {
	g := newChainRepo(t)
	g.root()
	change := g.commit("dave@bank.example", "ledger v2", objects("v2", "v1"))
	g.approve("alice", change, g.when, 365*24*time.Hour)
	g.approve("bob", change, g.when, 365*24*time.Hour)
	c := g.chain("alice", "bob")
	wantVerdict(t, decide(t, c, change, g.when.Add(time.Hour)), true)
	wantVerdict(t, decide(t, c, change, g.when.Add(40*24*time.Hour)), false, "expired", "approvals.maxLifetime")
}

// No trust file and no approvals table: the gate is on (defaults), not off.
func TestGateIsOnByDefault(t *testing.T) {
	g := newChainRepo(t)
	c0 := g.commit("ops@bank.example", "first", map[string]string{"strata.yaml": chainStrata("")}, objects("v1", "v1"))
	v := decide(t, g.chain("alice"), c0, now)
	wantVerdict(t, v, false, "restricted change needs 2 approvals, has 0")
	off := g.commit("ops@bank.example", "explicitly off", map[string]string{"strata.yaml": chainStrata("approvals: {public: 0, internal: 0, confidential: 0, restricted: 0, enforce: false}\n")})
	v = decide(t, g.chain(), off, now)
	wantVerdict(t, v, true, "approvals are not enforced")
	if v.Enforced {
		t.Error("Enforced = true for an explicitly disabled gate")
	}
	if _, err := config.Parse("x", []byte(chainStrata("approvals: {public: 0, internal: 0, confidential: 0, restricted: 0}\n"))); err == nil {
		t.Error("all-zero thresholds validated without enforce: false")
	}
}

// A tree applied while the gate was off was never approved: returning to
// it once the gate is on is no rollback that skips approval.
func TestTreeFromUngatedTimesIsNoRollbackTarget(t *testing.T) {
	g := newChainRepo(t)
	off := chainStrata("approvals: {public: 0, internal: 0, confidential: 0, restricted: 0, enforce: false}\n")
	root := g.commit("ops@bank.example", "gate off", map[string]string{"strata.yaml": off, ".strata/trust.yaml": chainTrust(t, "alice", "bob")}, objects("v1", "v1"))
	g.approve("alice", root, g.when, 0)
	g.approve("bob", root, g.when, 0)
	g.commit("ops@bank.example", "ledger dump, ungated", objects("dump", "v1"))
	on := g.commit("ops@bank.example", "gate on", map[string]string{"strata.yaml": gated}, objects("v1", "v1"))
	g.approve("alice", on, g.when, 0)
	g.approve("bob", on, g.when, 0)
	c := g.chain("alice", "bob")
	wantVerdict(t, decide(t, c, on, now), true)
	back := g.commit("mallory@bank.example", "back to the ungated ledger", map[string]string{"strata.yaml": off}, objects("dump", "v1"))
	wantVerdict(t, decide(t, c, back, now), false, "restricted change needs 2 approvals")
}
