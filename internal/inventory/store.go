package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// saveAttempts bounds how often Save starts over when another writer
// switched the root between its read and its write.
const saveAttempts = 5

// loadAttempts bounds how often Load starts over when a shard it was about
// to read was collected because a newer root had replaced the one it read.
const loadAttempts = 3

func rootKey(env string) client.ObjectKey {
	return client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.InventoryName(env)}
}

// corrupt says why an inventory cannot be trusted, and what to do.
func corrupt(env string, err error) error {
	return fmt.Errorf("inventory %s/%s is corrupt (%v): strata will not prune from it; fix or delete the ConfigMap (and its shards, label %s=%s) and reconcile again",
		labels.SystemNamespace, labels.InventoryName(env), err, labels.InventoryOf, env)
}

// Load reads the inventory of env from the cluster behind c. A missing
// inventory is empty, not an error. An inventory that cannot be read whole
// (a shard missing, altered or too large) is an error: strata must then not
// prune.
func Load(ctx context.Context, c client.Client, env string) (*Inventory, error) {
	var err error
	for range loadAttempts {
		var inv *Inventory
		var retry bool
		inv, retry, err = load(ctx, c, env)
		if !retry {
			return inv, err
		}
	}
	return nil, err
}

// load reads the inventory once; retry is set when a shard was missing and
// the root has changed since it was read (a concurrent Save).
func load(ctx context.Context, c client.Client, env string) (inv *Inventory, retry bool, err error) {
	root := &corev1.ConfigMap{}
	err = c.Get(ctx, rootKey(env), root)
	if apierrors.IsNotFound(err) {
		return &Inventory{Environment: env}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading inventory %s/%s: %w", labels.SystemNamespace, root.Name, err)
	}
	inv = &Inventory{Environment: env, Exists: true}
	if s := root.Data[statusKey]; s != "" {
		_ = json.Unmarshal([]byte(s), &inv.Status) // status is informational
	}
	switch f := formatOf(root); f {
	case "":
		if s := root.Data[entriesKey]; s != "" {
			if err := json.Unmarshal([]byte(s), &inv.Entries); err != nil {
				return nil, false, corrupt(env, err)
			}
		}
		return inv, false, nil
	case formatSharded:
	default:
		return nil, false, fmt.Errorf("inventory %s/%s has format %q, which this strata cannot read (written by a newer version?): strata will not prune from it; run the newer strata",
			labels.SystemNamespace, root.Name, f)
	}
	_, refs, count, err := parseRoot(root.Name, root.Data)
	if err != nil {
		return nil, false, corrupt(env, err)
	}
	inv.Entries = make([]Ref, 0, count)
	budget := int64(MaxRawBytes)
	in := interner{}
	for _, ref := range refs {
		sh := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: ref.Name}, sh); err != nil {
			if apierrors.IsNotFound(err) {
				now := &corev1.ConfigMap{}
				if err2 := c.Get(ctx, rootKey(env), now); err2 == nil && now.ResourceVersion != root.ResourceVersion {
					return nil, true, fmt.Errorf("inventory %s/%s changed while it was read; try again", labels.SystemNamespace, root.Name)
				}
				return nil, false, corrupt(env, fmt.Errorf("its shard %s is missing", ref.Name))
			}
			return nil, false, fmt.Errorf("reading inventory shard %s/%s: %w", labels.SystemNamespace, ref.Name, err)
		}
		if sh.Labels[labels.InventoryOf] != env {
			return nil, false, corrupt(env, fmt.Errorf("its shard %s is labelled %s=%q", ref.Name, labels.InventoryOf, sh.Labels[labels.InventoryOf]))
		}
		entries, err := decodeShard(ref, sh.BinaryData[shardDataKey], &budget)
		if err != nil {
			return nil, false, corrupt(env, fmt.Errorf("shard %s: %w", ref.Name, err))
		}
		for _, e := range entries {
			inv.Entries = append(inv.Entries, in.ref(e))
		}
	}
	if err := checkOrder(inv.Entries); err != nil {
		return nil, false, corrupt(env, err)
	}
	return inv, false, nil
}

// LoadStatus reads the status of the inventory of env, not its entries:
// for the readers of status (strata status, the status page, rollback's
// wait), which would otherwise read every shard of a large inventory at
// each poll. It checks the root and that every shard it lists exists (a
// metadata-only GET each), not the shards' content, which Load checks
// before strata prunes. The result has no Entries and cannot be saved.
func LoadStatus(ctx context.Context, c client.Client, env string) (*Inventory, error) {
	var err error
	for range loadAttempts {
		var inv *Inventory
		var retry bool
		inv, retry, err = loadStatus(ctx, c, env)
		if !retry {
			return inv, err
		}
	}
	return nil, err
}

// loadStatus reads the status once; retry is set when a shard was missing
// and the root has changed since it was read (a concurrent Save).
func loadStatus(ctx context.Context, c client.Client, env string) (*Inventory, bool, error) {
	root := &corev1.ConfigMap{}
	err := c.Get(ctx, rootKey(env), root)
	if apierrors.IsNotFound(err) {
		return &Inventory{Environment: env, statusOnly: true}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading inventory %s/%s: %w", labels.SystemNamespace, root.Name, err)
	}
	inv := &Inventory{Environment: env, Exists: true, statusOnly: true}
	if s := root.Data[statusKey]; s != "" {
		_ = json.Unmarshal([]byte(s), &inv.Status) // status is informational
	}
	switch f := formatOf(root); f {
	case "":
		return inv, false, nil
	case formatSharded:
	default:
		return nil, false, fmt.Errorf("inventory %s/%s has format %q, which this strata cannot read (written by a newer version?): run the newer strata",
			labels.SystemNamespace, root.Name, f)
	}
	_, refs, _, err := parseRoot(root.Name, root.Data)
	if err != nil {
		return nil, false, corrupt(env, err)
	}
	// Metadata only (no entries), and the verb Load needs: get.
	for _, r := range refs {
		sh := &metav1.PartialObjectMetadata{}
		sh.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
		err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: r.Name}, sh)
		switch {
		case apierrors.IsNotFound(err):
			now := &corev1.ConfigMap{}
			if err := c.Get(ctx, rootKey(env), now); err == nil && now.ResourceVersion != root.ResourceVersion {
				return nil, true, fmt.Errorf("inventory %s/%s changed while it was read; try again", labels.SystemNamespace, root.Name)
			}
			return nil, false, corrupt(env, fmt.Errorf("its shard %s is missing", r.Name))
		case err != nil:
			return nil, false, fmt.Errorf("reading inventory shard %s/%s: %w", labels.SystemNamespace, r.Name, err)
		case sh.Labels[labels.InventoryOf] != env:
			return nil, false, corrupt(env, fmt.Errorf("its shard %s is labelled %s=%q", r.Name, labels.InventoryOf, sh.Labels[labels.InventoryOf]))
		}
	}
	return inv, false, nil
}

// formatOf returns the format of root: "" for the single ConfigMap of
// format 1. A root with data.entries is of format 1 whatever else it holds:
// Save never writes that key, so an older strata wrote it last (after a
// downgrade, its server-side apply left the format-2 keys it did not know).
func formatOf(root *corev1.ConfigMap) string {
	if _, ok := root.Data[entriesKey]; ok {
		return ""
	}
	return root.Data[formatKey]
}

// interner shares the strings that repeat across entries (group, version,
// kind, namespace, revision), so that 50,000 entries do not hold 50,000
// copies of each.
type interner map[string]string

func (in interner) str(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

func (in interner) ref(e Ref) Ref {
	e.Group, e.Version, e.Kind = in.str(e.Group), in.str(e.Version), in.str(e.Kind)
	e.Namespace, e.Revision = in.str(e.Namespace), in.str(e.Revision)
	return e
}

// Save writes inv: the shards not yet in the cluster first, then the root
// that lists them in one update (conditional on the root read just before,
// so that a concurrent writer's root is never overwritten blindly: Save then
// starts over from it), then it deletes the shards no root lists any more.
// A failure at any step leaves Load reading the complete old or the complete
// new inventory; the next Save collects what a failed one left behind. It
// creates strata-system if needed and returns the stored root (events are
// recorded on it).
func Save(ctx context.Context, c client.Client, inv *Inventory) (*corev1.ConfigMap, error) {
	if inv.statusOnly {
		return nil, fmt.Errorf("inventory %s/%s was read without its entries (LoadStatus) and cannot be saved: read it with Load",
			labels.SystemNamespace, labels.InventoryName(inv.Environment))
	}
	if !inv.Exists {
		if err := EnsureNamespace(ctx, c); err != nil {
			return nil, err
		}
	}
	entries := sortedEntries(inv.Entries)
	status, err := json.Marshal(inv.Status)
	if err != nil {
		return nil, err
	}
	var conflict error
	for range saveAttempts {
		root, err := save(ctx, c, inv, entries, status)
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			conflict = err
			continue
		}
		if err != nil {
			return nil, err
		}
		inv.Exists = true
		return root, nil
	}
	return nil, fmt.Errorf("writing inventory %s/%s: another writer changed it %d times in a row (%v); is a second strata reconciling this cluster without leader election?",
		labels.SystemNamespace, labels.InventoryName(inv.Environment), saveAttempts, conflict)
}

// save makes one attempt; a conflict means the root changed since it was read.
func save(ctx context.Context, c client.Client, inv *Inventory, entries []Ref, status []byte) (*corev1.ConfigMap, error) {
	env := inv.Environment
	name := labels.InventoryName(env)
	root := &corev1.ConfigMap{}
	err := c.Get(ctx, rootKey(env), root)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading inventory %s/%s: %w", labels.SystemNamespace, name, err)
	}
	// The shards the current root lists are reused when their content is
	// unchanged; only a readable root's list is trusted.
	var gen int64
	have := map[string]shardRef{}
	if g, err := strconv.ParseInt(root.Data[generationKey], 10, 64); exists && err == nil && g > 0 {
		gen = g // also after a downgrade, so that the shards left from before are collected
	}
	if exists && formatOf(root) == formatSharded {
		if _, refs, _, err := parseRoot(name, root.Data); err == nil {
			for _, r := range refs {
				have[r.SHA256] = r
			}
		}
	}
	gen++
	shards, err := encodeShards(name, gen, entries, have)
	if err != nil {
		return nil, fmt.Errorf("writing inventory %s/%s: %w", labels.SystemNamespace, name, err)
	}
	refs := make([]shardRef, len(shards))
	for i, sh := range shards {
		if sh.data != nil {
			if err := writeShard(ctx, c, env, gen, sh); err != nil {
				return nil, err
			}
		}
		refs[i] = sh.ref
	}
	list, err := json.Marshal(refs)
	if err != nil {
		return nil, err
	}
	if !exists {
		root = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: name}}
	}
	// Labels and annotations others put on the root stay.
	if root.Labels == nil {
		root.Labels = map[string]string{}
	}
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Labels[labels.ManagedBy], root.Labels[labels.Environment] = labels.ManagedByValue, env
	root.Annotations[labels.Revision] = inv.Status.Revision
	root.Data = map[string]string{
		formatKey: formatSharded, generationKey: strconv.FormatInt(gen, 10),
		countKey: strconv.Itoa(len(entries)), shardsKey: string(list), statusKey: string(status),
	}
	root.BinaryData = nil
	if exists {
		err = c.Update(ctx, root, client.FieldOwner(labels.FieldManager)) // conditional on root.ResourceVersion
	} else {
		err = c.Create(ctx, root, client.FieldOwner(labels.FieldManager))
	}
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		return nil, fmt.Errorf("writing inventory %s/%s: %w", labels.SystemNamespace, name, err)
	}
	collect(ctx, c, env, root)
	return root, nil
}

// writeShard creates sh; one of that name left by a failed Save of the
// same generation is replaced when its content differs.
func writeShard(ctx context.Context, c client.Client, env string, gen int64, sh shard) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: labels.SystemNamespace, Name: sh.ref.Name,
			Labels: map[string]string{
				labels.ManagedBy: labels.ManagedByValue, labels.InventoryOf: env,
				labels.InventoryGeneration: strconv.FormatInt(gen, 10),
			},
		},
		BinaryData: map[string][]byte{shardDataKey: sh.data},
	}
	err := c.Create(ctx, cm, client.FieldOwner(labels.FieldManager))
	if apierrors.IsAlreadyExists(err) {
		old := &corev1.ConfigMap{}
		if err = c.Get(ctx, client.ObjectKeyFromObject(cm), old); err == nil {
			if slices.Equal(old.BinaryData[shardDataKey], sh.data) && old.Labels[labels.InventoryOf] == env && len(old.BinaryData) == 1 && len(old.Data) == 0 {
				return nil
			}
			cm.ResourceVersion = old.ResourceVersion
			err = c.Update(ctx, cm, client.FieldOwner(labels.FieldManager))
		}
	}
	if err != nil {
		return fmt.Errorf("writing inventory shard %s/%s: %w", labels.SystemNamespace, sh.ref.Name, err)
	}
	return nil
}

// collect deletes the shards of env that the root just written does not
// list and that belong to its generation or an older one: those of a newer
// generation are being written by a concurrent Save whose root is still to
// come. It runs only while the root is the one written (rv unchanged), and
// is best effort: what it leaves, the next Save collects.
func collect(ctx context.Context, c client.Client, env string, root *corev1.ConfigMap) {
	gen, refs, _, err := parseRoot(root.Name, root.Data)
	if err != nil {
		return
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	if err := c.List(ctx, list, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{labels.InventoryOf: env}); err != nil {
		return
	}
	now := &corev1.ConfigMap{}
	if err := c.Get(ctx, rootKey(env), now); err != nil || now.ResourceVersion != root.ResourceVersion {
		return
	}
	listed := map[string]bool{}
	for _, r := range refs {
		listed[r.Name] = true
	}
	for i := range list.Items {
		sh := &list.Items[i]
		g, err := strconv.ParseInt(sh.Labels[labels.InventoryGeneration], 10, 64)
		if listed[sh.Name] || err == nil && g > gen {
			continue
		}
		del := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: sh.Namespace, Name: sh.Name}}
		if err := c.Delete(ctx, del, client.Preconditions{UID: &sh.UID}); err != nil && !apierrors.IsNotFound(err) {
			return
		}
	}
}

// Orphans lists the shards of env in the cluster behind c that its root
// does not list (left by a failed Save, until the next one collects them).
func Orphans(ctx context.Context, c client.Client, env string) ([]string, error) {
	root := &corev1.ConfigMap{}
	if err := c.Get(ctx, rootKey(env), root); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	listed := map[string]bool{}
	if formatOf(root) == formatSharded {
		_, refs, _, err := parseRoot(root.Name, root.Data)
		if err != nil {
			return nil, corrupt(env, err)
		}
		for _, r := range refs {
			listed[r.Name] = true
		}
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	if err := c.List(ctx, list, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{labels.InventoryOf: env}); err != nil {
		return nil, err
	}
	var out []string
	for _, sh := range list.Items {
		if !listed[sh.Name] {
			out = append(out, sh.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// EnsureNamespace creates strata-system when it does not exist.
func EnsureNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace, Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue}},
	}
	if err := c.Patch(ctx, ns, client.Apply, client.FieldOwner(labels.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("creating namespace %s: %w", labels.SystemNamespace, err)
	}
	return nil
}
