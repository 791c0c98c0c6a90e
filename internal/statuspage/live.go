package statuspage

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// LiveEnvironment is an environment of strata.yaml and its clusters.
type LiveEnvironment struct {
	Name     string
	Clusters []config.Cluster
}

// Live reads the page's data from the clusters: each cluster's inventory
// status, and its break-glass Events. Clusters are read concurrently, each
// within ClusterTimeout, so a down cluster costs the page one timeout, not
// one per cluster.
type Live struct {
	Connect      cluster.Connector
	Environments []LiveEnvironment
	// Subject returns a commit's subject line ("" when unknown); nil
	// shows no subjects.
	Subject func(ctx context.Context, commit string) string
	// ClusterTimeout bounds the reads of one cluster (default 4s).
	ClusterTimeout time.Duration
	// MaxEvents bounds the break-glass Events read per cluster (default 50).
	MaxEvents int64
}

// Snapshot implements Source.
func (l *Live) Snapshot(ctx context.Context) (*Snapshot, error) {
	timeout := l.ClusterTimeout
	if timeout <= 0 {
		timeout = 4 * time.Second
	}
	s := &Snapshot{Time: time.Now().UTC(), Environments: make([]Environment, len(l.Environments))}
	var wg sync.WaitGroup
	for i, e := range l.Environments {
		s.Environments[i] = Environment{Name: e.Name, Clusters: make([]Cluster, len(e.Clusters))}
		for j, c := range e.Clusters {
			row := &s.Environments[i].Clusters[j]
			row.Name, row.Tier = c.Name, string(c.Tier)
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				l.readCluster(cctx, e.Name, row)
			}()
		}
	}
	wg.Wait()

	// Break-glass Events, once per reachable cluster.
	seen := map[string]bool{}
	var mu sync.Mutex
	for _, e := range s.Environments {
		for _, c := range e.Clusters {
			if !c.Reachable || seen[c.Name] {
				continue
			}
			seen[c.Name] = true
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				events, err := l.breakGlass(cctx, name)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					s.EventErrors = append(s.EventErrors, fmt.Sprintf("%s: reading break-glass events: %v", name, err))
					return
				}
				s.BreakGlass = append(s.BreakGlass, events...)
			}(c.Name)
		}
	}
	wg.Wait()

	if l.Subject != nil {
		s.Subjects = map[string]string{}
		for _, e := range s.Environments {
			for _, c := range e.Clusters {
				revs := []string{c.Status.Revision}
				if len(c.Status.History) > 0 {
					revs = append(revs, c.Status.History[0].Revision)
				}
				if g, ok := GateOf(e.Name, c.Status); ok {
					revs = append(revs, g.Revision)
				}
				for _, r := range revs {
					if _, done := s.Subjects[r]; r != "" && !done {
						s.Subjects[r] = l.Subject(ctx, r)
					}
				}
			}
		}
	}
	return s, nil
}

// readCluster fills row from the cluster's inventory of env.
func (l *Live) readCluster(ctx context.Context, env string, row *Cluster) {
	inv, reachable, err := cluster.ReadInventory(ctx, l.Connect, row.Name, env)
	row.Reachable = reachable
	if err != nil {
		row.Error = err.Error()
		return
	}
	row.Reconciled, row.Status, row.Suspension = inv.Exists, inv.Status, inv.Suspension
}

// breakGlass lists the break-glass Events the webhook recorded in the
// cluster's strata-system.
func (l *Live) breakGlass(ctx context.Context, name string) ([]BreakGlass, error) {
	cl, err := l.Connect.Connect(name)
	if err != nil {
		return nil, err
	}
	limit := l.MaxEvents
	if limit <= 0 {
		limit = 50
	}
	var list corev1.EventList
	if err := cl.Client.List(ctx, &list, client.InNamespace(labels.SystemNamespace),
		client.MatchingLabels{labels.ManagedBy: labels.ManagedByValue},
		client.MatchingFields{"reason": labels.BreakGlassEventReason}, client.Limit(limit)); err != nil {
		return nil, err
	}
	out := make([]BreakGlass, 0, len(list.Items))
	for _, ev := range list.Items {
		if ev.Reason != labels.BreakGlassEventReason {
			continue
		}
		// The webhook's event recorder writes these annotations.
		b := BreakGlass{Time: eventTime(ev), Cluster: ev.Annotations[labels.Prefix+"cluster"], User: ev.Annotations[labels.Prefix+"user"],
			Reason: ev.Annotations[labels.BreakGlass], Message: ev.Message, Count: ev.Count}
		if b.Cluster == "" {
			b.Cluster = name
		}
		out = append(out, b)
	}
	return out, nil
}

func eventTime(ev corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}
