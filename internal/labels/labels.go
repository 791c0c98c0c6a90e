// Package labels defines every label key, annotation key, name and path that
// strata shares between its code, its Helm chart and its tests. Nothing else
// in the module spells these strings.
package labels

const (
	// Prefix is the domain of every strata key.
	Prefix = "strata.dev/"

	// Sensitivity is the data classification label of objects and Namespaces.
	Sensitivity = Prefix + "sensitivity"
	// Tiers narrows an object to these tiers (comma-separated); they must be allowed.
	Tiers = Prefix + "tiers"
	// Clusters narrows an object to these clusters (comma-separated).
	Clusters = Prefix + "clusters"
	// Failover set to "true" lets an object move to the next allowed tier when
	// the clusters of its tier are down.
	Failover = Prefix + "failover"
	// BreakGlass carries the reason for an audited emergency bypass.
	BreakGlass = Prefix + "break-glass"
	// Reconcile set to ReconcileDisabled, on an object in git or in the
	// cluster, stops strata from applying, correcting or pruning it (drift is
	// reported, not corrected), as Flux's kustomize.toolkit.fluxcd.io/reconcile.
	Reconcile = Prefix + "reconcile"
	// ReconcileDisabled is the value of Reconcile that freezes an object.
	ReconcileDisabled = "disabled"
	// ReconcileEnabled is the default value of Reconcile.
	ReconcileEnabled = "enabled"
	// SSA set to SSAIfNotPresent on an object in git makes strata create it
	// when it is missing and never update it, as Flux's
	// kustomize.toolkit.fluxcd.io/ssa: IfNotPresent.
	SSA = Prefix + "ssa"
	// SSAIfNotPresent is the value of SSA for create-only objects.
	SSAIfNotPresent = "IfNotPresent"
	// SSAOverride is the default value of SSA: strata's fields always win.
	SSAOverride = "Override"

	// ManagedBy is set to ManagedByValue on every object strata applies.
	ManagedBy = Prefix + "managed-by"
	// ManagedByValue is the value of ManagedBy.
	ManagedByValue = "strata"
	// Environment is the label naming the environment an applied object belongs to.
	Environment = Prefix + "environment"
	// Revision is the annotation with the commit an applied object comes from.
	Revision = Prefix + "revision"
	// Placement is the annotation with the one-line placement reason.
	Placement = Prefix + "placement"

	// FieldManager is the server-side apply field manager of strata.
	FieldManager = "strata"
	// SystemNamespace holds strata's inventories and cluster credentials.
	SystemNamespace = "strata-system"
	// InventoryPrefix prefixes the per-environment inventory ConfigMap name.
	InventoryPrefix = "strata-inventory-"
	// InventoryOf labels the shards of an inventory (ConfigMaps
	// strata-inventory-<env>.<generation>.<hash>) with their environment, so
	// that old shards can be listed and deleted; its root does not carry it.
	InventoryOf = Prefix + "inventory-of"
	// InventoryGeneration labels a shard with the generation of the
	// inventory root it was first written for.
	InventoryGeneration = Prefix + "inventory-generation"
	// ClusterSecretPrefix prefixes the Secret holding a cluster's kubeconfig.
	ClusterSecretPrefix = "strata-cluster-"
	// SuspensionPrefix prefixes the per-environment ConfigMap whose presence
	// suspends reconciliation of a cluster (strata suspend / resume).
	SuspensionPrefix = "strata-suspend-"
	// SuspendFieldManager is the field manager of strata suspend, so that
	// the reconciler (field manager strata) never owns a suspension.
	SuspendFieldManager = "strata-suspend"

	// WebhookPath is the admission webhook's validation path.
	WebhookPath = "/validate"
	// HookPath is the reconciler's signed push webhook path.
	HookPath = "/hook"

	// ApprovalsNotesRef is the git notes ref holding signed approvals.
	ApprovalsNotesRef = "refs/notes/strata-approvals"

	// BreakGlassEventReason is the reason of the Event the webhook records
	// for a break-glass admission (read by strata audit and the status page).
	BreakGlassEventReason = "BreakGlass"
)

// The webhook's metric names, shared by the webhook, the chart's dashboard
// and alert rules, the status page and the benchmarks.
const (
	MetricWebhookRequests   = "strata_webhook_requests_total"
	MetricWebhookDenials    = "strata_webhook_denials_total"
	MetricWebhookLatency    = "strata_webhook_latency_seconds"
	MetricWebhookBreakGlass = "strata_webhook_break_glass_total"
)

// ControlPlaneNamespaces are the Kubernetes control plane's own namespaces.
// With SystemNamespace they are the webhook's default exempt namespaces
// (strata.yaml webhook.exemptNamespaces, the chart's values).
var ControlPlaneNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// InventoryName returns the name of the inventory ConfigMap of env.
func InventoryName(env string) string { return InventoryPrefix + env }

// SuspensionName returns the name of the ConfigMap suspending env.
func SuspensionName(env string) string { return SuspensionPrefix + env }

// ClusterSecretName returns the name of the Secret with cluster's kubeconfig.
func ClusterSecretName(cluster string) string { return ClusterSecretPrefix + cluster }
