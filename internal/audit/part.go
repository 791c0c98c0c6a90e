package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// Appending to the parts of the log in the cluster.

// write appends batch (sorted by time) and returns the events not written.
func (w *Writer) write(ctx context.Context, batch []Event) ([]Event, error) {
	for i := 0; i < len(batch); {
		day := batch[i].Time.Format(DayFormat)
		j := i
		for j < len(batch) && batch[j].Time.Format(DayFormat) == day {
			j++
		}
		for i < j {
			n, err := w.appendDay(ctx, day, batch[i:j])
			i += n
			if err != nil {
				return batch[i:], err
			}
		}
	}
	return nil, nil
}

// maxAttempts bounds the retries of one append (conflicts, races).
const maxAttempts = 50

// appendDay appends a prefix of events (all of day) to the current part of
// the day, starting a new part when it is full, and returns how many it
// wrote. Writes are optimistic: an Update carries the resourceVersion it
// read, and a conflict reads again and retries.
func (w *Writer) appendDay(ctx context.Context, day string, events []Event) (int, error) {
	n, err := w.currentPart(ctx, day)
	if err != nil {
		return 0, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if attempt > 0 {
			backoff(ctx, attempt)
		}
		name := fmt.Sprintf("%s%s-%s-%d", NamePrefix, w.source, day, n)
		cm := w.cache
		if cm == nil || cm.Name != name {
			cm = &corev1.ConfigMap{}
			err := w.client().Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: name}, cm)
			switch {
			case apierrors.IsNotFound(err):
				cm = nil
			case err != nil:
				return 0, fmt.Errorf("reading audit ConfigMap %s/%s: %w", labels.SystemNamespace, name, err)
			}
		}
		if cm == nil {
			data, k, added := w.compose("", events)
			nc := w.newConfigMap(name, day, data)
			annotate(nc, added, data)
			err := w.client().Create(ctx, nc)
			switch {
			case err == nil:
				w.cache, w.parts[day] = nc, n
				w.newPart = true
				w.grown += int64(len(data))
				w.mu.Lock()
				w.stats.Parts++
				w.mu.Unlock()
				return k, nil
			case apierrors.IsAlreadyExists(err):
				w.cache = nil // another writer of this source was first
				w.conflict()
				continue
			case apierrors.IsNotFound(err) && !w.nsChecked:
				if err := w.ensureNamespace(ctx); err != nil {
					return 0, err
				}
				continue
			default:
				return 0, fmt.Errorf("creating audit ConfigMap %s/%s: %w", labels.SystemNamespace, name, err)
			}
		}
		existing := cm.Data[DataKey]
		data, k, added := w.compose(existing, events)
		if k == 0 {
			// Full: go on with the next part.
			n++
			w.parts[day], w.cache = n, nil
			attempt = -1 // a new part is not a retry
			continue
		}
		uc := cm.DeepCopy()
		if uc.Data == nil {
			uc.Data = map[string]string{}
		}
		uc.Data[DataKey] = data
		prior, _, ok := statsOf(cm)
		if !ok {
			prior = statsOfData(existing)
		}
		prior.addAll(added)
		annotate(uc, prior, data)
		err := w.client().Update(ctx, uc)
		switch {
		case err == nil:
			w.cache = uc
			w.grown += int64(len(data) - len(existing))
			return k, nil
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			w.cache = nil
			w.conflict()
			continue
		default:
			w.cache = nil
			return 0, fmt.Errorf("writing audit ConfigMap %s/%s: %w", labels.SystemNamespace, name, err)
		}
	}
	return 0, fmt.Errorf("writing audit events of %s: gave up after %d conflicting attempts", day, maxAttempts)
}

func (w *Writer) conflict() {
	w.mu.Lock()
	w.stats.Conflicts++
	w.mu.Unlock()
}

func backoff(ctx context.Context, attempt int) {
	d := time.Duration(5+rand.IntN(20*min(attempt, 10))) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// encode returns the lines of the longest prefix of events that fits after
// existing within MaxBytes (at least one event into an empty ConfigMap),
// each chained to the line before it.
func (w *Writer) encode(existing string, events []Event) (string, int) {
	var b strings.Builder
	size := len(existing)
	prev := ""
	if existing != "" {
		prev = chainHash(lastLine(existing))
	}
	k := 0
	for _, e := range events {
		line, err := json.Marshal(stored{Event: e, Prev: prev})
		if err != nil { // cannot happen: strings and times only
			line = []byte(`{"kind":"` + string(e.Kind) + `","message":"unencodable event"}`)
		}
		if size+len(line)+1 > w.opts.MaxBytes && size > 0 {
			break
		}
		b.Write(line)
		b.WriteByte('\n')
		size += len(line) + 1
		prev = chainHash(string(line))
		k++
	}
	return b.String(), k
}

func (w *Writer) newConfigMap(name, day, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: labels.SystemNamespace, Name: name,
			Labels: map[string]string{Label: "true", SourceLabel: w.source, DayLabel: day,
				labels.ManagedBy: labels.ManagedByValue},
		},
		Data: map[string]string{DataKey: data},
	}
}

// currentPart returns the part this writer appends to for day: the highest
// existing part of its source, found once per day.
func (w *Writer) currentPart(ctx context.Context, day string) (int, error) {
	if n, ok := w.parts[day]; ok {
		return n, nil
	}
	var list corev1.ConfigMapList
	err := w.client().List(ctx, &list, client.InNamespace(labels.SystemNamespace),
		client.MatchingLabels{Label: "true", SourceLabel: w.source, DayLabel: day})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("listing audit ConfigMaps in %s: %w", labels.SystemNamespace, err)
	}
	n := 1
	for _, cm := range list.Items {
		if p := partOf(cm.Name); p > n {
			n = p
		}
	}
	// Keep only today's and recent days' parts in memory.
	if len(w.parts) > 8 {
		clear(w.parts)
	}
	w.parts[day] = n
	return n, nil
}

// ensureNamespace creates strata-system when it is missing.
func (w *Writer) ensureNamespace(ctx context.Context) error {
	w.nsChecked = true
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace,
		Labels: map[string]string{labels.ManagedBy: labels.ManagedByValue}}}
	if err := w.client().Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s for the audit log: %w", labels.SystemNamespace, err)
	}
	return nil
}
