package plan

import (
	"fmt"
	"io"
	"strings"
)

// Report is a whole plan: every environment between two revisions.
type Report struct {
	Base         string         `json:"base"`
	Head         string         `json:"head"`
	BaseSubject  string         `json:"baseSubject,omitempty"`
	HeadSubject  string         `json:"headSubject,omitempty"`
	Environments []*Environment `json:"environments"`
	// Denials are policy verdicts that deny head objects, per cluster.
	Denials []Denial `json:"denials,omitempty"`
	// Warnings are policy verdicts with the Warn or Audit action.
	Warnings []Denial `json:"warnings,omitempty"`
	// Errors are environments that failed to render at head.
	Errors []string `json:"errors,omitempty"`
}

// Denial is one policy verdict on one object in one cluster.
type Denial struct {
	Environment string `json:"environment"`
	Cluster     string `json:"cluster"`
	Object      string `json:"object"`
	Policy      string `json:"policy"`
	Message     string `json:"message"`
}

// Failed reports whether the plan must fail the pull request check.
func (r *Report) Failed() bool {
	if len(r.Denials) > 0 || len(r.Errors) > 0 {
		return true
	}
	for _, e := range r.Environments {
		if len(e.Violations) > 0 {
			return true
		}
	}
	return false
}

// WriteMarkdown writes the plan as a pull request comment.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## strata plan: `%s` → `%s`\n\n", short(r.Base), short(r.Head))
	if r.HeadSubject != "" {
		fmt.Fprintf(&b, "_%s_\n\n", r.HeadSubject)
	}
	switch {
	case r.Failed():
		b.WriteString("**❌ This change cannot be applied as it is** — see the violations and policy denials below.\n\n")
	default:
		b.WriteString("**✅ Every object can be placed and passes the policies.**\n\n")
	}
	b.WriteString("| environment | cluster | tier | added | changed | removed | moved in | moved out |\n|---|---|---|---|---|---|---|---|\n")
	for _, e := range r.Environments {
		for _, c := range e.Clusters {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d |\n", e.Name, c.Name, c.Tier,
				c.Count(Added), c.Count(Changed), c.Count(Removed), c.Count(MovedIn), c.Count(MovedOut))
		}
	}
	for _, e := range r.Environments {
		if len(e.Windows) > 0 {
			fmt.Fprintf(&b, "\n_Open windows in %s: %s (their components are part of this plan)._\n", e.Name, strings.Join(e.Windows, ", "))
		}
	}
	writeCost(&b, r.Environments)
	b.WriteString("\n### Approvals needed\n\n")
	for _, e := range r.Environments {
		switch {
		case !e.Changed() && e.Approvals == 0:
			fmt.Fprintf(&b, "- **%s**: no change\n", e.Name)
		case e.Approvals == 0:
			fmt.Fprintf(&b, "- **%s**: highest sensitivity touched is `%s`: no approval needed\n", e.Name, e.Highest)
		default:
			fmt.Fprintf(&b, "- **%s**: highest sensitivity touched is `%s`: needs **%d** signed approval(s) from distinct reviewers in `.strata/trust.yaml` (`strata approve %s --env %s --key KEY`)\n",
				e.Name, e.Highest, e.Approvals, short(r.Head), e.Name)
		}
		for _, why := range e.ApprovalReasons {
			fmt.Fprintf(&b, "  - %s\n", why)
		}
		for _, who := range e.NotCounted {
			fmt.Fprintf(&b, "  - ⚠️ %s\n", who)
		}
	}
	for _, e := range r.Environments {
		if len(e.Violations) > 0 {
			fmt.Fprintf(&b, "\n### ❌ Placement violations in %s\n\n", e.Name)
			for _, v := range e.Violations {
				fmt.Fprintf(&b, "- %s\n", v)
			}
		}
	}
	if len(r.Errors) > 0 {
		b.WriteString("\n### ❌ Render errors\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "```\n%s\n```\n", e)
		}
	}
	writeVerdicts(&b, "❌ Policy denials", r.Denials)
	writeVerdicts(&b, "⚠️ Policy warnings", r.Warnings)
	for _, e := range r.Environments {
		for _, c := range e.Clusters {
			if len(c.Changes) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n### %s / %s (%s)\n\n", e.Name, c.Name, c.Tier)
			for _, ch := range c.Changes {
				peer := ""
				switch ch.Action {
				case MovedIn:
					peer = " from " + ch.Peer
				case MovedOut:
					peer = " to " + ch.Peer
				}
				fmt.Fprintf(&b, "- **%s**%s `%s` (%s) — %s\n", ch.Action, peer, ch.Ref(), dash(string(ch.Sensitivity)), ch.Reason)
				if ch.Diff != "" && ch.Action != Removed && ch.Action != MovedOut {
					fmt.Fprintf(&b, "  <details><summary>diff</summary>\n\n  ```diff\n%s  ```\n  </details>\n", indent(ch.Diff, "  "))
				}
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeVerdicts(b *strings.Builder, title string, vs []Denial) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### %s\n\n| environment | cluster | object | policy | message |\n|---|---|---|---|---|\n", title)
	for _, v := range vs {
		fmt.Fprintf(b, "| %s | %s | `%s` | %s | %s |\n", v.Environment, v.Cluster, v.Object, v.Policy, strings.ReplaceAll(v.Message, "|", "\\|"))
	}
}

func indent(s, p string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = p + l
		}
	}
	return strings.Join(lines, "")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
