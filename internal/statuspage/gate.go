package statuspage

import (
	"regexp"
	"strconv"
	"strings"
)

// Gate is a revision refused by the approval gate, parsed from a cluster's
// last error (reconciler.GateError), e.g.
//
//	revision 3f2a9c1d0e4b is not approved for prod: restricted change needs 2
//	approvals, has 1: alice; reviewers sign it with `strata approve 3f2a9c1d0e4b
//	--env prod --key KEY --push`
type Gate struct {
	Revision    string
	Environment string
	// Message is the gate's one-line verdict ("restricted change needs 2
	// approvals, has 1: alice; rejected bob: …").
	Message string
	// Command is the approve command the message suggests.
	Command string
	// Parsed is true when Message has the usual shape; the fields below
	// are set only then.
	Parsed      bool
	Sensitivity string
	Need        int
	Have        []string
	Rejected    []string
}

// Missing is how many approvals are still needed.
func (g Gate) Missing() int { return max(g.Need-len(g.Have), 0) }

var (
	gateErrorRE = regexp.MustCompile("(?s)^revision (\\S+) is not approved for (\\S+): (.*); reviewers sign it with `([^`]*)`$")
	gateNeedRE  = regexp.MustCompile(`(?s)^(\S+) change needs (\d+) approvals?, has (\d+)(?:: (.*))?$`)
)

// ParseGate recognises a gate refusal in a cluster's last error.
func ParseGate(lastError string) (Gate, bool) {
	m := gateErrorRE.FindStringSubmatch(strings.TrimSpace(lastError))
	if m == nil {
		return Gate{}, false
	}
	g := Gate{Revision: m[1], Environment: m[2], Message: m[3], Command: m[4]}
	parts := strings.Split(g.Message, "; rejected ")
	n := gateNeedRE.FindStringSubmatch(parts[0])
	if n == nil {
		return g, true
	}
	need, err1 := strconv.Atoi(n[2])
	have, err2 := strconv.Atoi(n[3])
	if err1 != nil || err2 != nil {
		return g, true
	}
	var names []string
	if n[4] != "" {
		names = strings.Split(n[4], ", ")
	}
	if len(names) != have {
		return g, true // names the message cannot be split into: show it as it is
	}
	g.Parsed, g.Sensitivity, g.Need, g.Have = true, n[1], need, names
	g.Rejected = parts[1:]
	return g, true
}
