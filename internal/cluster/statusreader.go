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

// ownedReader is a kstatus ClusterReader that, before each poll, reads the
// objects waited for, strata's objects only.
//
// Its cost follows what is still rolling out, not what was applied: an
// object Current at its last read is not read again until the end, and a
// kind and namespace with few such objects left has them read by name
// instead of listed whole. (A 1,000-object first apply's wait LISTs were
// half of strata's CPU; a quarter of their bytes were Services long
// healthy.) The poll in which nothing is left pending lists everything
// again, so the wait still ends only on a poll that read every object
// afresh and found all of them Current.
type ownedReader struct {
	reader client.Reader
	mapper meta.RESTMapper
	sel    k8slabels.Selector
	gns    []gkNamespace
	names  map[gkNamespace][]string // the objects waited for

	// pending holds, per kind and namespace, the objects not Current at
	// their last read. Sync's own: the engine calls Sync from one
	// goroutine, which is also the only writer of cache.
	pending map[gkNamespace]map[string]bool

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

// getFraction: the objects still pending in a kind and namespace are read
// by name when they are at most 1/getFraction of what its last LIST
// returned — one Deployment changed among a namespace's hundred is read by
// name while it rolls out, not with the other 99.
const getFraction = 4

// syncConcurrency bounds the reads of one poll in flight at once.
const syncConcurrency = 4

func newOwnedReader(r client.Reader, mapper meta.RESTMapper, ids object.ObjMetadataSet) (engine.ClusterReader, error) {
	o := &ownedReader{reader: r, mapper: mapper, sel: k8slabels.SelectorFromSet(k8slabels.Set{labels.ManagedBy: labels.ManagedByValue}),
		names: map[gkNamespace][]string{}, pending: map[gkNamespace]map[string]bool{}, cache: map[gkNamespace]cached{}}
	for _, id := range ids {
		gn := gkNamespace{id.GroupKind, id.Namespace}
		if _, seen := o.names[gn]; !seen {
			o.gns = append(o.gns, gn)
			o.pending[gn] = map[string]bool{}
		}
		o.names[gn] = append(o.names[gn], id.Name)
		o.pending[gn][id.Name] = true
	}
	return o, nil
}

// named is one object read by name.
type named struct {
	gn   gkNamespace
	name string
}

// Sync reads what is still pending, a few requests side by side: a poll's
// reads are round trips, and the poll ends with the slowest.
func (o *ownedReader) Sync(ctx context.Context) error {
	var lists, rest []gkNamespace
	var gets []named
	for _, gn := range o.gns {
		p := o.pending[gn]
		switch {
		case len(p) == 0:
			rest = append(rest, gn)
		case len(p)*getFraction <= len(o.cache[gn].items):
			for name := range p {
				gets = append(gets, named{gn, name})
			}
			rest = append(rest, gn)
		default:
			lists = append(lists, gn)
		}
	}
	fresh, err := o.read(ctx, lists, gets)
	if err != nil {
		return err
	}
	if len(rest) > 0 && o.nonePending() {
		// Everything looks Current: list the rest afresh too, so that the
		// poll ending the wait sees one that went back.
		again, err := o.read(ctx, rest, nil)
		if err != nil {
			return err
		}
		maps.Copy(fresh, again)
	}
	o.mu.Lock()
	maps.Copy(o.cache, fresh)
	o.mu.Unlock()
	return nil
}

func (o *ownedReader) nonePending() bool {
	for _, p := range o.pending {
		if len(p) > 0 {
			return false
		}
	}
	return true
}

// fetched is the outcome of one read by name: obj nil when it is not there.
type fetched struct {
	obj *unstructured.Unstructured
	err error
}

// read lists gns and gets objects by name, syncConcurrency at a time, and
// returns the new cache entries of every kind and namespace it read,
// having recorded what is still pending.
func (o *ownedReader) read(ctx context.Context, gns []gkNamespace, objs []named) (map[gkNamespace]cached, error) {
	listed := make([]cached, len(gns))
	byName := make([]fetched, len(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(syncConcurrency)
	for i, gn := range gns {
		g.Go(func() (err error) {
			listed[i], err = o.list(gctx, gn)
			return err
		})
	}
	for i, n := range objs {
		g.Go(func() (err error) {
			byName[i], err = o.get(gctx, n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[gkNamespace]cached, len(gns))
	for i, gn := range gns {
		out[gn] = listed[i]
		o.pending[gn] = notCurrent(o.names[gn], listed[i])
	}
	updates := map[gkNamespace]map[string]fetched{}
	for i, n := range objs {
		if updates[n.gn] == nil {
			updates[n.gn] = map[string]fetched{}
		}
		updates[n.gn][n.name] = byName[i]
		if r := byName[i]; r.err != nil || r.obj == nil || !isCurrent(r.obj) {
			o.pending[n.gn][n.name] = true
		} else {
			delete(o.pending[n.gn], n.name)
		}
	}
	for gn, u := range updates {
		out[gn] = withUpdates(o.cache[gn], u)
	}
	return out, nil
}

// withUpdates is e with the objects read by name in place of their last
// read; an object no longer there is dropped, and a failed read is the
// entry's error until the next read succeeds.
func withUpdates(e cached, u map[string]fetched) cached {
	out := cached{items: make([]unstructured.Unstructured, 0, len(e.items)+len(u))}
	seen := make(map[string]bool, len(u))
	for _, it := range e.items {
		g, ok := u[it.GetName()]
		switch {
		case !ok, g.err != nil:
			out.items = append(out.items, it)
		case g.obj != nil:
			out.items = append(out.items, *g.obj)
		}
		seen[it.GetName()] = true
	}
	for name, g := range u {
		if g.err != nil && out.err == nil {
			out.err = g.err
		}
		if !seen[name] && g.err == nil && g.obj != nil {
			out.items = append(out.items, *g.obj)
		}
	}
	return out
}

// notCurrent is the set of names not present and Current in e.
func notCurrent(names []string, e cached) map[string]bool {
	p := map[string]bool{}
	byName := make(map[string]*unstructured.Unstructured, len(e.items))
	for i := range e.items {
		byName[e.items[i].GetName()] = &e.items[i]
	}
	for _, n := range names {
		if u := byName[n]; e.err != nil || u == nil || !isCurrent(u) {
			p[n] = true
		}
	}
	return p
}

func isCurrent(u *unstructured.Unstructured) bool {
	r, err := status.Compute(u)
	return err == nil && r.Status == status.CurrentStatus
}

// get reads one of strata's objects by name, as list would find it: one
// without strata's label is not there. Errors are kept as list keeps them.
func (o *ownedReader) get(ctx context.Context, n named) (fetched, error) {
	mapping, err := o.mapper.RESTMapping(n.gn.gk)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return fetched{err: err}, nil
		}
		return fetched{}, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mapping.GroupVersionKind)
	if err := o.reader.Get(ctx, client.ObjectKey{Namespace: n.gn.ns, Name: n.name}, u); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return fetched{}, nil
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			return fetched{}, err
		}
		return fetched{err: err}, nil
	}
	if !o.sel.Matches(k8slabels.Set(u.GetLabels())) {
		return fetched{}, nil
	}
	return fetched{obj: u}, nil
}

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
