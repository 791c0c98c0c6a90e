package statuspage

import (
	"bytes"
	"context"
	_ "embed"
	"html/template"
	"net/http"
	"sync"
	"time"
)

// Options tune the page.
type Options struct {
	// CacheTTL is how long a snapshot is reused (default 2s): a page open
	// in many browsers costs the clusters one read per period.
	CacheTTL time.Duration
	// Refresh is the meta-refresh period (default 5s).
	Refresh time.Duration
	// Timeout bounds one Source call (default 10s).
	Timeout time.Duration
	// StaleAfter marks a cluster whose last reconcile is older (default
	// 10m; negative disables): the reconciler ticks at least every 30s.
	StaleAfter time.Duration
	// KubeconfigDir and Repo complete the rollback command the page
	// suggests (--kubeconfig-dir DIR, --repo PATH when not ".").
	KubeconfigDir string
	Repo          string
	// MaxBreakGlass is how many break-glass admissions are listed (default 8).
	MaxBreakGlass int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CacheTTL == 0 {
		o.CacheTTL = 2 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = 10 * time.Minute
	}
	if o.MaxBreakGlass <= 0 {
		o.MaxBreakGlass = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Handler serves the page at "/" for GET and HEAD; it has no forms and
// accepts no other method.
type Handler struct {
	src  Source
	opts Options

	mu      sync.Mutex
	at      time.Time
	snap    *Snapshot
	snapErr error
}

// New returns the page's handler.
func New(src Source, opts Options) *Handler {
	return &Handler{src: src, opts: opts.withDefaults()}
}

//go:embed page.html.tmpl
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// contentSecurityPolicy allows the inline style sheet and nothing else: no
// scripts, no external assets, no forms, no framing.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the status page is read-only: GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	snap, err := h.snapshot(r.Context())
	var buf bytes.Buffer
	if terr := pageTemplate.Execute(&buf, build(snap, err, h.opts, h.opts.Now())); terr != nil {
		http.Error(w, "rendering the status page: "+terr.Error(), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(buf.Bytes())
}

// snapshot returns the cached snapshot, or reads a new one when it is
// older than CacheTTL. Concurrent requests wait for one read. The read is
// not cancelled by the request that started it: others share its result.
func (h *Handler) snapshot(ctx context.Context) (*Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	if !h.at.IsZero() && h.opts.CacheTTL > 0 && now.Sub(h.at) < h.opts.CacheTTL {
		return h.copySnap(), h.snapErr
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.Timeout)
	defer cancel()
	snap, err := h.src.Snapshot(ctx)
	if snap != nil && snap.Time.IsZero() {
		snap.Time = now
	}
	h.at, h.snap, h.snapErr = h.opts.Now(), snap, err
	return h.copySnap(), err
}

// copySnap returns a shallow copy, so a render never changes the cache.
func (h *Handler) copySnap() *Snapshot {
	if h.snap == nil {
		return nil
	}
	s := *h.snap
	return &s
}
