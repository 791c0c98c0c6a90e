package audit

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
)

// WriterOptions tune a Writer. The zero value is usable.
type WriterOptions struct {
	// FlushInterval is how often buffered events are written (default 2s).
	FlushInterval time.Duration
	// FlushTimeout bounds one background flush (default 10s).
	FlushTimeout time.Duration
	// MaxBuffer bounds the distinct events held in memory, including those
	// waiting for a retry while the cluster cannot be written (default
	// 10000). Beyond it new events are counted and dropped; the count is
	// written as an audit-dropped event.
	MaxBuffer int
	// MaxBytes is the size at which a ConfigMap is full and the next part
	// starts (default 900 KiB; the apiserver's limit is 1 MiB), at most an
	// eighth of RetainBytes so that roll-off is gradual.
	MaxBytes int
	// Retention rolls off parts of the log (of any writer of the cluster)
	// whose last event is older (default config.DefaultAuditMaxAge; < 0
	// keeps every age).
	Retention time.Duration
	// RetainBytes bounds the size of the cluster's whole audit log, all
	// writers together: the parts with the oldest last event are rolled off
	// first (default config.DefaultAuditMaxBytes; < 0 is unbounded).
	RetainBytes int64
	// RetentionEvery is how often retention runs when nothing is written
	// (default 1m); it runs after every write too.
	RetentionEvery time.Duration
	// Cluster, Tier and Environment fill the fields of recorded events that
	// leave them empty.
	Cluster, Tier, Environment string
	Log                        *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time

	// partBytes is MaxBytes as given (or defaulted), before RetainBytes
	// lowers it.
	partBytes int
}

// boundParts keeps parts at most an eighth of the whole bound, so that a
// roll-off never takes a large share of the log at once.
func (o *WriterOptions) boundParts() {
	o.MaxBytes = o.partBytes
	if o.RetainBytes > 0 && int64(o.MaxBytes) > o.RetainBytes/8 {
		o.MaxBytes = max(int(o.RetainBytes/8), 1)
	}
}

// SetRetention changes the retention of the writer (strata.yaml changed)
// from its next flush on; maxAge or maxBytes 0 keep the current value. It
// never waits for a flush (one to an unreachable cluster can take long).
func (w *Writer) SetRetention(maxAge time.Duration, maxBytes int64) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if maxAge != 0 {
		w.setAge = maxAge
	}
	if maxBytes != 0 {
		w.setBytes = maxBytes
	}
}

// applyRetention takes what SetRetention set; under flushMu.
func (w *Writer) applyRetention() {
	w.mu.Lock()
	age, bytes := w.setAge, w.setBytes
	w.setAge, w.setBytes = 0, 0
	w.mu.Unlock()
	if age != 0 {
		w.opts.Retention = age
	}
	if bytes != 0 {
		w.opts.RetainBytes = bytes
		w.opts.boundParts()
	}
}

// DefaultMaxBytes is the default size of a full audit ConfigMap.
const DefaultMaxBytes = 900 << 10

func (o *WriterOptions) defaults() {
	if o.FlushInterval <= 0 {
		o.FlushInterval = 2 * time.Second
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 10 * time.Second
	}
	if o.MaxBuffer <= 0 {
		o.MaxBuffer = 10000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Retention == 0 {
		o.Retention = config.DefaultAuditMaxAge
	}
	if o.RetainBytes == 0 {
		o.RetainBytes = int64(config.DefaultAuditMaxBytes)
	}
	o.partBytes = o.MaxBytes
	o.boundParts()
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Stats counts what a Writer did, for metrics and tests.
type Stats struct {
	// Recorded counts Record calls accepted (aggregated ones included).
	Recorded int
	// Written counts events written (an aggregated line counts its Count).
	Written int
	// Lines counts lines written.
	Lines int
	// Dropped counts events dropped because the buffer was full or the
	// Writer was closed.
	Dropped int
	// Conflicts counts optimistic-concurrency conflicts retried.
	Conflicts int
	// Flushes counts successful flushes that wrote something; Failures the
	// flushes that did not write everything.
	Flushes, Failures int
	// Parts counts ConfigMaps this writer created.
	Parts int
	// RolledOff counts the parts retention deleted; RolledOffEvents the
	// events they held.
	RolledOff, RolledOffEvents int
}

// Writer appends events to the audit log in one cluster. Record never
// blocks on the cluster: events are buffered (identical ones aggregated)
// and written at most every FlushInterval by a background goroutine, and on
// Flush and Close. It is safe for concurrent use.
type Writer struct {
	// c is the cluster's client, swapped when its credentials rotate
	// (Writers.For): events buffered for the cluster go out with the new one.
	c atomic.Pointer[client.Client]
	// swapped says c changed since the last flush: what the flush cached
	// about the cluster (parts, the namespace) may be about another one.
	swapped atomic.Bool
	source  string
	opts    WriterOptions

	mu      sync.Mutex
	pending map[string]*Event
	// retry holds events (with their IDs) whose write failed.
	retry        []Event
	dropped      int
	droppedKinds map[Kind]int
	droppedFirst time.Time
	droppedLast  time.Time
	closed       bool
	stats        Stats
	// setAge and setBytes are retention changes for the next flush.
	setAge   time.Duration
	setBytes int64

	// flushMu serializes writes; the fields below belong to it.
	flushMu   sync.Mutex
	parts     map[string]int // day → current part
	cache     *corev1.ConfigMap
	nsChecked bool
	failing   bool
	lastLog   time.Time
	// retained is when retention last ran; a new part or growth (bytes
	// written since) asks for a pass now.
	retained time.Time
	newPart  bool
	grown    int64
	// legacy caches the summaries of parts without annotations, by name
	// and resourceVersion.
	legacy map[string]legacyStats

	stop   context.CancelFunc
	done   chan struct{}
	closeO sync.Once
}

// NewWriter returns a Writer that appends to the cluster behind c under
// source ("reconciler", "webhook-<pod>"), and starts its flush loop.
func NewWriter(c client.Client, source string, opts WriterOptions) *Writer {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{source: SourceName(source), opts: opts, pending: map[string]*Event{},
		parts: map[string]int{}, stop: cancel, done: make(chan struct{})}
	w.c.Store(&c)
	go w.loop(ctx)
	return w
}

// client is the cluster's current client.
func (w *Writer) client() client.Client { return *w.c.Load() }

// use makes c the cluster's client from the next flush on.
func (w *Writer) use(c client.Client) {
	if c != nil && w.client() != c {
		w.c.Store(&c)
		w.swapped.Store(true)
	}
}

// Source returns the writer's (sanitized) source name.
func (w *Writer) Source() string { return w.source }

// Recorder is what code that records events needs (a *Writer, or a fake
// in tests).
type Recorder interface {
	Record(e Event)
}

// Record buffers e. Time defaults to now, Count to 1; Cluster, Tier and
// Environment default to the writer's options. Overlong fields are cut.
// A nil *Writer records nothing.
func (w *Writer) Record(e Event) {
	if w == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = w.opts.Now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	if e.Count < 1 {
		e.Count = 1
	}
	if e.Cluster == "" {
		e.Cluster = w.opts.Cluster
	}
	if e.Tier == "" {
		e.Tier = w.opts.Tier
	}
	if e.Environment == "" {
		e.Environment = w.opts.Environment
	}
	e.ID, e.Source, e.Last, e.Names = "", w.source, time.Time{}, nil
	e.bound()
	k := e.aggKey()
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.pending[k]; ok && !w.closed {
		p.merge(e)
		w.stats.Recorded += e.Count
		return
	}
	if w.closed || len(w.pending)+len(w.retry) >= w.opts.MaxBuffer {
		if w.closed && w.stats.Dropped == 0 {
			w.opts.Log.Warn("audit event recorded after the writer was closed: dropped", "source", w.source, "kind", e.Kind, "object", e.Object)
		}
		if w.dropped == 0 {
			w.droppedFirst = e.Time
			w.droppedKinds = map[Kind]int{}
		}
		w.dropped += e.Count
		w.droppedKinds[e.Kind] += e.Count
		w.droppedLast = e.Time
		w.stats.Dropped += e.Count
		return
	}
	w.pending[k] = &e
	w.stats.Recorded += e.Count
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	if w == nil {
		return Stats{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, w.opts.FlushTimeout)
			_ = w.Flush(fctx) // logged by Flush
			cancel()
		}
	}
}

// Flush writes the buffered events now, then applies retention. On error
// the events stay buffered and are written by a later flush.
func (w *Writer) Flush(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	if w.swapped.Swap(false) {
		w.cache, w.nsChecked, w.legacy = nil, false, nil
		clear(w.parts)
	}
	w.applyRetention()
	if err := w.writeBatch(ctx, w.take()); err != nil {
		return err
	}
	return w.retention(ctx)
}

// writeBatch writes batch; what it could not write waits for the next flush.
func (w *Writer) writeBatch(ctx context.Context, batch []Event) error {
	if len(batch) == 0 {
		return nil
	}
	rest, err := w.write(ctx, batch)
	w.mu.Lock()
	if err != nil {
		w.retry = append(rest, w.retry...)
		w.stats.Failures++
	} else {
		w.stats.Flushes++
	}
	for _, e := range batch[:len(batch)-len(rest)] {
		w.stats.Written += e.occurrences()
		w.stats.Lines++
	}
	w.mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		w.logOutcome(err, len(rest))
	}
	return err
}

// take moves the buffered events (and a drop record) into a batch with
// IDs, sorted by time.
func (w *Writer) take() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch := w.retry
	w.retry = nil
	for _, e := range w.pending {
		e.ID = newID()
		batch = append(batch, *e)
	}
	clear(w.pending)
	if w.dropped > 0 {
		kinds := make([]string, 0, len(w.droppedKinds))
		for k, n := range w.droppedKinds {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(kinds)
		d := Event{ID: newID(), Time: w.droppedFirst, Kind: Dropped, Count: w.dropped, Source: w.source,
			Cluster: w.opts.Cluster, Tier: w.opts.Tier, Environment: w.opts.Environment,
			Message: fmt.Sprintf("%d events dropped: the audit buffer (%d) was full or the writer closed (%s)",
				w.dropped, w.opts.MaxBuffer, strings.Join(kinds, ", "))}
		if w.droppedLast.After(d.Time) {
			d.Last = w.droppedLast
		}
		w.opts.Log.Warn("audit events dropped", "source", w.source, "count", w.dropped, "kinds", kinds)
		batch = append(batch, d)
		w.dropped = 0
	}
	sort.SliceStable(batch, func(i, j int) bool { return batch[i].Time.Before(batch[j].Time) })
	return batch
}

func (w *Writer) logOutcome(err error, unwritten int) {
	now := time.Now()
	switch {
	case err != nil && (!w.failing || now.Sub(w.lastLog) > time.Minute):
		w.opts.Log.Error("could not write audit events; keeping them for the next flush", "source", w.source,
			"cluster", w.opts.Cluster, "pending", unwritten, "error", err)
		w.failing, w.lastLog = true, now
	case err == nil && w.failing:
		w.opts.Log.Info("audit events written again", "source", w.source, "cluster", w.opts.Cluster)
		w.failing = false
	}
}

// Close stops the flush loop and writes what is buffered. Events recorded
// after Close are counted as dropped.
func (w *Writer) Close(ctx context.Context) error {
	if w == nil {
		return nil
	}
	var err error
	w.closeO.Do(func() {
		w.stop() // aborts a background flush; its events go back to the buffer
		<-w.done
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		err = w.Flush(ctx)
	})
	return err
}

func newID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
