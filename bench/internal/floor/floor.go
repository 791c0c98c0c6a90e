// Package floor is the benchmarks' "no tool at all": the harness itself
// applies the objects a tool must end up with, in the least a step can cost
// the apiservers — one server-side apply request per object, cluster
// definitions (Namespaces) first, the rest Concurrency at a time, no GET,
// no dry-run — and polls kstatus every Poll until they are Current. A
// tool's time above the floor's is the tool's own.
package floor

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Owner is the floor's field manager.
const Owner = "bench-floor"

// Concurrency is how many of a cluster's apply requests the floor has in
// flight, as strata's applier (16 parts).
const Concurrency = 16

// Poll is the floor's kstatus poll interval: shorter than any tool's, so
// that the floor is not late by its own polling.
const Poll = 50 * time.Millisecond

// Apply server-side applies every object of objs, forced, one request each:
// the cluster definitions first, then the others Concurrency at a time.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	var first, rest []*unstructured.Unstructured
	for _, o := range objs {
		if ssautils.IsClusterDefinition(o) {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, stage := range [][]*unstructured.Unstructured{first, rest} {
		if err := applyEach(ctx, c, stage); err != nil {
			return err
		}
	}
	return nil
}

func applyEach(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(Concurrency)
	for _, o := range objs {
		g.Go(func() error {
			u := o.DeepCopy()
			if err := c.Patch(gctx, u, client.Apply, client.FieldOwner(Owner), client.ForceOwnership); err != nil {
				return fmt.Errorf("%s/%s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Manager returns an ssa manager on c whose poller reads any object, as
// Flux's does: strata's own cluster.Manager polls only objects carrying
// strata's labels, which what the floor applies may not.
func Manager(c client.Client) *ssa.ResourceManager {
	poller := polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{})
	return ssa.NewResourceManager(c, poller, ssa.Owner{Field: Owner})
}

// Wait polls until every object of objs is Current (failing fast on a
// failed one), or timeout.
func Wait(ctx context.Context, m *ssa.ResourceManager, objs []*unstructured.Unstructured, timeout time.Duration) error {
	set := object.UnstructuredSetToObjMetadataSet(objs)
	return m.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: Poll, Timeout: timeout, FailFast: true})
}
