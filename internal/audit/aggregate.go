package audit

import (
	"slices"
	"strings"
	"time"
)

// MaxNames bounds the sample of object names an aggregated denial keeps.
const MaxNames = 8

// Aggregation of denials ignores the object's name: a loop of denied
// requests with a new name each time (`kubectl create --dry-run=server`
// with generated names) is one fact — who tried to put what kind of object
// where, under which rule, how often, from when to when — and must cost
// one line, not one per request. The namespace, kind, rule, actor,
// cluster, tier and sensitivity stay apart, and the message is compared
// with the name masked, so two different reasons never merge. The names
// themselves are kept as a sample (Names). Other kinds aggregate only when
// identical in every field, and only within one flush: each prune, apply
// or break-glass stays a line of its own.

// aggregates reports whether events of kind k merge across names and
// flushes.
func aggregates(k Kind) bool { return k == Denial }

// aggKey identifies the events that merge into one line.
func (e Event) aggKey() string {
	if !aggregates(e.Kind) {
		return e.key()
	}
	kind, ns, name := splitObject(e.Object)
	return strings.Join([]string{string(e.Kind), e.Environment, e.Commit, e.Cluster, e.Tier, kind, ns,
		e.Sensitivity, e.Rule, e.Actor, maskName(e.Message, ns, name), e.To}, "\x00")
}

// splitObject splits "Kind namespace/name" (or "Kind name").
func splitObject(o string) (kind, ns, name string) {
	kind, rest, _ := strings.Cut(o, " ")
	if n, m, ok := strings.Cut(rest, "/"); ok {
		return kind, n, m
	}
	return kind, "", rest
}

const wildcard = "*"

// maskName replaces the object's name in msg: as "namespace/name", and as
// a whole word when it is long enough not to be a common word (object
// names are DNS subdomains: "a" must not eat the article).
func maskName(msg, ns, name string) string {
	if name == "" || name == wildcard {
		return msg
	}
	if ns != "" {
		msg = strings.ReplaceAll(msg, ns+"/"+name, ns+"/"+wildcard)
	}
	if len(name) < 4 {
		return msg
	}
	var b strings.Builder
	for {
		i := strings.Index(msg, name)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		end := i + len(name)
		if (i == 0 || !nameByte(msg[i-1])) && (end == len(msg) || !nameByte(msg[end])) {
			b.WriteString(msg[:i])
			b.WriteString(wildcard)
		} else {
			b.WriteString(msg[:end])
		}
		msg = msg[end:]
	}
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// merge adds the occurrences of e (with the same aggKey) to p.
func (p *Event) merge(e Event) {
	p.Count = p.N() + e.N()
	pl, el := p.lastTime(), e.lastTime()
	if e.Time.Before(p.Time) {
		p.Time = e.Time
	}
	if el.After(pl) {
		pl = el
	}
	p.Last = pl // set once aggregated, also when every occurrence had one time
	if p.Object == e.Object {
		return
	}
	kind, ns, pname := splitObject(p.Object)
	if pname != wildcard {
		p.Object = Object(kind, ns, wildcard)
		p.Message = maskName(p.Message, ns, pname)
		p.Names = []string{pname}
	}
	names := e.Names
	if _, _, ename := splitObject(e.Object); ename != wildcard {
		names = []string{ename}
	}
	for _, n := range names {
		if len(p.Names) >= MaxNames {
			break
		}
		if !slices.Contains(p.Names, n) {
			p.Names = append(p.Names, n)
		}
	}
}

// lastTime is the time of the last occurrence.
func (e Event) lastTime() time.Time {
	if e.Last.After(e.Time) {
		return e.Last
	}
	return e.Time
}
