package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
)

// Retention keeps the audit log of a cluster under an age and a size.
// Every writer enforces it over the parts of every writer (a webhook pod
// that is gone leaves parts nobody else would delete), oldest last event
// first, after each flush that wrote and at least every RetentionEvery. A part is
// deleted only at the resourceVersion it was judged at, so two writers
// never both delete (and both record) one part, and one still being
// appended to is judged again. Each deleted part leaves an
// audit-rolled-off event naming it, its span and its count; Read accepts a
// part as rolled off when such an event names it or when it is older than
// the latest roll-off.

// part is one audit ConfigMap as retention sees it.
type part struct {
	name, rv string
	bytes    int
	stats    segStats
}

// legacyStats is the summary of a part written before the summary
// annotations existed, computed once per resourceVersion.
type legacyStats struct {
	rv    string
	bytes int
	stats segStats
}

func (w *Writer) retention(ctx context.Context) error {
	if w.opts.Retention < 0 && w.opts.RetainBytes < 0 {
		return nil
	}
	// After every write: other writers grow the log too, so this writer's
	// idea of its size is stale; a metadata list is cheap.
	wrote := w.opts.RetainBytes > 0 && w.grown > 0
	if !w.newPart && !wrote && !w.retained.IsZero() && time.Since(w.retained) < w.opts.RetentionEvery {
		return nil
	}
	w.retained, w.newPart = time.Now(), false
	parts, err := w.listParts(ctx)
	if err != nil {
		w.opts.Log.Warn("audit retention: could not list the audit log; trying again later", "source", w.source, "cluster", w.opts.Cluster, "error", err)
		return nil
	}
	now := w.opts.Now().UTC()
	current := ""
	if w.cache != nil {
		current = w.cache.Name
	}
	type doomed struct {
		part
		reason string
	}
	var del []doomed
	var keep []part
	for _, p := range parts {
		if w.opts.Retention > 0 && p.name != current && p.stats.Last.Before(now.Add(-w.opts.Retention)) {
			del = append(del, doomed{p, "older than maxAge " + w.opts.Retention.String()})
			continue
		}
		keep = append(keep, p)
	}
	total := int64(0)
	if w.opts.RetainBytes > 0 {
		for _, p := range keep {
			total += int64(p.bytes)
		}
		sort.Slice(keep, func(i, j int) bool { return older(keep[i], keep[j]) })
		for _, p := range keep {
			if total <= w.opts.RetainBytes {
				break
			}
			if p.name == current {
				continue
			}
			del = append(del, doomed{p, fmt.Sprintf("the cluster's audit log was over maxBytes %s", config.ByteSize(w.opts.RetainBytes))})
			// The roll-off record is written after the pass: make room for it.
			total += recordBytes - int64(p.bytes)
		}
	}
	var records []Event
	for _, d := range del {
		rv := d.rv
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: labels.SystemNamespace, Name: d.name}}
		err := w.client().Delete(ctx, cm, client.Preconditions{ResourceVersion: &rv})
		switch {
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			continue // another writer rolled it off, or it changed: judged again next time
		case err != nil:
			w.opts.Log.Warn("audit retention: could not delete a part; trying again later", "source", w.source, "cluster", w.opts.Cluster, "configMap", d.name, "error", err)
			continue
		}
		rec := Event{ID: newID(), Time: now.Truncate(time.Millisecond), Kind: RolledOff, Count: d.stats.Events, From: d.stats.First, Until: d.stats.Last,
			Object: Object("ConfigMap", labels.SystemNamespace, d.name), Source: w.source,
			Cluster: w.opts.Cluster, Tier: w.opts.Tier, Environment: w.opts.Environment,
			Message: fmt.Sprintf("%d events from %s to %s rolled off by retention: %s", d.stats.Events,
				d.stats.First.UTC().Format(time.RFC3339), d.stats.Last.UTC().Format(time.RFC3339), d.reason)}
		records = append(records, rec)
		w.opts.Log.Info("audit events rolled off", "source", w.source, "cluster", w.opts.Cluster, "configMap", d.name,
			"events", d.stats.Events, "from", d.stats.First, "until", d.stats.Last, "reason", d.reason)
		w.mu.Lock()
		w.stats.RolledOff++
		w.stats.RolledOffEvents += d.stats.Events
		w.mu.Unlock()
		delete(w.legacy, d.name)
	}
	w.grown = 0
	// Written now, not at the next flush: a part deleted and not recorded
	// would read as tampering.
	return w.writeBatch(ctx, records)
}

// recordBytes is room for one roll-off record.
const recordBytes = 640

// older orders parts by their last event, then first event, then name
// and part number (part 10 after part 9).
func older(a, b part) bool {
	if !a.stats.Last.Equal(b.stats.Last) {
		return a.stats.Last.Before(b.stats.Last)
	}
	if !a.stats.First.Equal(b.stats.First) {
		return a.stats.First.Before(b.stats.First)
	}
	ai, bi := strings.LastIndexByte(a.name, '-'), strings.LastIndexByte(b.name, '-')
	if a.name[:ai+1] != b.name[:bi+1] {
		return a.name < b.name
	}
	return partOf(a.name) < partOf(b.name)
}

// listParts lists every audit part of the cluster from metadata: the
// summary annotations say what each holds without reading it.
func (w *Writer) listParts(ctx context.Context) ([]part, error) {
	var parts []part
	cont := ""
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
		opts := []client.ListOption{client.InNamespace(labels.SystemNamespace), client.MatchingLabels{Label: "true"}, client.Limit(200)}
		if cont != "" {
			opts = append(opts, client.Continue(cont))
		}
		if err := w.client().List(ctx, list, opts...); err != nil {
			if apierrors.IsNotFound(err) {
				return parts, nil
			}
			return nil, fmt.Errorf("listing audit ConfigMaps in %s: %w", labels.SystemNamespace, err)
		}
		for _, m := range list.Items {
			p := part{name: m.Name, rv: m.ResourceVersion}
			st, n, ok := statsOf(&corev1.ConfigMap{ObjectMeta: m.ObjectMeta})
			if !ok {
				var err error
				if st, n, err = w.legacyPart(ctx, m.Name, m.ResourceVersion, m.Labels[DayLabel]); err != nil {
					return nil, err
				}
			}
			p.stats, p.bytes = st, n
			parts = append(parts, p)
		}
		if cont = list.Continue; cont == "" {
			return parts, nil
		}
	}
}

// legacyPart reads a part without summary annotations.
func (w *Writer) legacyPart(ctx context.Context, name, rv, day string) (segStats, int, error) {
	if l, ok := w.legacy[name]; ok && l.rv == rv {
		return l.stats, l.bytes, nil
	}
	cm := &corev1.ConfigMap{}
	if err := w.client().Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: name}, cm); err != nil {
		return segStats{}, 0, fmt.Errorf("reading audit ConfigMap %s/%s: %w", labels.SystemNamespace, name, err)
	}
	data := cm.Data[DataKey]
	st := statsOfData(data)
	if st.Events == 0 {
		// Nothing readable: judge it by its day.
		if d, err := time.Parse(DayFormat, day); err == nil {
			st.First, st.Last = d, d.Add(24*time.Hour-time.Nanosecond)
		}
	}
	if w.legacy == nil || len(w.legacy) > 1000 {
		w.legacy = map[string]legacyStats{}
	}
	w.legacy[name] = legacyStats{rv: cm.ResourceVersion, bytes: len(data), stats: st}
	return st, len(data), nil
}
