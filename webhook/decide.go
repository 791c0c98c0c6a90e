// Package webhook is strata's validating admission webhook: every cluster
// runs one for its tier and denies any object whose data-sensitivity is not
// allowed there, whoever sends it, then the policies of policies/.
package webhook

import (
	"fmt"
	"strings"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/placement"
)

// Checker holds what the sensitivity check of one cluster needs from
// strata.yaml. The rule itself is placement's (Classify, Allowed), the same
// that strata render places objects by.
type Checker struct {
	Cluster string
	Tier    config.Tier
	Tiers   map[config.Sensitivity][]config.Tier
	// ExemptNamespaces are admitted unjudged (webhook.exemptNamespaces).
	ExemptNamespaces []string
}

// NewChecker returns the checker of a cluster from strata.yaml.
func NewChecker(cfg *config.Config, cluster string, tier config.Tier) *Checker {
	exempt := cfg.Webhook.ExemptNamespaces
	if exempt == nil {
		exempt = config.DefaultExemptNamespaces()
	}
	return &Checker{Cluster: cluster, Tier: tier, Tiers: cfg.Tiers, ExemptNamespaces: exempt}
}

// subject describes the object of a request for the decision core. Scope
// comes from the request's resource: the apiserver sets request.namespace
// to a Namespace's own name, so a Namespace is recognised by its resource
// (or kind), never by an empty namespace; for any other resource the
// apiserver sets request.namespace exactly when the resource is namespaced.
func subject(req *request) placement.Object {
	o := placement.Object{Group: req.Kind.Group, Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name}
	if isNamespaceRequest(req) {
		o.Group, o.Kind, o.Namespace, o.ClusterScoped = "", "Namespace", "", true
	} else {
		o.ClusterScoped = req.Namespace == ""
	}
	if req.Object != nil {
		md, _ := req.Object["metadata"].(map[string]any)
		o.Labels = placement.StringMap(md["labels"])
		o.Annotations = placement.StringMap(md["annotations"])
		if o.Name == "" {
			o.Name, _ = md["name"].(string)
		}
		if o.Name == "" {
			o.Name, _ = md["generateName"].(string)
		}
		o.TemplateLabels = placement.TemplateLabels(o.Group, o.Kind, req.Object)
		if o.ClusterScoped {
			o.ClaimNamespace = placement.ClaimNamespace(o.Group, o.Kind, req.Object)
		}
	}
	if o.Name == "" {
		o.Name = "(unnamed)"
	}
	return o
}

// isNamespaceRequest: the resource or the kind says Namespace (the
// apiserver always says both; either is enough, and then the object is
// judged by its own label only, with no floor to look up).
func isNamespaceRequest(req *request) bool {
	return req.Resource.Group == "" && req.Resource.Resource == "namespaces" ||
		req.Kind.Group == "" && req.Kind.Kind == "Namespace"
}

// sensitivity is the link of the chain that classifies the object with
// placement's core and checks its level against the cluster's tier. An
// object it cannot classify is denied (fail closed), except the unlabeled
// cluster-scoped kinds that hold no data.
func (h *Handler) sensitivity(next decider) decider {
	return func(a *attempt) *response {
		if a.req.Object == nil {
			msg := "the request carries no object"
			if a.req.objectErr != nil {
				msg = "the object is not a JSON object: " + a.req.objectErr.Error()
			}
			a.deny(placement.RuleMalformedObject, fmt.Sprintf("%s %s: %s; strata cannot classify it, so it is denied (fail closed)",
				a.object.Kind, a.object.Name, msg))
			return next(a)
		}
		ns := placement.Namespace{}
		if floor := a.object.Floor(); floor != "" {
			l, ok := h.namespace(floor)
			ns = placement.Namespace{Labels: l, Unknown: !ok}
			if ok && !a.object.ClusterScoped {
				a.namespace = namespaceObject(floor, l)
			}
		}
		a.class = placement.Classify(a.object, ns)
		c := h.Checker
		switch {
		case a.class.Rule == placement.RuleUnlabeled && a.object.ClusterScoped && placement.HoldsNoData(a.object.Group, a.object.Kind):
			// A Namespace, a ClusterRole, ...: no data of its own.
		case a.class.Rule == placement.RuleUnlabeled:
			a.deny(a.class.Rule, fmt.Sprintf("%s has no sensitivity, and cluster %s (tier %s) admits only classified data: %s",
				a.object, c.Cluster, c.Tier, a.class.Message))
		case a.class.Rule != "":
			a.deny(a.class.Rule, fmt.Sprintf("%s cannot be classified: %s", a.object, a.class.Message))
		case !placement.Allowed(c.Tiers, a.class.Level, c.Tier):
			s, allowed := a.class.Level, c.Tiers[a.class.Level]
			a.deny(placement.RuleTierNotAllowed, fmt.Sprintf(
				"%s is %s (%s), but cluster %s is in tier %s and %s data is allowed only in %s: deploy it through strata, which places it in the %s tier (strata render shows where), or lower %s if the data really is less sensitive",
				a.object, s, a.class.Describe(a.object), c.Cluster, c.Tier, s, config.JoinTiers(allowed), joinTiers(allowed, " or "), labels.Sensitivity))
		}
		return next(a)
	}
}

// namespace returns the labels of a live Namespace; ok is false when it
// could not be read (no lookup configured counts as that: fail closed).
func (h *Handler) namespace(name string) (map[string]string, bool) {
	if h.Namespaces == nil {
		return nil, false
	}
	return h.Namespaces(name)
}

// namespaceObject is the Namespace as policies see it (namespaceObject).
func namespaceObject(name string, l map[string]string) map[string]any {
	la := make(map[string]any, len(l))
	for k, v := range l {
		la[k] = v
	}
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": la}}
}

func joinTiers(ts []config.Tier, sep string) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, sep)
}
