package audit

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
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
	if o.RetainBytes > 0 && int64(o.MaxBytes) > o.RetainBytes/8 {
		o.MaxBytes = max(int(o.RetainBytes/8), 1)
	}
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
	c      client.Client
	source string
	opts   WriterOptions

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
	w := &Writer{c: c, source: SourceName(source), opts: opts, pending: map[string]*Event{},
		parts: map[string]int{}, stop: cancel, done: make(chan struct{})}
	go w.loop(ctx)
	return w
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
			err := w.c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: name}, cm)
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
			err := w.c.Create(ctx, nc)
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
		err := w.c.Update(ctx, uc)
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
	err := w.c.List(ctx, &list, client.InNamespace(labels.SystemNamespace),
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
	if err := w.c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s for the audit log: %w", labels.SystemNamespace, err)
	}
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Writers holds one Writer per cluster for a process that writes to many
// (the reconciler in push mode). The zero value is not usable: set Source.
type Writers struct {
	// Source names the writers ("reconciler").
	Source string
	// Options are every writer's options; Cluster is set per cluster.
	Options WriterOptions

	mu     sync.Mutex
	ws     map[string]*Writer
	closed bool
}

// For returns the Writer of cluster, creating it on first use with c.
// A closed Writers returns nil, which records nothing.
func (ws *Writers) For(cluster string, c client.Client) *Writer {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return nil
	}
	if w, ok := ws.ws[cluster]; ok {
		return w
	}
	if ws.ws == nil {
		ws.ws = map[string]*Writer{}
	}
	o := ws.Options
	o.Cluster = cluster
	w := NewWriter(c, ws.Source, o)
	ws.ws[cluster] = w
	return w
}

// Flush flushes every writer and returns their errors joined.
func (ws *Writers) Flush(ctx context.Context) error {
	return ws.each(func(w *Writer) error { return w.Flush(ctx) }, false)
}

// Close closes every writer (concurrently: one unreachable cluster does not
// hold up the others) and returns their errors joined.
func (ws *Writers) Close(ctx context.Context) error {
	return ws.each(func(w *Writer) error { return w.Close(ctx) }, true)
}

func (ws *Writers) each(f func(*Writer) error, forget bool) error {
	ws.mu.Lock()
	list := make(map[string]*Writer, len(ws.ws))
	for k, w := range ws.ws {
		list[k] = w
	}
	if forget {
		ws.closed = true
		clear(ws.ws)
	}
	ws.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for name, w := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(w); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("audit log of cluster %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
