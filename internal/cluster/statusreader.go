package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/statusreaders"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// newStatusPoller is kstatus's poller reading only what strata waits for.
// kstatus computes an object's status from the object alone; the default
// readers also list every ReplicaSet and Pod of a Deployment's namespace
// on every poll to describe its children, which strata never reports — at
// a few hundred Deployments that was half of strata's CPU during a health
// wait, and load on the apiserver it waits for.
func newStatusPoller(c client.Reader, mapper meta.RESTMapper) *polling.StatusPoller {
	return polling.NewStatusPoller(c, mapper, polling.Options{
		CustomStatusReaders:  []engine.StatusReader{statusreaders.NewGenericStatusReader(mapper, status.Compute)},
		ClusterReaderFactory: engine.ClusterReaderFactoryFunc(newOwnedReader),
	})
}

// ownedReader is a kstatus ClusterReader that, before each poll, lists the
// kinds and namespaces of the objects waited for, strata's objects only.
//
// A kind and namespace whose waited-for objects were all Current at the
// last poll is settled: later polls serve its last LIST instead of listing
// it again, so a wait's cost follows what is still rolling out (at 1,000
// objects the LISTs of ConfigMaps and Services long healthy were half of
// strata's CPU in a first apply). The poll in which nothing is left
// unsettled lists the settled ones again, so the wait still ends only on
// a poll that read every object afresh and found all of them Current.
type ownedReader struct {
	reader client.Reader
	mapper meta.RESTMapper
	sel    k8slabels.Selector
	gns    []gkNamespace
	names  map[gkNamespace][]string // the objects waited for

	// settled is Sync's own; the engine calls Sync from one goroutine.
	settled map[gkNamespace]bool

	mu    sync.RWMutex
	cache map[gkNamespace]cached
}

type gkNamespace struct {
	gk schema.GroupKind
	ns string
}

type cached struct {
	items []unstructured.Unstructured
	err   error
}

func newOwnedReader(r client.Reader, mapper meta.RESTMapper, ids object.ObjMetadataSet) (engine.ClusterReader, error) {
	o := &ownedReader{reader: r, mapper: mapper, sel: k8slabels.SelectorFromSet(k8slabels.Set{labels.ManagedBy: labels.ManagedByValue}),
		names: map[gkNamespace][]string{}, settled: map[gkNamespace]bool{}, cache: map[gkNamespace]cached{}}
	for _, id := range ids {
		gn := gkNamespace{id.GroupKind, id.Namespace}
		if _, seen := o.names[gn]; !seen {
			o.gns = append(o.gns, gn)
		}
		o.names[gn] = append(o.names[gn], id.Name)
	}
	return o, nil
}

// Sync lists every kind and namespace not yet settled, a few side by side:
// a poll's LISTs are round trips, and the poll ends with the slowest.
func (o *ownedReader) Sync(ctx context.Context) error {
	var stale, rest []gkNamespace
	for _, gn := range o.gns {
		if o.settled[gn] {
			rest = append(rest, gn)
		} else {
			stale = append(stale, gn)
		}
	}
	fresh, err := o.listAll(ctx, stale)
	if err != nil {
		return err
	}
	o.settle(fresh)
	if len(rest) > 0 && len(o.settled) == len(o.gns) {
		// Everything looks Current: read the settled ones afresh too, so
		// that the poll ending the wait sees one that went back.
		again, err := o.listAll(ctx, rest)
		if err != nil {
			return err
		}
		o.settle(again)
		maps.Copy(fresh, again)
	}
	o.mu.Lock()
	maps.Copy(o.cache, fresh)
	o.mu.Unlock()
	return nil
}

// listAll lists gns, syncConcurrency at a time.
func (o *ownedReader) listAll(ctx context.Context, gns []gkNamespace) (map[gkNamespace]cached, error) {
	entries := make([]cached, len(gns))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(syncConcurrency)
	for i, gn := range gns {
		g.Go(func() error {
			e, err := o.list(gctx, gn)
			entries[i] = e
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[gkNamespace]cached, len(gns))
	for i, gn := range gns {
		out[gn] = entries[i]
	}
	return out, nil
}

// settle records which of the freshly listed kinds and namespaces have
// every object waited for present and Current.
func (o *ownedReader) settle(fresh map[gkNamespace]cached) {
	for gn, e := range fresh {
		if allCurrent(o.names[gn], e) {
			o.settled[gn] = true
		} else {
			delete(o.settled, gn)
		}
	}
}

func allCurrent(names []string, e cached) bool {
	if e.err != nil {
		return false
	}
	byName := make(map[string]*unstructured.Unstructured, len(e.items))
	for i := range e.items {
		byName[e.items[i].GetName()] = &e.items[i]
	}
	for _, n := range names {
		u, ok := byName[n]
		if !ok {
			return false
		}
		if r, err := status.Compute(u); err != nil || r.Status != status.CurrentStatus {
			return false
		}
	}
	return true
}

// syncConcurrency bounds the LISTs of one poll in flight at once.
const syncConcurrency = 4

// list lists strata's objects of one kind and namespace. An error that is
// the object's (kind not yet established, forbidden) is kept for the
// object's status; a cancelled poll or an unknown mapping error fails it.
func (o *ownedReader) list(ctx context.Context, gn gkNamespace) (cached, error) {
	mapping, err := o.mapper.RESTMapping(gn.gk)
	if err != nil {
		if meta.IsNoMatchError(err) { // a CRD still being established
			return cached{err: err}, nil
		}
		return cached{}, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(mapping.GroupVersionKind.GroupVersion().WithKind(mapping.GroupVersionKind.Kind + "List"))
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: o.sel}}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		opts = append(opts, client.InNamespace(gn.ns))
	}
	if err := o.reader.List(ctx, list, opts...); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return cached{}, err
		}
		return cached{err: err}, nil
	}
	return cached{items: list.Items}, nil
}

func (o *ownedReader) entry(gk schema.GroupKind, ns string) (cached, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	e, ok := o.cache[gkNamespace{gk, ns}]
	if !ok {
		return e, fmt.Errorf("%s in namespace %q is not among the objects waited for", gk, ns)
	}
	return e, e.err
}

func (o *ownedReader) Get(_ context.Context, key client.ObjectKey, obj *unstructured.Unstructured) error {
	gk := obj.GroupVersionKind().GroupKind()
	e, err := o.entry(gk, key.Namespace)
	if err != nil {
		return err
	}
	for _, u := range e.items {
		if u.GetName() == key.Name {
			obj.Object = u.Object
			return nil
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{Group: gk.Group, Resource: gk.Kind}, key.Name)
}

func (o *ownedReader) ListNamespaceScoped(_ context.Context, list *unstructured.UnstructuredList, ns string, sel k8slabels.Selector) error {
	e, err := o.entry(list.GroupVersionKind().GroupKind(), ns)
	if err != nil {
		return err
	}
	list.Items = nil
	for _, u := range e.items {
		if sel.Matches(k8slabels.Set(u.GetLabels())) {
			list.Items = append(list.Items, u)
		}
	}
	return nil
}

func (o *ownedReader) ListClusterScoped(ctx context.Context, list *unstructured.UnstructuredList, sel k8slabels.Selector) error {
	return o.ListNamespaceScoped(ctx, list, "", sel)
}
