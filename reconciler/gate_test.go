package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/inventory"
)

type reviewer struct {
	name   string
	signer signature.Signer
	pub    string
}

func newReviewer(t *testing.T, name string) reviewer {
	t.Helper()
	priv, pub, err := approval.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := approval.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return reviewer{name: name, signer: s, pub: string(pub)}
}

// pinned pins the reviewers' keys as the root of trust.
func pinned(t *testing.T, rs ...reviewer) func(*Options) {
	t.Helper()
	var pubs [][]byte
	for _, r := range rs {
		pubs = append(pubs, []byte(r.pub))
	}
	pin, err := approval.PinKeys(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) { o.TrustedKeys = pin }
}

func trustYAML(rs ...reviewer) string {
	var b strings.Builder
	b.WriteString("apiVersion: strata.dev/v1alpha1\nkind: Trust\nreviewers:\n")
	for _, r := range rs {
		b.WriteString("  - name: " + r.name + "\n    publicKey: |\n")
		for _, l := range strings.Split(strings.TrimSpace(r.pub), "\n") {
			b.WriteString("      " + l + "\n")
		}
	}
	return b.String()
}

// approve signs the tree of commit for env and stores the note.
func (g *gitRepo) approve(t *testing.T, r reviewer, env, commit string) {
	t.Helper()
	c, err := g.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		t.Fatal(err)
	}
	e, err := approval.Sign(r.signer, approval.Statement{Tree: c.TreeHash.String(), Environment: env, Reviewer: r.name, Commit: commit})
	if err != nil {
		t.Fatal(err)
	}
	if err := (approval.Store{}).Add(g.repo, c.TreeHash.String(), env, e); err != nil {
		t.Fatal(err)
	}
}

func wantGate(t *testing.T, res *Result, contains ...string) {
	t.Helper()
	var ge *GateError
	if !errors.As(res.Err, &ge) {
		t.Fatalf("want a GateError, got %v", res.Err)
	}
	for _, s := range contains {
		if !strings.Contains(ge.Error(), s) {
			t.Errorf("gate message %q lacks %q", ge.Error(), s)
		}
	}
}

// The approval gate: enough signed approvals from distinct reviewers of the
// trust file of the last applied revision, by the highest sensitivity changed.
func TestApprovalGate(t *testing.T) {
	env := "gate"
	alice, bob, carol := newReviewer(t, "alice"), newReviewer(t, "bob"), newReviewer(t, "carol")
	objs := func(ledger, model string) map[string]string {
		return overlay(env, map[string]string{
			"ns-vault": namespace("gt-vault", "restricted"),
			"ns-open":  namespace("gt-open", "public"),
			"ledger":   configMap("gt-vault", "ledger", ledger, ""),
			"model":    configMap("gt-open", "model", model, ""),
		})
	}
	g := newGitRepo(t)
	strata := gatedStrataYAML(env)
	first := g.commit("first", merge(map[string]string{"strata.yaml": strata, ".strata/trust.yaml": trustYAML(alice, bob)}, objs("v1", "v1")))
	r, cls := newTestReconciler(t, g, env, pinned(t, alice, bob))
	ctx := context.Background()
	onprem := cls[env+"-onprem"]

	// The first revision touches restricted data: 2 approvals needed.
	res := r.ReconcileOnce(ctx)
	wantGate(t, res, "restricted change needs 2 approvals, has 0", "strata approve")
	if _, ok := getCM(t, onprem, "gt-vault", "ledger"); ok {
		t.Fatal("an unapproved revision was applied")
	}
	inv, _ := inventory.Load(ctx, onprem.Client, env)
	if !strings.Contains(inv.Status.LastError, "needs 2 approvals, has 0") {
		t.Errorf("status does not say what is missing: %q", inv.Status.LastError)
	}
	g.approve(t, alice, env, first)
	wantGate(t, r.ReconcileOnce(ctx), "restricted change needs 2 approvals, has 1: alice")
	g.approve(t, bob, env, first)
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if res.Gate == nil || len(res.Gate.Have) != 2 {
		t.Errorf("gate decision %+v, want alice and bob", res.Gate)
	}

	// A public-only change needs no approval.
	g.commit("model v2", objs("v1", "v2"))
	mustSucceed(t, r.ReconcileOnce(ctx))

	// A restricted change needs two again; a squash-merge with the same
	// tree keeps the approvals given to the pull request's commit.
	pr := g.commit("ledger v2 (pull request)", objs("v2", "v2"))
	wantGate(t, r.ReconcileOnce(ctx), "has 0")
	g.approve(t, alice, env, pr)
	g.approve(t, bob, env, pr)
	prCommit, _ := g.repo.CommitObject(plumbing.NewHash(pr))
	squash := &object.Commit{Author: prCommit.Author, Committer: prCommit.Committer, Message: "Squashed: ledger v2 (#42)",
		TreeHash: prCommit.TreeHash, ParentHashes: prCommit.ParentHashes}
	obj := g.repo.Storer.NewEncodedObject()
	if err := squash.Encode(obj); err != nil {
		t.Fatal(err)
	}
	sh, _ := g.repo.Storer.SetEncodedObject(obj)
	if err := g.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(g.branch()), sh)); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, r.ReconcileOnce(ctx))
	if cm, _ := getCM(t, onprem, "gt-vault", "ledger"); cm.Data["value"] != "v2" {
		t.Errorf("squash-merged approved tree not applied: %q", cm.Data["value"])
	}

	// Rolling back to an applied, approved tree needs no new approval.
	g.commit("Revert \"ledger v2\"", objs("v1", "v2"))
	res = r.ReconcileOnce(ctx)
	mustSucceed(t, res)
	if !strings.Contains(res.Gate.Message, "applied and approved before") {
		t.Errorf("rollback gate: %q", res.Gate.Message)
	}

	// A trust change is approved under the old trust: carol, added by the
	// change itself, does not count.
	trustChange := g.commit("add carol", map[string]string{".strata/trust.yaml": trustYAML(alice, bob, carol)})
	g.approve(t, alice, env, trustChange)
	g.approve(t, carol, env, trustChange)
	wantGate(t, r.ReconcileOnce(ctx), "has 1: alice", "carol")
	g.approve(t, bob, env, trustChange)
	mustSucceed(t, r.ReconcileOnce(ctx))

	// The history records approvers.
	inv, _ = inventory.Load(ctx, onprem.Client, env)
	if len(inv.Status.History) < 3 || len(inv.Status.History[0].Approvers) != 2 {
		t.Errorf("history %+v", inv.Status.History)
	}
}
