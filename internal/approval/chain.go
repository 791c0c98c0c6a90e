package approval

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
)

// DefaultMaxHistory bounds the first-parent walk of one decision.
const DefaultMaxHistory = 10000

// Chain decides from git alone whether a commit of the followed branch may
// be applied to an environment. Nothing a cluster stores is consulted: a
// cluster admin who edits an inventory can make strata refuse, never apply.
//
// The base of a commit is its nearest first-parent ancestor whose tree
// carries approvals for the environment and which itself passed the gate
// (judged the same way, as of its commit time). The change base..commit is
// judged with the base's strata.yaml (approval table, enforcement, maximum
// lifetime) and trust file; approvals are read from the notes of the
// commit's tree and verified cryptographically every time. A commit with no
// approved base is a root: its whole content counts as a restricted change
// and only reviewers whose keys are pinned (Pin) can approve it; without a
// pin a root is refused. A commit whose tree is the tree of an ancestor that
// passed the gate (a rollback target) needs no new approval.
type Chain struct {
	Repo *source.Repository
	Env  string
	// Pin is the root of trust, given outside the repository.
	Pin Pin
	// MaxHistory bounds the first-parent walk; 0 is DefaultMaxHistory.
	MaxHistory int
	Store      Store

	mu sync.Mutex
	// passed holds commits that passed as of their commit time: the
	// answer cannot change as approvals are added.
	passed map[string]*Verdict
	// failed holds commits that did not, per version of the notes.
	failed map[string]string
}

// Verdict is the gate's decision on one commit, with what it rests on.
type Verdict struct {
	Decision
	Commit string `json:"commit"`
	// Base is the approved commit the change is judged from ("" for a root).
	Base string `json:"base,omitempty"`
	// Enforced is false when strata.yaml of the base says approvals.enforce: false.
	Enforced bool `json:"enforced"`
	// Pinned says the root of trust is pinned outside the repository.
	Pinned bool `json:"pinned"`
	// Restores names the approved commit whose tree this commit restores.
	Restores string   `json:"restores,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
}

// Decide judges commit as of now.
func (c *Chain) Decide(commit string, now time.Time) (*Verdict, error) {
	max := c.MaxHistory
	if max <= 0 {
		max = DefaultMaxHistory
	}
	ancestors, err := c.Repo.FirstParents(commit, max)
	if err != nil && !errors.Is(err, source.ErrHistoryTooLong) {
		return nil, err
	}
	head, err := c.Repo.Commit(commit)
	if err != nil {
		return nil, err
	}
	return c.judge(head, ancestors, Clock{Now: now}, 0)
}

// judge decides head, whose first-parent ancestors (nearest first) are
// ancestors, at clock.
func (c *Chain) judge(head source.Commit, ancestors []source.Commit, clock Clock, depth int) (*Verdict, error) {
	if clock.Past {
		if v := c.remembered(head.Commit); v != nil {
			return v, nil
		}
	}
	if depth > len(ancestors)+1 {
		return nil, fmt.Errorf("approval chain of %s does not end", shortHash(head.Commit))
	}
	headSide, err := c.side(head.Revision)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", head.Short(), err)
	}
	v := &Verdict{Commit: head.Commit, Pinned: !c.Pin.Empty()}
	baseAt := -1
	for i, a := range ancestors {
		envs, err := c.envelopes(a.Tree)
		if err != nil {
			return nil, err
		}
		if len(envs) == 0 {
			continue
		}
		av, err := c.judge(a, ancestors[i+1:], Clock{Now: a.CommitTime, Past: true}, depth+1)
		if err == nil && av.Allowed {
			baseAt = i
			break
		}
	}
	var base *Side
	var baseCfg *config.Config
	if baseAt >= 0 {
		b := ancestors[baseAt]
		v.Base = b.Commit
		if base, err = c.side(b.Revision); err != nil {
			// Never let a revision judge itself: an unreadable base refuses.
			return nil, fmt.Errorf("reading the approved base %s of %s: %w", b.Short(), head.Short(), err)
		}
		baseCfg = base.Cfg
	}
	// Enforcement, table and lifetime come from the base: a change cannot
	// switch off the gate that judges it.
	v.Enforced = baseCfg == nil && (!c.Pin.Empty() || headSide.Cfg.Approvals.Enforced()) ||
		baseCfg != nil && baseCfg.Approvals.Enforced()
	if !v.Enforced {
		v.Allowed = true
		v.Have = []string{}
		v.Message = fmt.Sprintf("approvals are not enforced: %s at %s sets approvals.enforce: false", config.ConfigFile, shortHash(v.Base))
		if v.Base == "" {
			v.Message = fmt.Sprintf("approvals are not enforced: %s sets approvals.enforce: false and no root of trust is pinned", config.ConfigFile)
		}
		return c.remember(head, v, clock), nil
	}
	trust, err := c.trust(base, headSide)
	if err != nil {
		return nil, err
	}
	need, err := Needed(c.Env, base, headSide)
	if err != nil {
		return nil, err
	}
	v.Reasons = need.Reasons
	cfg := headSide.Cfg
	if baseCfg != nil {
		cfg = baseCfg
	}
	clock.MaxLifetime = cfg.Approvals.Lifetime()
	envs, err := c.envelopes(head.Tree)
	if err != nil {
		return nil, err
	}
	excluded := map[string]string{}
	if !cfg.Approvals.AllowSelfApproval && need.Count > 0 {
		if excluded, err = SelfApprovers(c.Repo, v.Base, head.Commit, trust, c.MaxHistory); err != nil {
			return nil, err
		}
	}
	v.Decision = GateWith(GateInput{Trust: trust, Env: c.Env, Tree: head.Tree, Highest: need.Sensitivity,
		Required: need.Count, Clock: clock, Envelopes: envs, Excluded: excluded})
	if need.Sensitivity == "" {
		v.Message = "no object changes: nothing to approve"
	}
	if v.Base == "" && c.Pin.Empty() && !v.Allowed {
		v.Message = fmt.Sprintf("%s; no approved revision precedes %s and no root of trust is pinned: give the reconciler the reviewers' key fingerprints (--trusted-keys, printed by strata keygen)", v.Message, head.Short())
	}
	if !v.Allowed {
		for i, a := range ancestors {
			if a.Tree != head.Tree {
				continue
			}
			// Only a tree that passed an enforced gate: one applied while
			// the gate was off was never approved.
			if av, err := c.judge(a, ancestors[i+1:], Clock{Now: a.CommitTime, Past: true}, depth+1); err == nil && av.Allowed && av.Enforced {
				d := PreviouslyApproved(need.Sensitivity, head.Tree)
				d.Rejected = v.Rejected
				v.Decision, v.Restores = d, a.Commit
				break
			}
		}
	}
	return c.remember(head, v, clock), nil
}

// trust is the trust file that judges a change: the base's, or at a root
// the head's reviewers whose keys are pinned.
func (c *Chain) trust(base, head *Side) (*config.Trust, error) {
	if base != nil {
		t, err := config.LoadTrust(base.Snap.ReadFile, base.Cfg)
		if err != nil {
			return nil, fmt.Errorf("the trust file of the approved base: %w", err)
		}
		return t, nil
	}
	t, err := config.LoadTrust(head.Snap.ReadFile, head.Cfg)
	if err != nil {
		return nil, err
	}
	return c.Pin.Filter(t), nil
}

// SelfApprovers maps each reviewer of trust who authored or committed a
// commit of the change (base, head] to why their approval does not count
// (four eyes). Git identities are what the commits say: the git host must
// record real authors (protected branches, signed commits) for this to bind.
func SelfApprovers(repo *source.Repository, base, head string, trust *config.Trust, max int) (map[string]string, error) {
	if max <= 0 {
		max = DefaultMaxHistory
	}
	commits, err := repo.Between(base, head, max)
	if err != nil && !errors.Is(err, source.ErrHistoryTooLong) {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range trust.Reviewers {
		ids := r.Identities()
		for _, cm := range commits {
			role := ""
			switch {
			case contains(ids, cm.AuthorEmail):
				role = "authored"
			case contains(ids, cm.CommitterEmail):
				role = "committed"
			}
			if role != "" {
				out[r.Name] = fmt.Sprintf("%s %s commit %s of this change; an author's or committer's own approval does not count (four eyes; approvals.allowSelfApproval)", r.Name, role, cm.Short())
				break
			}
		}
	}
	return out, nil
}

func contains(ids []string, email string) bool {
	email = strings.ToLower(strings.TrimSpace(email))
	for _, id := range ids {
		if id == email {
			return true
		}
	}
	return false
}

func (c *Chain) side(rev source.Revision) (*Side, error) {
	snap, err := c.Repo.Snapshot(&rev)
	if err != nil {
		return nil, err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return nil, err
	}
	return &Side{Snap: snap, Cfg: cfg}, nil
}

// envelopes returns the approvals stored for tree for this environment,
// read under the repository's lock.
func (c *Chain) envelopes(tree string) ([]Envelope, error) {
	var envs []Envelope
	err := c.Repo.WithGit(func(r *git.Repository) error {
		all, err := c.Store.List(r, tree)
		for _, e := range all {
			if st, serr := e.Statement(); serr != nil || st.Environment == c.Env {
				envs = append(envs, e)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the approvals of tree %s: %w", shortHash(tree), err)
	}
	return envs, nil
}

// notesVersion identifies the approvals notes as they are now.
func (c *Chain) notesVersion() string {
	v := ""
	_ = c.Repo.WithGit(func(r *git.Repository) error {
		if ref, err := r.Reference(c.Store.ref(), true); err == nil {
			v = ref.Hash().String()
		}
		return nil
	})
	return v
}

func (c *Chain) remembered(commit string) *Verdict {
	c.mu.Lock()
	v := c.passed[commit]
	c.mu.Unlock()
	if v != nil {
		return v
	}
	// Read the notes version outside the lock: it takes the repository's.
	key := commit + "@" + c.notesVersion()
	c.mu.Lock()
	defer c.mu.Unlock()
	if msg, ok := c.failed[key]; ok {
		return &Verdict{Commit: commit, Enforced: true, Decision: Decision{Message: msg, Have: []string{}}}
	}
	return nil
}

// remember keeps verdicts judged as of a commit's own time.
func (c *Chain) remember(head source.Commit, v *Verdict, clock Clock) *Verdict {
	if !clock.Past {
		return v
	}
	nv := c.notesVersion()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passed == nil {
		c.passed, c.failed = map[string]*Verdict{}, map[string]string{}
	}
	if v.Allowed {
		c.passed[head.Commit] = v
	} else {
		c.failed[head.Commit+"@"+nv] = v.Message
	}
	return v
}
