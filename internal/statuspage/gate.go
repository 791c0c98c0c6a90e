package statuspage

import (
	"fmt"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/inventory"
)

// Gate is a revision refused by the approval gate, read from the verdict a
// cluster's status stores as data (inventory.GateStatus), never parsed
// from an error message.
type Gate struct {
	Revision    string
	Environment string
	// Message is the gate's one-line verdict ("restricted change needs 2
	// approvals, has 1: alice; rejected bob: …").
	Message string
	// Command is the approve command that helps.
	Command string
	// Parsed is true when the verdict names a sensitivity and a count; the
	// fields below are set only then.
	Parsed      bool
	Sensitivity string
	Need        int
	Have        []string
	Rejected    []string
}

// Missing is how many approvals are still needed.
func (g Gate) Missing() int { return max(g.Need-len(g.Have), 0) }

// GateOf returns the approval gate's refusal recorded in a cluster's status
// for env, if the last revision judged was refused.
func GateOf(env string, st inventory.Status) (Gate, bool) {
	v := st.Gate
	if v == nil || v.Allowed {
		return Gate{}, false
	}
	rev := short(v.Commit)
	g := Gate{Revision: rev, Environment: env, Message: v.Message,
		Command: fmt.Sprintf("strata approve %s --env %s --key KEY --push", rev, env)}
	if config.Sensitivity(v.Sensitivity).Valid() && v.Need > 0 {
		g.Parsed, g.Sensitivity, g.Need, g.Have, g.Rejected = true, v.Sensitivity, v.Need, v.Have, v.Rejected
	}
	return g, true
}
