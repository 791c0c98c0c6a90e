package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strata-gitops/strata/internal/cluster"
)

// tracingConnector is cluster.KubeconfigDir with every API request of
// every cluster recorded in trace: the reconciler's code is unchanged, only
// its HTTP transport is wrapped.
type tracingConnector struct {
	dir   string
	trace *requestTrace
	mu    sync.Mutex
	cs    map[string]*cluster.Cluster
}

func (t *tracingConnector) Connect(name string) (*cluster.Cluster, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.cs[name]; ok {
		return c, nil
	}
	path := filepath.Join(t.dir, name+".kubeconfig")
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &tracingTransport{next: rt, cluster: name, trace: t.trace}
	})
	c, err := cluster.NewCluster(name, cfg)
	if err != nil {
		return nil, err
	}
	if t.cs == nil {
		t.cs = map[string]*cluster.Cluster{}
	}
	t.cs[name] = c
	return c, nil
}

func (t *tracingConnector) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cs {
		c.Close()
	}
}

type tracingTransport struct {
	next    http.RoundTripper
	cluster string
	trace   *requestTrace
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.trace.add(t.cluster, classify(req.Method, req.URL), start, time.Now())
	return resp, err
}

// classify names what a request does, in the reconciler's terms.
func classify(method string, u *url.URL) string {
	p := strings.Trim(u.Path, "/")
	seg := strings.Split(p, "/")
	switch {
	case p == "readyz" || p == "livez" || p == "healthz" || p == "version":
		return "probe /readyz, /version"
	case p == "api" || p == "apis" || strings.HasPrefix(p, "openapi") || (seg[0] == "api" && len(seg) == 2) || (seg[0] == "apis" && len(seg) <= 3):
		return "discovery"
	}
	// Strip /api/v1 or /apis/GROUP/VERSION.
	rest := seg[2:]
	if seg[0] == "apis" {
		rest = seg[3:]
	}
	resource, named := "", false
	switch {
	case len(rest) >= 3 && rest[0] == "namespaces":
		resource, named = rest[2], len(rest) >= 4
	case len(rest) >= 1:
		resource, named = rest[0], len(rest) >= 2
	}
	switch {
	case resource == "events":
		return "events"
	case resource == "configmaps" && strings.Contains(p, "strata-system") || resource == "namespaces" && strings.HasSuffix(p, "strata-system"):
		return "inventory (strata-system)"
	}
	switch method {
	case http.MethodGet:
		if named {
			return "GET object"
		}
		if u.Query().Get("labelSelector") != "" {
			return "LIST by strata labels (drift, fingerprints)"
		}
		return "LIST (kstatus poller)"
	case http.MethodPatch:
		if u.Query().Get("dryRun") != "" {
			return "PATCH apply, dry run"
		}
		return "PATCH apply"
	default:
		return method + " " + resource
	}
}

type traced struct {
	cluster, what string
	start, end    time.Duration
}

// requestTrace records requests relative to a start time.
type requestTrace struct {
	mu    sync.Mutex
	start time.Time
	reqs  []traced
}

func (t *requestTrace) reset(start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start, t.reqs = start, nil
}

func (t *requestTrace) add(cluster, what string, start, end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reqs = append(t.reqs, traced{cluster: cluster, what: what, start: start.Sub(t.start), end: end.Sub(t.start)})
}

// rows summarizes the requests per cluster and kind: count, first start,
// last end and summed latency.
func (t *requestTrace) rows() [][]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	type agg struct {
		n                  int
		first, last, total time.Duration
	}
	byKey := map[[2]string]*agg{}
	for _, r := range t.reqs {
		k := [2]string{r.cluster, r.what}
		a := byKey[k]
		if a == nil {
			a = &agg{first: r.start}
			byKey[k] = a
		}
		a.n++
		a.first = min(a.first, r.start)
		a.last = max(a.last, r.end)
		a.total += r.end - r.start
	}
	keys := make([][2]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	order := func(c string) int { return slices.Index(clusterNames, c) }
	slices.SortFunc(keys, func(a, b [2]string) int {
		if d := order(a[0]) - order(b[0]); d != 0 {
			return d
		}
		return int(byKey[a].first - byKey[b].first)
	})
	rows := [][]string{{"cluster", "requests", "count", "first at", "last done at", "latency"}}
	for _, k := range keys {
		a := byKey[k]
		rows = append(rows, []string{k[0], k[1], fmt.Sprint(a.n), s2(a.first), s2(a.last), s2(a.total)})
	}
	return rows
}
