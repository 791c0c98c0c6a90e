package placement

import (
	"fmt"
	"slices"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// Place decides where every object of in goes. It never fails as a whole:
// objects that cannot be placed come back as violations, all of them, and
// are absent from the decisions.
func Place(in Input) *Result {
	p := &placer{in: in, res: &Result{Environment: in.Environment}}
	p.indexNamespaces()
	placed := make([]*Decision, len(in.Objects))
	// Contents first: Namespaces and CRDs follow what was placed.
	for i, o := range in.Objects {
		if o.isNamespace() || o.isCRD() {
			continue
		}
		placed[i] = p.placeObject(i, o)
	}
	for i, o := range in.Objects {
		if o.isNamespace() || o.isCRD() {
			placed[i] = p.placeFollower(i, o, placed)
		}
	}
	for _, d := range placed {
		if d != nil {
			p.res.Decisions = append(p.res.Decisions, *d)
		}
	}
	return p.res
}

type placer struct {
	in  Input
	res *Result
	// nsLabels maps a Namespace of the render to its labels: the floor of
	// the objects in it. A Namespace outside the render gives no floor.
	nsLabels map[string]map[string]string
}

func (p *placer) violate(i int, rule Rule, format string, args ...any) *Decision {
	p.res.Violations = append(p.res.Violations, Violation{
		Index: i, Object: p.in.Objects[i], Rule: rule, Message: fmt.Sprintf(format, args...),
	})
	return nil
}

func (p *placer) indexNamespaces() {
	p.nsLabels = map[string]map[string]string{}
	for _, o := range p.in.Objects {
		if o.isNamespace() {
			p.nsLabels[o.Name] = o.Labels
		}
	}
}

// classify applies rule 1 through the decision core shared with the
// webhook; an object it cannot classify is a violation.
func (p *placer) classify(i int, o Object) (Classification, bool) {
	c := Classify(o, Namespace{Labels: p.nsLabels[o.Floor()]})
	if c.Rule != "" {
		p.violate(i, c.Rule, "%s", c.Message)
		return c, false
	}
	return c, true
}

// placeObject applies rules 1-4 and 6 to an object that carries data.
func (p *placer) placeObject(i int, o Object) *Decision {
	c, ok := p.classify(i, o)
	if !ok {
		return nil
	}
	s, note := c.Level, c.Note(o)
	allowed := p.in.Tiers[s]
	if len(allowed) == 0 {
		return p.violate(i, RuleNoCluster, "sensitivity %s has no allowed tiers in the tier table: add a tiers.%s list to strata.yaml", s, s)
	}
	failover, err := parseBool(o.Annotations[labels.Failover])
	if err != nil {
		return p.violate(i, RuleInvalidAnnotation, "annotation %s=%q: use \"true\" or \"false\"", labels.Failover, o.Annotations[labels.Failover])
	}

	candidates := allowed
	reason := fmt.Sprintf("%s%s → allowed %s", s, note, config.JoinTiers(allowed))
	if v, has := o.Annotations[labels.Tiers]; has {
		requested, ok := p.requestedTiers(i, c, allowed, v)
		if !ok {
			return nil
		}
		candidates = requested
		reason += " → requested " + config.JoinTiers(requested)
	}
	only, ok := p.requestedClusters(i, s, candidates, o.Annotations)
	if !ok {
		return nil
	}
	if only != nil {
		reason += " → clusters [" + strings.Join(only, " ") + "]"
	}

	tier, why, ok := p.chooseTier(candidates, only, failover)
	if !ok {
		return p.violate(i, RuleNoCluster, "%s data may run in %s, but environment %s has no cluster there%s: add a cluster of one of those tiers to environments.%s in strata.yaml",
			s, config.JoinTiers(candidates), p.in.Environment, restrictedNote(only), p.in.Environment)
	}
	targets := p.clustersOf(tier, only)
	return &Decision{
		Index: i, Object: o, Sensitivity: s, Tiers: []config.Tier{tier}, Clusters: targets,
		Reason: fmt.Sprintf("%s → %s (%s)", reason, strings.Join(targets, ", "), why),
	}
}

func restrictedNote(only []string) string {
	if only == nil {
		return ""
	}
	return " among the clusters named by " + labels.Clusters
}

// requestedTiers validates a strata.dev/tiers annotation (rule 2).
func (p *placer) requestedTiers(i int, c Classification, allowed []config.Tier, v string) ([]config.Tier, bool) {
	s, where := c.Level, " on the object"
	switch c.Source {
	case FromNamespace:
		where = " on Namespace " + p.in.Objects[i].Namespace
	case FromPodTemplate:
		where = " on its pod template"
	}
	var out []config.Tier
	ok := true
	for _, item := range splitList(v) {
		t := config.Tier(item)
		switch {
		case !t.Valid():
			p.violate(i, RuleUnknownTier, "annotation %s names %q, not a known tier: use one of %s",
				labels.Tiers, item, config.JoinTiers(config.KnownTiers))
			ok = false
		case !slices.Contains(allowed, t):
			p.violate(i, RuleTierNotAllowed, "annotation %s requests %s, but %s data is allowed only in %s: remove %s from the annotation, or lower %s%s if the data really is less sensitive",
				labels.Tiers, t, s, config.JoinTiers(allowed), t, labels.Sensitivity, where)
			ok = false
		case !slices.Contains(out, t):
			out = append(out, t)
		}
	}
	if ok && len(out) == 0 {
		p.violate(i, RuleInvalidAnnotation, "annotation %s is empty: list tiers from %s or remove it", labels.Tiers, config.JoinTiers(allowed))
		ok = false
	}
	return out, ok
}

// requestedClusters validates a strata.dev/clusters annotation (rule 4). It
// returns nil when the object does not narrow its clusters.
func (p *placer) requestedClusters(i int, s config.Sensitivity, candidates []config.Tier, ann map[string]string) ([]string, bool) {
	v, has := ann[labels.Clusters]
	if !has {
		return nil, true
	}
	names := splitList(v)
	if len(names) == 0 {
		p.violate(i, RuleInvalidAnnotation, "annotation %s is empty: list cluster names or remove it", labels.Clusters)
		return nil, false
	}
	ok := true
	for _, n := range names {
		c, found := p.cluster(n)
		switch {
		case !found:
			p.violate(i, RuleUnknownCluster, "annotation %s names %q, which is not a cluster of environment %s (%s): fix the name or add the cluster to strata.yaml",
				labels.Clusters, n, p.in.Environment, strings.Join(p.clusterNames(), ", "))
			ok = false
		case !slices.Contains(candidates, c.Tier):
			p.violate(i, RuleClusterNotAllowed, "annotation %s names %s, a %s cluster, but %s data may run only in %s: remove %s from the annotation",
				labels.Clusters, n, c.Tier, s, config.JoinTiers(candidates), n)
			ok = false
		}
	}
	return names, ok
}

// chooseTier applies rule 3: the first candidate tier with clusters; past it
// only when its clusters are all down and the object may fail over.
func (p *placer) chooseTier(candidates []config.Tier, only []string, failover bool) (config.Tier, string, bool) {
	var first config.Tier
	var skipped, narrowed, down []string
	for _, t := range candidates {
		cs := p.clustersOf(t, only)
		if len(cs) == 0 {
			if only != nil && len(p.clustersOf(t, nil)) > 0 {
				narrowed = append(narrowed, string(t))
			} else {
				skipped = append(skipped, string(t))
			}
			continue
		}
		healthy := slices.ContainsFunc(cs, p.healthy)
		if first == "" {
			first = t
			if healthy {
				var why []string
				if len(skipped) > 0 {
					why = append(why, "no "+strings.Join(skipped, " or ")+" cluster in "+p.in.Environment)
				}
				if len(narrowed) > 0 {
					why = append(why, strings.Join(narrowed, " and ")+" not among "+labels.Clusters)
				}
				if len(why) == 0 {
					return t, "preferred", true
				}
				return t, strings.Join(why, "; "), true
			}
			if !failover {
				return t, string(t) + " clusters down; waiting for them, no " + labels.Failover, true
			}
			down = append(down, string(t))
			continue
		}
		if healthy {
			return t, "failover: " + strings.Join(down, ", ") + " clusters down", true
		}
		down = append(down, string(t))
	}
	if first == "" {
		return "", "", false
	}
	return first, "all allowed clusters down; waiting for " + string(first), true
}

// placeFollower applies rule 5: a Namespace or CRD goes wherever its contents
// go; with no contents placed it is placed by its own label like any object.
func (p *placer) placeFollower(i int, o Object, placed []*Decision) *Decision {
	var contents int
	var highest config.Sensitivity
	set := map[string]bool{}
	for _, d := range placed {
		if d == nil || !Follows(o, d.Object) {
			continue
		}
		contents++
		highest = config.Max(highest, d.Touches())
		for _, c := range d.Clusters {
			set[c] = true
		}
	}
	// A Namespace or CRD has no floor: only its own label counts.
	own := Classify(o, Namespace{})
	if contents == 0 {
		if own.Rule == RuleUnlabeled && o.isNamespace() {
			return p.violate(i, RuleUnlabeled, "a Namespace without a %s label and with no placed object in it has nowhere to go: label it, or place the objects in it", labels.Sensitivity)
		}
		return p.placeObject(i, o)
	}
	if own.Rule == RuleUnknownSensitivity {
		return p.violate(i, own.Rule, "%s", own.Message)
	}
	s := own.Level
	d := &Decision{Index: i, Object: o, Sensitivity: s}
	if s == "" {
		d.Contents = highest
	}
	for _, c := range p.in.Clusters {
		if !set[c.Name] {
			continue
		}
		if s != "" && !slices.Contains(p.in.Tiers[s], c.Tier) {
			return p.violate(i, RuleTierNotAllowed, "objects in it go to %s (%s), but its own label %s does not allow that tier: lower its %s label or label those objects at least %s", c.Name, c.Tier, s, labels.Sensitivity, s)
		}
		d.Clusters = append(d.Clusters, c.Name)
		if !slices.Contains(d.Tiers, c.Tier) {
			d.Tiers = append(d.Tiers, c.Tier)
		}
	}
	// The reason names no count: it is stamped on the object, and adding
	// an object to a Namespace should not change the Namespace.
	what := "the objects in it"
	if o.isCRD() {
		what = "its " + o.DefinesKind + " resources"
	}
	label := "unlabeled"
	if s != "" {
		label = string(s)
	}
	d.Reason = fmt.Sprintf("%s %s follows %s → %s", label, o.Kind, what, strings.Join(d.Clusters, ", "))
	return d
}

// Follows reports whether o is among the contents leader (a Namespace or a
// CustomResourceDefinition) follows: an object in the Namespace, or a
// custom resource the CRD defines.
func Follows(leader, o Object) bool {
	switch {
	case leader.isNamespace():
		return !o.ClusterScoped && o.Namespace == leader.Name
	case leader.isCRD():
		return leader.DefinesKind != "" && o.Group == leader.DefinesGroup && o.Kind == leader.DefinesKind
	}
	return false
}

func (p *placer) healthy(name string) bool { return p.in.Healthy == nil || p.in.Healthy[name] }

func (p *placer) cluster(name string) (config.Cluster, bool) {
	for _, c := range p.in.Clusters {
		if c.Name == name {
			return c, true
		}
	}
	return config.Cluster{}, false
}

func (p *placer) clusterNames() []string {
	out := make([]string, len(p.in.Clusters))
	for i, c := range p.in.Clusters {
		out[i] = c.Name
	}
	return out
}

// clustersOf returns the clusters of tier t, narrowed to only when not nil.
func (p *placer) clustersOf(t config.Tier, only []string) []string {
	var out []string
	for _, c := range p.in.Clusters {
		if c.Tier == t && (only == nil || slices.Contains(only, c.Name)) {
			out = append(out, c.Name)
		}
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, fmt.Errorf("not a boolean")
}
