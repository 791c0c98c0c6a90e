package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// IntegrityError lists damage found while reading an audit log: lines that
// do not parse, lines whose chain hash does not match the line before them
// (edited or deleted lines), parts missing from a day. Read returns it
// together with every event it could read.
type IntegrityError struct {
	Problems []string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("audit log damaged (%d problems): %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

// Read returns the events of the cluster behind c whose time (or last
// occurrence) is at or after since, sorted by time, without duplicates.
// A zero since reads everything. When the log is damaged it returns the
// readable events and an *IntegrityError. A missing part is not damage
// when retention rolled it off: an audit-rolled-off event names it, or it
// precedes the parts left of its day and is older than the latest roll-off
// (whose own record may have rolled off since).
func Read(ctx context.Context, c client.Reader, since time.Time) ([]Event, error) {
	// An aggregated event is stored on the day of its first occurrence:
	// read one day more.
	sinceDay := ""
	if !since.IsZero() {
		sinceDay = since.UTC().AddDate(0, 0, -1).Format(DayFormat)
	}
	var out []Event
	var problems []string
	seen := map[string]bool{}
	parts := map[string][]int{} // source|day → parts
	rolled := map[string]bool{} // ConfigMaps named by roll-off records
	var horizon time.Time       // the latest event rolled off
	cont := ""
	for {
		var list corev1.ConfigMapList
		opts := []client.ListOption{client.InNamespace(labels.SystemNamespace), client.MatchingLabels{Label: "true"}, client.Limit(20)}
		if cont != "" {
			opts = append(opts, client.Continue(cont))
		}
		if err := c.List(ctx, &list, opts...); err != nil {
			if apierrors.IsNotFound(err) {
				break
			}
			return nil, fmt.Errorf("listing audit ConfigMaps in %s: %w", labels.SystemNamespace, err)
		}
		for i := range list.Items {
			cm := &list.Items[i]
			day := cm.Labels[DayLabel]
			k := cm.Labels[SourceLabel] + "|" + day
			parts[k] = append(parts[k], partOf(cm.Name))
			if sinceDay != "" && len(day) == len(DayFormat) && day < sinceDay {
				continue
			}
			evs, probs := parse(cm)
			problems = append(problems, probs...)
			for _, e := range evs {
				if e.ID != "" {
					if seen[e.ID] {
						continue // written twice by a retry after an ambiguous failure
					}
					seen[e.ID] = true
				}
				if e.Kind == RolledOff {
					_, _, name := splitObject(e.Object)
					rolled[name] = true
					if e.Until.After(horizon) {
						horizon = e.Until
					}
				}
				if !since.IsZero() && e.Time.Before(since) && e.Last.Before(since) {
					continue
				}
				out = append(out, e)
			}
		}
		cont = list.Continue
		if cont == "" {
			break
		}
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ps := parts[k]
		sort.Ints(ps)
		src, day, _ := strings.Cut(k, "|")
		if sinceDay != "" && len(day) == len(DayFormat) && day < sinceDay {
			continue // not read: its roll-off records were not read either
		}
		horizonDay := horizon.UTC().Format(DayFormat)
		have := map[int]bool{}
		for _, p := range ps {
			have[p] = true
		}
		for p := 1; p < ps[len(ps)-1]; p++ {
			if have[p] || rolled[fmt.Sprintf("%s%s-%s-%d", NamePrefix, src, day, p)] ||
				(p < ps[0] && !horizon.IsZero() && day <= horizonDay) {
				continue
			}
			problems = append(problems, fmt.Sprintf("source %s day %s: part %d is missing (deleted?)", src, day, p))
			break
		}
	}
	Sort(out)
	if len(problems) > 0 {
		return out, &IntegrityError{Problems: problems}
	}
	return out, nil
}

// parse reads the lines of one ConfigMap and checks their chain.
func parse(cm *corev1.ConfigMap) ([]Event, []string) {
	data := cm.Data[DataKey]
	var out []Event
	var problems []string
	prev := ""
	for i, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		if line == "" {
			continue
		}
		var s stored
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			problems = append(problems, fmt.Sprintf("%s line %d does not parse: %v", cm.Name, i+1, err))
			prev = chainHash(line)
			continue
		}
		if s.Prev != prev {
			problems = append(problems, fmt.Sprintf("%s line %d does not follow the line before it (edited or removed lines)", cm.Name, i+1))
		}
		prev = chainHash(line)
		if s.Event.Time.IsZero() || s.Event.Kind == "" {
			problems = append(problems, fmt.Sprintf("%s line %d has no time or kind", cm.Name, i+1))
			continue
		}
		out = append(out, s.Event)
	}
	return out, problems
}

// Sort orders events by time, then kind, cluster and object.
func Sort(events []Event) {
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		return a.Object < b.Object
	})
}
