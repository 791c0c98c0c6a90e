package audit

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A segment is one part of the log (one ConfigMap). Its annotations
// summarize it so that retention can judge every part from a metadata-only
// list, without reading megabytes of events each pass. They are advisory:
// Read trusts only the lines.
const (
	// EventsAnnotation counts the occurrences the part holds.
	EventsAnnotation = Label + "-events"
	// FirstAnnotation and LastAnnotation are the times (RFC 3339) of the
	// first and the last occurrence in the part.
	FirstAnnotation = Label + "-first"
	LastAnnotation  = Label + "-last"
	// BytesAnnotation is the size of the part's events.
	BytesAnnotation = Label + "-bytes"
)

// segStats summarizes the events of a segment.
type segStats struct {
	Events      int
	First, Last time.Time
}

func (s *segStats) add(e Event) {
	s.Events += e.occurrences()
	if s.First.IsZero() || e.Time.Before(s.First) {
		s.First = e.Time
	}
	if l := e.lastTime(); l.After(s.Last) {
		s.Last = l
	}
}

func (s *segStats) addAll(o segStats) {
	if o.Events == 0 {
		return
	}
	s.add(Event{Time: o.First, Last: o.Last, Count: o.Events})
}

// statsOf reads the annotations of cm; ok is false when they are missing
// (a part written before they existed).
func statsOf(cm *corev1.ConfigMap) (segStats, int, bool) {
	a := cm.Annotations
	n, err1 := strconv.Atoi(a[EventsAnnotation])
	b, err2 := strconv.Atoi(a[BytesAnnotation])
	first, err3 := time.Parse(time.RFC3339Nano, a[FirstAnnotation])
	last, err4 := time.Parse(time.RFC3339Nano, a[LastAnnotation])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return segStats{}, 0, false
	}
	return segStats{Events: n, First: first, Last: last}, b, true
}

// statsOfData computes the summary from the lines.
func statsOfData(data string) segStats {
	var s segStats
	for _, line := range strings.Split(data, "\n") {
		var st stored
		if line == "" || json.Unmarshal([]byte(line), &st) != nil || st.Time.IsZero() {
			continue
		}
		s.add(st.Event)
	}
	return s
}

// annotate sets the summary annotations of cm holding data.
func annotate(cm *corev1.ConfigMap, s segStats, data string) {
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[EventsAnnotation] = strconv.Itoa(s.Events)
	cm.Annotations[FirstAnnotation] = s.First.UTC().Format(time.RFC3339Nano)
	cm.Annotations[LastAnnotation] = s.Last.UTC().Format(time.RFC3339Nano)
	cm.Annotations[BytesAnnotation] = strconv.Itoa(len(data))
}

// segLine is a line of a segment being composed.
type segLine struct {
	raw   string
	ev    *stored
	dirty bool
}

// maxMerged bounds the batch IDs a line remembers.
const maxMerged = 8

// placeholder stands for a chain hash while sizes are computed.
var placeholder = strings.Repeat("0", 16)

// compose returns the data of a part that holds existing and the longest
// prefix of events that fits within MaxBytes (at least one event into an
// empty part), how many events it took, and the summary of what it added.
// A denial joins its line in the part when there is one; the lines after a
// changed one are chained again. A part whose chain is already broken is
// only appended to, so that the writer never hides damage by rechaining.
func (w *Writer) compose(existing string, events []Event) (string, int, segStats) {
	var added segStats
	if !anyAggregates(events) {
		data, k := w.encode(existing, events)
		for _, e := range events[:k] {
			added.add(e)
		}
		return existing + data, k, added
	}
	ls, intact := parseSegment(existing)
	if !intact {
		data, k := w.encode(existing, events)
		for _, e := range events[:k] {
			added.add(e)
		}
		return existing + data, k, added
	}
	byKey := map[string]int{}
	ids := map[string]bool{}
	for i, l := range ls {
		ids[l.ev.ID] = true
		for _, m := range l.ev.Merged {
			ids[m] = true
		}
		if aggregates(l.ev.Kind) {
			byKey[l.ev.aggKey()] = i
		}
	}
	size, first, k := len(existing), len(ls), 0
	for _, e := range events {
		if e.ID != "" && ids[e.ID] {
			k++ // written by an earlier attempt whose answer was lost
			continue
		}
		if j, ok := byKey[e.aggKey()]; ok && aggregates(e.Kind) {
			m := *ls[j].ev
			m.Names = append([]string(nil), m.Names...)
			m.merge(e)
			m.Merged = append(m.Merged, e.ID)
			if len(m.Merged) > maxMerged {
				m.Merged = m.Merged[len(m.Merged)-maxMerged:]
			}
			raw := marshalLine(m, j > 0)
			if size+len(raw)-len(ls[j].raw) > w.opts.MaxBytes {
				break
			}
			size += len(raw) - len(ls[j].raw)
			ls[j] = segLine{raw: raw, ev: &m, dirty: true}
		} else {
			s := stored{Event: e}
			raw := marshalLine(s, len(ls) > 0)
			if size+len(raw)+1 > w.opts.MaxBytes && size > 0 {
				break
			}
			size += len(raw) + 1
			byKey[e.aggKey()] = len(ls)
			ls = append(ls, segLine{raw: raw, ev: &s, dirty: true})
		}
		if j := byKey[e.aggKey()]; j < first {
			first = j
		}
		ids[e.ID] = true
		added.add(e)
		k++
	}
	if first == len(ls) {
		return existing, k, added
	}
	var b strings.Builder
	b.Grow(size)
	prev := ""
	for i, l := range ls {
		if i >= first {
			if l.dirty {
				s := *l.ev
				s.Prev = prev
				l.raw = marshalLine(s, false)
			} else {
				l.raw = withPrev(l.raw, prev)
			}
		}
		b.WriteString(l.raw)
		b.WriteByte('\n')
		prev = chainHash(l.raw)
	}
	return b.String(), k, added
}

func anyAggregates(events []Event) bool {
	for _, e := range events {
		if aggregates(e.Kind) {
			return true
		}
	}
	return false
}

// parseSegment parses the lines of a part and reports whether every line
// parses and follows the one before it.
func parseSegment(data string) ([]segLine, bool) {
	var ls []segLine
	prev := ""
	for _, raw := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		if raw == "" {
			continue
		}
		var s stored
		if err := json.Unmarshal([]byte(raw), &s); err != nil || s.Prev != prev || s.Time.IsZero() {
			return nil, false
		}
		ls = append(ls, segLine{raw: raw, ev: &s})
		prev = chainHash(raw)
	}
	return ls, true
}

// marshalLine encodes s; withChain reserves room for a chain hash (the
// first line of a part has none).
func marshalLine(s stored, withChain bool) string {
	if withChain && s.Prev == "" {
		s.Prev = placeholder
	}
	b, err := json.Marshal(s)
	if err != nil { // cannot happen: strings and times only
		return `{"kind":"` + string(s.Kind) + `","message":"unencodable event"}`
	}
	return string(b)
}

// withPrev sets the chain hash of an encoded line, keeping every other byte
// of it (fields a newer strata wrote included).
func withPrev(raw, prev string) string {
	const key = `,"prev":"`
	if i := strings.LastIndex(raw, key); i >= 0 && len(raw)-i == len(key)+len(placeholder)+2 && strings.HasSuffix(raw, `"}`) {
		return raw[:i] + key + prev + `"}`
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &m) != nil {
		return raw
	}
	m["prev"], _ = json.Marshal(prev)
	b, _ := json.Marshal(m)
	return string(b)
}
