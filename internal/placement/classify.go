package placement

import (
	"fmt"
	"slices"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// This file is the one decision core: what sensitivity an object has and
// whether a tier admits it. Placement (render, plan, reconcile) and the
// webhook of every cluster both call it, so that an object reaching a
// cluster by any path is judged exactly as strata render placed it.

// GroupKind names a kind exactly (core kinds have the group "").
type GroupKind struct{ Group, Kind string }

// GroupVersionKind names a kind in one version exactly.
type GroupVersionKind struct{ Group, Version, Kind string }

// ControlPlaneRecords are the records the control plane writes about itself
// (events, leader and node leases). They carry no workload data and denying
// them would blind or stall the cluster, so the webhook admits them
// unjudged. Exact group/version/kind: a custom resource that happens to be
// called Event or Lease is judged like any other object.
var ControlPlaneRecords = []GroupVersionKind{
	{Group: "", Version: "v1", Kind: "Event"},
	{Group: "events.k8s.io", Version: "v1", Kind: "Event"},
	{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"},
	// The apiserver's record of a Service's allocated cluster IP: denying
	// it fails every Service create in a labeled namespace.
	{Group: "networking.k8s.io", Version: "v1", Kind: "IPAddress"},
	{Group: "networking.k8s.io", Version: "v1beta1", Kind: "IPAddress"},
}

// IsControlPlaneRecord reports whether group/version/kind is one of
// ControlPlaneRecords.
func IsControlPlaneRecord(group, version, kind string) bool {
	return slices.Contains(ControlPlaneRecords, GroupVersionKind{group, version, kind})
}

// DataFreeKinds are the cluster-scoped kinds that hold no data of their own:
// names, permissions, schemas, scheduling and admission settings, and the
// control plane's record of its machines. Unlabeled, they pass the webhook
// of any tier; labeled, their label is judged like any other. Every other
// cluster-scoped object (a PersistentVolume, a cluster-scoped custom
// resource) needs its own label.
var DataFreeKinds = []GroupKind{
	{"", "Namespace"},
	{"", "Node"},
	{"apiextensions.k8s.io", "CustomResourceDefinition"},
	{"apiregistration.k8s.io", "APIService"},
	{"rbac.authorization.k8s.io", "ClusterRole"},
	{"rbac.authorization.k8s.io", "ClusterRoleBinding"},
	{"storage.k8s.io", "StorageClass"},
	{"storage.k8s.io", "CSIDriver"},
	{"storage.k8s.io", "CSINode"},
	{"scheduling.k8s.io", "PriorityClass"},
	{"node.k8s.io", "RuntimeClass"},
	{"networking.k8s.io", "IngressClass"},
	{"networking.k8s.io", "ServiceCIDR"},
	{"storage.k8s.io", "VolumeAttachment"},
	{"certificates.k8s.io", "CertificateSigningRequest"},
	{"flowcontrol.apiserver.k8s.io", "FlowSchema"},
	{"flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"},
	{"admissionregistration.k8s.io", "ValidatingWebhookConfiguration"},
	{"admissionregistration.k8s.io", "MutatingWebhookConfiguration"},
	{"admissionregistration.k8s.io", "ValidatingAdmissionPolicy"},
	{"admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"},
}

// HoldsNoData reports whether group/kind is one of DataFreeKinds.
func HoldsNoData(group, kind string) bool {
	return slices.Contains(DataFreeKinds, GroupKind{group, kind})
}

// podTemplates says where each workload kind keeps the templates of the
// objects it creates: its Pods inherit those labels, so the templates'
// sensitivity is the workload's too. A Pod is its own template.
var podTemplates = map[GroupKind][][]string{
	{"apps", "Deployment"}:        {{"spec", "template"}},
	{"apps", "StatefulSet"}:       {{"spec", "template"}},
	{"apps", "DaemonSet"}:         {{"spec", "template"}},
	{"apps", "ReplicaSet"}:        {{"spec", "template"}},
	{"", "ReplicationController"}: {{"spec", "template"}},
	{"", "PodTemplate"}:           {{"template"}},
	{"batch", "Job"}:              {{"spec", "template"}},
	{"batch", "CronJob"}:          {{"spec", "jobTemplate"}, {"spec", "jobTemplate", "spec", "template"}},
}

// TemplatePaths returns the field paths of the templates of a workload kind
// (nil for other kinds): the Job and pod templates of a CronJob, the pod
// template of the others.
func TemplatePaths(group, kind string) [][]string { return podTemplates[GroupKind{group, kind}] }

// TemplateLabels returns the labels of the templates (TemplatePaths) of a
// workload object; nil for any other kind. A template without labels gives a
// nil map. obj is the object as decoded JSON.
func TemplateLabels(group, kind string, obj map[string]any) []map[string]string {
	paths := TemplatePaths(group, kind)
	if paths == nil {
		return nil
	}
	out := make([]map[string]string, len(paths))
	for i, p := range paths {
		m := obj
		for _, k := range p {
			m, _ = m[k].(map[string]any)
		}
		md, _ := m["metadata"].(map[string]any)
		out[i] = StringMap(md["labels"])
	}
	return out
}

// ClaimNamespace returns, for a PersistentVolume, the Namespace of the claim
// it is bound to (spec.claimRef.namespace), else "". The volume holds that
// claim's data, so that Namespace's label is its floor: a dynamically
// provisioned volume, which its provisioner creates unlabeled, is as
// sensitive as its claim — and the claim was judged when it was created.
// obj is the object as decoded JSON.
func ClaimNamespace(group, kind string, obj map[string]any) string {
	if group != "" || kind != "PersistentVolume" {
		return ""
	}
	spec, _ := obj["spec"].(map[string]any)
	ref, _ := spec["claimRef"].(map[string]any)
	ns, _ := ref["namespace"].(string)
	return ns
}

// StringMap converts decoded JSON labels or annotations. The apiserver
// only sends strings; any other value is kept as its Go rendering, which
// is never a sensitivity, so that a label that cannot be read is judged
// unknown rather than absent (fail closed).
func StringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		} else {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// Source says where an effective sensitivity came from.
type Source string

const (
	FromObject      Source = "object"
	FromPodTemplate Source = "pod-template"
	FromNamespace   Source = "namespace"
)

// Namespace is what Classify knows of the Namespace of a namespaced object.
type Namespace struct {
	Labels map[string]string
	// Unknown is true when the Namespace could not be read: then there is no
	// way to know its floor, and the object cannot be classified.
	Unknown bool
}

// Classification is the effective sensitivity of one object, or why there
// is none.
type Classification struct {
	// Level is the effective sensitivity; "" when Rule is set.
	Level config.Sensitivity
	// Source says which label gave Level (the object's wins a tie).
	Source Source
	// Own is the object's own label ("" when absent), for messages.
	Own config.Sensitivity
	// Rule and Message say why the object has no level: RuleUnlabeled,
	// RuleUnknownSensitivity or RuleNamespaceUnknown. Message says what to
	// do and does not name the object (callers do).
	Rule    Rule
	Message string
}

// Classify returns the effective sensitivity of o: the highest of its own
// label, its templates' labels (see TemplateLabels) and, for a namespaced
// object, its Namespace's label (a floor). A Namespace and other
// cluster-scoped objects have no floor. A label with a value that is not a
// sensitivity (even "") is an error, never ignored; a Namespace that could
// not be read is an error, never "no floor".
func Classify(o Object, ns Namespace) Classification {
	var c Classification
	consider := func(v string, has bool, from Source, what, fix string) bool {
		if !has {
			return true
		}
		s := config.Sensitivity(v)
		if !s.Valid() {
			c = Classification{Rule: RuleUnknownSensitivity, Message: fmt.Sprintf("%s label %s=%q is not a known sensitivity: %s (one of %s)",
				what, labels.Sensitivity, v, fix, config.JoinSensitivities(config.Sensitivities))}
			return false
		}
		if s.Rank() > c.Level.Rank() {
			c.Level, c.Source = s, from
		}
		return true
	}
	own, hasOwn := o.Labels[labels.Sensitivity]
	if !consider(own, hasOwn, FromObject, "its", "fix the label") {
		return c
	}
	c.Own = c.Level
	for _, tl := range o.TemplateLabels {
		v, has := tl[labels.Sensitivity]
		if !consider(v, has, FromPodTemplate, "its pod template's", "fix the template's label") {
			return c
		}
	}
	if floor := o.Floor(); floor != "" {
		if ns.Unknown {
			return Classification{Rule: RuleNamespaceUnknown, Message: fmt.Sprintf(
				"its Namespace %s could not be read, so its %s floor is unknown: retry when the Namespace exists and the webhook can read it",
				floor, labels.Sensitivity)}
		}
		v, has := ns.Labels[labels.Sensitivity]
		if !consider(v, has, FromNamespace, "its Namespace "+floor+"'s", "fix the Namespace's label") {
			return c
		}
	}
	if c.Level == "" {
		c.Rule, c.Message = RuleUnlabeled, unlabeledMessage(o)
	}
	return c
}

func unlabeledMessage(o Object) string {
	switch {
	case o.isNamespace():
		return fmt.Sprintf("the Namespace has no %s label: add one of %s", labels.Sensitivity, config.JoinSensitivities(config.Sensitivities))
	case o.ClusterScoped && o.ClaimNamespace != "":
		return fmt.Sprintf("neither the volume nor its claim's Namespace %s has a %s label: label the Namespace (or the volume) with one of %s",
			o.ClaimNamespace, labels.Sensitivity, config.JoinSensitivities(config.Sensitivities))
	case o.ClusterScoped || o.Namespace == "":
		return fmt.Sprintf("cluster-scoped objects need their own %s label (no Namespace floor applies; a PersistentVolume bound to a claim takes its claim's Namespace's): add one of %s",
			labels.Sensitivity, config.JoinSensitivities(config.Sensitivities))
	default:
		return fmt.Sprintf("neither the object nor its Namespace %s has a %s label, so strata will not guess where its data may go: label the object or the Namespace with one of %s",
			o.Namespace, labels.Sensitivity, config.JoinSensitivities(config.Sensitivities))
	}
}

// Note describes where Level came from for a placement reason: "" when it is
// the object's own label, else e.g. " (from namespace app)".
func (c Classification) Note(o Object) string {
	switch {
	case c.Source == FromObject || c.Level == "":
		return ""
	case c.Source == FromNamespace && c.Own == "":
		return " (from namespace " + o.Floor() + ")"
	case c.Source == FromNamespace:
		return " (namespace " + o.Floor() + " floor, object says " + string(c.Own) + ")"
	case c.Own == "":
		return " (from its pod template)"
	default:
		return " (pod template, object says " + string(c.Own) + ")"
	}
}

// Describe names the source of Level in a sentence, e.g. "label on the
// object" or "floor of Namespace ledger".
func (c Classification) Describe(o Object) string {
	switch c.Source {
	case FromNamespace:
		return "floor of Namespace " + o.Floor()
	case FromPodTemplate:
		return "label on its pod template"
	default:
		return "label on the object"
	}
}

// Allowed reports whether tiers (sensitivity → allowed tiers) admit data of
// level in tier. An unknown level is never allowed.
func Allowed(tiers map[config.Sensitivity][]config.Tier, level config.Sensitivity, tier config.Tier) bool {
	return level.Valid() && slices.Contains(tiers[level], tier)
}
