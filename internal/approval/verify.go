package approval

import (
	"crypto"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/strata-gitops/strata/internal/config"
)

// Approval is a verified approval.
type Approval struct {
	Reviewer    string    `json:"reviewer"`
	Environment string    `json:"environment"`
	Tree        string    `json:"tree"`
	Commit      string    `json:"commit,omitempty"`
	Time        time.Time `json:"time"`
	Expires     time.Time `json:"expires"`
}

// Rejection is an approval that does not count, and why.
type Rejection struct {
	// Reviewer is the reviewer the approval claims to be from ("" when the
	// entry cannot be read).
	Reviewer string `json:"reviewer,omitempty"`
	Reason   string `json:"reason"`
}

func (r Rejection) String() string {
	if r.Reviewer == "" {
		return r.Reason
	}
	return r.Reviewer + ": " + r.Reason
}

// Verify judges envelopes as approvals of tree for env at time now, against
// trust. trust must be the trust file of the last applied revision (a change
// of the trust file is approved under the old one); nil is an empty trust.
//
// An envelope counts when its DSSE signature verifies with the public key
// that trust lists for the reviewer the statement names, the statement is
// for this tree and this environment, the reviewer may approve this
// environment, it is not dated more than ClockSkew in the future and it has
// not expired. A reviewer counts once: of several valid approvals by one
// reviewer the latest is kept and the others are rejected as duplicates.
// Whether the reviewer may approve the change's sensitivity is Gate's check.
//
// valid is sorted by reviewer; rejected follows the order of envs.
func Verify(trust *config.Trust, env, tree string, now time.Time, envs []Envelope) (valid []Approval, rejected []Rejection) {
	return VerifyAt(trust, env, tree, Clock{Now: now}, envs)
}

// Clock is when approvals are judged.
type Clock struct {
	Now time.Time
	// Past judges a revision of the branch's history as of its commit time
	// Now: approvals signed after it count (reviewers sign after the push),
	// approvals already expired then do not.
	Past bool
	// MaxLifetime caps an approval's validity whatever expiry it claims
	// (approvals.maxLifetime); 0 means config.DefaultApprovalLifetime.
	MaxLifetime time.Duration
}

func (c Clock) expiry(st *Statement) time.Time {
	lifetime := c.MaxLifetime
	if lifetime <= 0 {
		lifetime = config.DefaultApprovalLifetime
	}
	if capped := st.Time.Add(lifetime); capped.Before(st.ExpiresAt()) {
		return capped
	}
	return st.ExpiresAt()
}

// VerifyAt is Verify with a Clock.
func VerifyAt(trust *config.Trust, env, tree string, clock Clock, envs []Envelope) (valid []Approval, rejected []Rejection) {
	if trust == nil {
		trust = &config.Trust{}
	}
	keys := newKeyCache(trust)
	type candidate struct {
		a   Approval
		key string
		pos int
	}
	var cands []candidate
	rejectedAt := map[int]Rejection{}
	for i := range envs {
		a, key, rej := verifyOne(trust, keys, env, tree, clock, &envs[i])
		if rej != nil {
			rejectedAt[i] = *rej
			continue
		}
		cands = append(cands, candidate{a: a, key: key, pos: i})
	}
	// Latest first, so that a reviewer's newest approval is the one counted.
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].a.Time.After(cands[j].a.Time) })
	byReviewer := map[string]bool{}
	byKey := map[string]string{}
	for _, c := range cands {
		switch {
		case byReviewer[c.a.Reviewer]:
			rejectedAt[c.pos] = Rejection{Reviewer: c.a.Reviewer, Reason: "duplicate approval, counted once"}
		case byKey[c.key] != "":
			rejectedAt[c.pos] = Rejection{Reviewer: c.a.Reviewer,
				Reason: fmt.Sprintf("signed with the same key as %s, counted once: give every reviewer a key of their own", byKey[c.key])}
		default:
			byReviewer[c.a.Reviewer] = true
			byKey[c.key] = c.a.Reviewer
			valid = append(valid, c.a)
		}
	}
	sort.SliceStable(valid, func(i, j int) bool { return valid[i].Reviewer < valid[j].Reviewer })
	for i := range envs {
		if r, ok := rejectedAt[i]; ok {
			rejected = append(rejected, r)
		}
	}
	return valid, rejected
}

func verifyOne(trust *config.Trust, keys *keyCache, env, tree string, clock Clock, e *Envelope) (Approval, string, *Rejection) {
	now := clock.Now
	reject := func(reviewer, format string, args ...any) (Approval, string, *Rejection) {
		return Approval{}, "", &Rejection{Reviewer: reviewer, Reason: fmt.Sprintf(format, args...)}
	}
	if e.parseErr != nil {
		return reject("", "unreadable approval: %v", e.parseErr)
	}
	claimed, err := e.Statement()
	if err != nil {
		return reject("", "unreadable approval: %v", err)
	}
	name := claimed.Reviewer
	if len(e.Signatures) != 1 {
		return reject(name, "envelope has %d signatures, want exactly 1", len(e.Signatures))
	}
	reviewer, ok := trust.Reviewer(name)
	if !ok {
		return reject(name, "not a reviewer in %s", config.TrustFile)
	}
	pub, der, err := keys.get(name)
	if err != nil {
		return reject(name, "the publicKey in %s cannot be used: %v", config.TrustFile, err)
	}
	payload, err := verifySignature(e, pub)
	if err != nil {
		if other := keys.signer(e, name); other != "" {
			return reject(name, "forged: signed with %s's key, not %s's", other, name)
		}
		return reject(name, "bad signature: it does not verify with %s's key in %s, so it is forged or was altered after signing", name, config.TrustFile)
	}
	// Judge what was signed, not what was decoded before verifying.
	st, err := parseStatement(payload)
	if err != nil {
		return reject(name, "unreadable approval: %v", err)
	}
	switch {
	case st.Reviewer != name:
		return reject(name, "bad signature: the signed statement names reviewer %q", st.Reviewer)
	case st.Tree != tree:
		return reject(name, "approves tree %s, not %s: the content changed after the approval, approve the new revision", shortHash(st.Tree), shortHash(tree))
	case st.Environment != env:
		return reject(name, "approves environment %s, not %s", st.Environment, env)
	case !reviewer.MayApprove(env, config.Public):
		return reject(name, "may not approve environment %s: %s allows only %s", env, config.TrustFile, strings.Join(reviewer.Environments, ", "))
	case !clock.Past && st.Time.After(now.Add(ClockSkew)):
		return reject(name, "signed at %s, more than %s in the future: check the signer's clock", formatTime(st.Time), ClockSkew)
	case !now.Before(clock.expiry(st)):
		return reject(name, "expired at %s: approve again (an approval counts for at most %s, approvals.maxLifetime)", formatTime(clock.expiry(st)), lifetimeOf(clock))
	}
	return Approval{
		Reviewer: st.Reviewer, Environment: st.Environment, Tree: st.Tree, Commit: st.Commit,
		Time: st.Time, Expires: clock.expiry(st),
	}, der, nil
}

func lifetimeOf(c Clock) time.Duration {
	if c.MaxLifetime <= 0 {
		return config.DefaultApprovalLifetime
	}
	return c.MaxLifetime
}

// keyCache parses each reviewer's public key once per Verify.
type keyCache struct {
	trust *config.Trust
	pubs  map[string]crypto.PublicKey
	ders  map[string]string
	errs  map[string]error
}

func newKeyCache(t *config.Trust) *keyCache {
	return &keyCache{trust: t, pubs: map[string]crypto.PublicKey{}, ders: map[string]string{}, errs: map[string]error{}}
}

func (k *keyCache) get(name string) (crypto.PublicKey, string, error) {
	if pub, ok := k.pubs[name]; ok {
		return pub, k.ders[name], nil
	}
	if err, ok := k.errs[name]; ok {
		return nil, "", err
	}
	r, ok := k.trust.Reviewer(name)
	if !ok {
		return nil, "", fmt.Errorf("no reviewer %q", name)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(r.PublicKey))
	if err == nil {
		err = cryptoutils.ValidatePubKey(pub)
	}
	var der []byte
	if err == nil {
		der, err = cryptoutils.MarshalPublicKeyToDER(pub)
	}
	if err != nil {
		k.errs[name] = err
		return nil, "", err
	}
	k.pubs[name], k.ders[name] = pub, string(der)
	return pub, string(der), nil
}

// signer returns the name of another reviewer whose key verifies e, to tell
// a forgery ("bob signed as alice") from a damaged approval.
func (k *keyCache) signer(e *Envelope, except string) string {
	for _, r := range k.trust.Reviewers {
		if r.Name == except {
			continue
		}
		pub, _, err := k.get(r.Name)
		if err != nil {
			continue
		}
		if _, err := verifySignature(e, pub); err == nil {
			return r.Name
		}
	}
	return ""
}
