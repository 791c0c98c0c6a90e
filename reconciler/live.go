package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// liveObject is what one LIST tells about an object strata applied.
type liveObject struct {
	fingerprint string
	status      status.Status
	// managers are the field managers other than strata that touched the
	// object's main resource (not its status).
	managers []string
	// disabled is set when the live object carries strata.dev/reconcile:
	// disabled.
	disabled bool
	// resourceVersion is the precondition of a direct apply (applyDirect).
	resourceVersion string
}

// listPageSize bounds one LIST page: only each object's summary is kept,
// so a kind with thousands of objects never sits in memory whole.
var listPageSize int64 = 500

// listLive lists, one kind at a time and in pages, the objects strata
// applied to the cluster for env. Kinds unknown to the cluster (a CRD not
// yet applied) are skipped: their objects are simply absent.
func listLive(ctx context.Context, c client.Client, env string, gvks []schema.GroupVersionKind) (map[string]*liveObject, error) {
	sel := client.MatchingLabels{labels.ManagedBy: labels.ManagedByValue, labels.Environment: env}
	// Kinds are listed side by side (a few at a time): the LISTs of one
	// reconcile are round trips that wait on the apiserver.
	parts := make([]map[string]*liveObject, len(gvks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for i, gvk := range gvks {
		parts[i] = map[string]*liveObject{}
		g.Go(func() error { return listKind(gctx, c, gvk, sel, parts[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]*liveObject, len(parts))
	for _, p := range parts {
		maps.Copy(out, p)
	}
	return out, nil
}

// listConcurrency bounds the kinds listed at once per cluster.
const listConcurrency = 4

// getLimit is the most applied objects read back one by one after an
// apply; more are read by listing their kinds.
const getLimit = 64

// getConcurrency is how many of those GETs are in flight at once, as many
// as the apply's requests (applyChunks): the read-back comes after the
// health wait, so every round trip of it delays the cluster's status
// (bench/ttr: 40–90 ms for ~33 objects four at a time).
const getConcurrency = 16

// liveAfterApply reads the applied objects back, as listLive would (same
// keys, same summaries). A few are read one GET each, so that changing one
// ConfigMap among 50,000 does not list them all again.
func liveAfterApply(ctx context.Context, c client.Client, env string, applied []*unstructured.Unstructured) (map[string]*liveObject, error) {
	if len(applied) > getLimit {
		return listLive(ctx, c, env, gvksOfUnstructured(applied))
	}
	found := make([]*liveObject, len(applied))
	keys := make([]string, len(applied))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(getConcurrency)
	for i, a := range applied {
		g.Go(func() error {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(a.GroupVersionKind())
			err := c.Get(gctx, client.ObjectKeyFromObject(a), u)
			switch {
			case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
				return nil // absent, as from a LIST
			case err != nil:
				return fmt.Errorf("reading %s %s back: %w", a.GetKind(), client.ObjectKeyFromObject(a), err)
			}
			if l := u.GetLabels(); l[labels.ManagedBy] != labels.ManagedByValue || l[labels.Environment] != env {
				return nil // not strata's for env (listLive's selector)
			}
			keys[i] = refKey(u)
			found[i] = observe(u, u)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]*liveObject, len(applied))
	for i := range applied {
		if found[i] != nil {
			out[keys[i]] = found[i]
		}
	}
	return out, nil
}

// listKind lists the objects of a kind strata applied for env, page by
// page. Kinds healthy once they exist (alwaysCurrent) are listed as
// metadata only: the apiserver leaves out their data, which for thousands
// of ConfigMaps is most of the bytes; the others whole, for their status.
func listKind(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, sel client.MatchingLabels, out map[string]*liveObject) error {
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	cont := ""
	for {
		var list client.ObjectList
		if alwaysCurrent[gvk.GroupKind()] {
			l := &metav1.PartialObjectMetadataList{}
			l.SetGroupVersionKind(listGVK)
			list = l
		} else {
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(listGVK)
			list = l
		}
		if err := c.List(ctx, list, sel, client.Limit(listPageSize), client.Continue(cont)); err != nil {
			if meta.IsNoMatchError(err) {
				return nil
			}
			return fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		err := meta.EachListItem(list, func(o runtime.Object) error {
			m, err := meta.Accessor(o)
			if err != nil {
				return err
			}
			out[inventory.Ref{Group: gvk.Group, Kind: gvk.Kind, Namespace: m.GetNamespace(), Name: m.GetName()}.Key()] = observe(o, m)
			return nil
		})
		if err != nil {
			return fmt.Errorf("listing %s: %w", gvk.Kind, err)
		}
		if cont = list.GetContinue(); cont == "" {
			return nil
		}
	}
}

// observe summarizes a live object: a whole one's health is kstatus's; an
// object read as metadata only is of a kind without status (alwaysCurrent),
// which kstatus calls Current unless it is being deleted.
func observe(o runtime.Object, m metav1.Object) *liveObject {
	lo := summarize(m)
	if u, ok := o.(*unstructured.Unstructured); ok {
		lo.status = status.UnknownStatus
		if r, err := status.Compute(u); err == nil {
			lo.status = r.Status
		}
		return lo
	}
	lo.status = status.CurrentStatus
	if m.GetDeletionTimestamp() != nil {
		lo.status = status.TerminatingStatus
	}
	return lo
}

// summarize keeps what strata reads of a live object's metadata.
func summarize(o metav1.Object) *liveObject {
	m := &unstructured.Unstructured{}
	m.SetLabels(o.GetLabels())
	m.SetAnnotations(o.GetAnnotations())
	return &liveObject{fingerprint: fingerprint(o), managers: otherManagers(o), disabled: isDisabled(m), resourceVersion: o.GetResourceVersion()}
}

// alwaysCurrent are kinds kstatus reports Current as soon as they exist:
// they have no status that can be waited for. Leaving them out of the health
// wait keeps the poller from listing thousands of ConfigMaps every interval;
// the LIST after the wait still records them as healthy.
var alwaysCurrent = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}: true, {Kind: "Secret"}: true, {Kind: "ServiceAccount"}: true,
	{Kind: "LimitRange"}: true, {Kind: "ResourceQuota"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}: true, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}: true, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}: true, {Group: "scheduling.k8s.io", Kind: "PriorityClass"}: true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}: true,
}

// waitSet is the applied objects whose health can take time; skipped
// (keys of objects ssa left alone) are not waited for.
func waitSet(objs []*unstructured.Unstructured, skipped map[string]bool) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if skipped[refKey(u)] {
			continue
		}
		if !alwaysCurrent[u.GroupVersionKind().GroupKind()] {
			out = append(out, u)
		}
	}
	return out
}

// fingerprint changes when anyone changes the object's desired state: the
// generation for kinds with a spec (status updates leave it alone), the
// resourceVersion otherwise, plus a hash of labels and annotations (which
// never bump the generation).
func fingerprint(u metav1.Object) string {
	h := sha256.New()
	for _, m := range []map[string]string{u.GetLabels(), u.GetAnnotations()} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			h.Write([]byte(k + "=" + m[k] + "\n"))
		}
		h.Write([]byte{0})
	}
	meta := hex.EncodeToString(h.Sum(nil)[:8])
	if g := u.GetGeneration(); g > 0 {
		return "g" + strconv.FormatInt(g, 10) + ":" + meta
	}
	return "rv" + u.GetResourceVersion() + ":" + meta
}

func otherManagers(u metav1.Object) []string {
	var out []string
	for _, mf := range u.GetManagedFields() {
		if mf.Manager == labels.FieldManager || mf.Subresource == "status" || mf.Manager == "before-first-apply" {
			continue
		}
		if !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	return out
}

func describeManagers(ms []string) string {
	if len(ms) == 0 {
		return ""
	}
	return " (changed by " + strings.Join(ms, ", ") + ")"
}
