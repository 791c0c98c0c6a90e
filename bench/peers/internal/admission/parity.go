package admission

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Tool names as they appear in the report.
const (
	Kyverno = "kyverno"
	Strata  = "strata"
	// Floor is the null webhook of the latency load (nullwebhook).
	Floor = "floor"
)

// Verdict is one tool's judgement of one object.
type Verdict struct {
	// Denied maps each denying policy to its message.
	Denied map[string]string
	// Other is the rest of a denial that names no policy: for strata its
	// own sensitivity rule; anything else (an apiserver error) is in Err.
	Other string
	Err   string
}

// denialPattern finds where each policy's part of a denial message starts:
// Kyverno writes "Policy NAME failed: MSG" (or "error"), joined by "; ";
// strata writes "policy NAME (validations[i]): MSG", also joined by "; ".
// Messages contain "; " themselves, so parts are cut at the next match of
// a known policy name, never at "; ".
func denialPattern(tool string, names []string) *regexp.Regexp {
	alt := make([]string, len(names))
	for i, n := range names {
		alt[i] = regexp.QuoteMeta(n)
	}
	if tool == Kyverno {
		return regexp.MustCompile(`Policy (` + strings.Join(alt, "|") + `) (failed|error): `)
	}
	return regexp.MustCompile(`policy (` + strings.Join(alt, "|") + `) \(([^)]*)\): `)
}

// parseDenial splits a denial message (with or without the apiserver's
// `admission webhook "..." denied the request: ` prefix) into policies.
func parseDenial(tool string, names []string, msg string) Verdict {
	v := Verdict{Denied: map[string]string{}}
	if _, rest, ok := strings.Cut(msg, "denied the request: "); ok {
		msg = rest
	}
	if tool == Strata {
		msg = strings.TrimPrefix(msg, "strata: ")
	}
	re := denialPattern(tool, names)
	ms := re.FindAllStringSubmatchIndex(msg, -1)
	end := len(msg)
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		name := msg[m[2]:m[3]]
		text := strings.TrimSuffix(strings.TrimSpace(msg[m[1]:end]), ";")
		if tool == Kyverno && msg[m[4]:m[5]] == "error" {
			text = "(evaluation error) " + text
		}
		if old, ok := v.Denied[name]; ok {
			text += " | " + old
		}
		v.Denied[name] = text
		end = m[0]
	}
	v.Other = strings.TrimSuffix(strings.TrimSpace(msg[:end]), ";")
	if len(ms) == 0 && tool == Kyverno {
		// Kyverno refused without naming a policy: not a verdict.
		v.Err, v.Other = v.Other, ""
	}
	return v
}

// denials returns the sorted names of the denying policies.
func (v Verdict) denials() []string { return slices.Sorted(maps.Keys(v.Denied)) }

// throughAPIServer dry-run creates every object with one tool's webhook
// registered and parses each answer.
func throughAPIServer(ctx context.Context, k *cluster, tool string, names []string, items []Item) []Verdict {
	out := make([]Verdict, len(items))
	for i, it := range items {
		_, err := k.dryRunCreate(ctx, it.Obj)
		switch {
		case err == nil:
			out[i] = Verdict{Denied: map[string]string{}}
		case strings.Contains(err.Error(), "denied the request"):
			out[i] = parseDenial(tool, names, err.Error())
		default:
			out[i] = Verdict{Denied: map[string]string{}, Err: err.Error()}
		}
	}
	return out
}

// ParityRow is one object's verdicts: through the apiserver (dry-run
// create with only that tool's webhook registered) and, for the
// cross-check, POSTed directly to the tool (the load pool's checked pass).
type ParityRow struct {
	Item, Kind, Why             string
	Kyverno, Strata             Verdict
	KyvernoDirect, StrataDirect Verdict
}

// Difference is one object × policy where the tools disagree, or an error.
type Difference struct {
	Item, Policy, Kyverno, Strata string
}

// compare lists every policy verdict that differs between the tools and
// every object a tool could not judge; the policies both deny with
// different messages; and where a tool's direct answer names other
// policies than its answer through the apiserver.
func compare(rows []ParityRow, names []string) (diffs, msgDiffs []Difference, directDiffs []DirectDiff) {
	for _, r := range rows {
		if r.Kyverno.Err != "" || r.Strata.Err != "" {
			diffs = append(diffs, Difference{Item: r.Item, Policy: "(error)", Kyverno: r.Kyverno.Err, Strata: r.Strata.Err})
		}
		for _, p := range names {
			km, kd := r.Kyverno.Denied[p]
			sm, sd := r.Strata.Denied[p]
			switch {
			case kd != sd:
				diffs = append(diffs, Difference{Item: r.Item, Policy: p, Kyverno: verdictWord(kd, km), Strata: verdictWord(sd, sm)})
			case kd && km != sm:
				msgDiffs = append(msgDiffs, Difference{Item: r.Item, Policy: p, Kyverno: km, Strata: sm})
			}
		}
		for _, t := range []struct {
			tool        string
			api, direct Verdict
		}{{Kyverno, r.Kyverno, r.KyvernoDirect}, {Strata, r.Strata, r.StrataDirect}} {
			if a, d := strings.Join(t.api.denials(), ","), strings.Join(t.direct.denials(), ","); a != d {
				directDiffs = append(directDiffs, DirectDiff{Item: r.Item, Tool: t.tool, APIServer: a, Direct: d})
			}
		}
	}
	return diffs, msgDiffs, directDiffs
}

// DirectDiff is an object whose denying policies differ between a tool's
// answer through the apiserver and its answer to the same object POSTed
// directly (both lists comma-separated).
type DirectDiff struct{ Item, Tool, APIServer, Direct string }

func verdictWord(denied bool, msg string) string {
	if denied {
		return "deny: " + msg
	}
	return "allow"
}

// e2eSample measures n dry-run creates of each object through the
// apiserver with whatever webhook is registered, taking turns so that a
// passing disturbance on this shared machine hits every object alike, and
// returns each object's sorted latencies.
func e2eSample(ctx context.Context, k *cluster, objs []*unstructured.Unstructured, n int) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(objs))
	// One unmeasured round warms the apiserver's webhook client connection.
	for round := -1; round < n; round++ {
		for i, obj := range objs {
			t := time.Now()
			_, err := k.dryRunCreate(ctx, obj)
			d := time.Since(t)
			if err != nil && !strings.Contains(err.Error(), "denied the request") {
				return nil, fmt.Errorf("dry-run create of %s %s: %w", obj.GetKind(), obj.GetName(), err)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if round >= 0 {
				out[i] = append(out[i], d)
			}
		}
	}
	for _, ds := range out {
		slices.Sort(ds)
	}
	return out, nil
}
