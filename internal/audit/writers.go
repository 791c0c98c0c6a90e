package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

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

// SetRetention changes the retention of every writer, present and future
// (the reconciler calls it with strata.yaml's audit: of each revision).
func (ws *Writers) SetRetention(maxAge time.Duration, maxBytes int64) {
	ws.mu.Lock()
	if maxAge != 0 {
		ws.Options.Retention = maxAge
	}
	if maxBytes != 0 {
		ws.Options.RetainBytes = maxBytes
	}
	list := make([]*Writer, 0, len(ws.ws))
	for _, w := range ws.ws {
		list = append(list, w)
	}
	ws.mu.Unlock()
	for _, w := range list {
		w.SetRetention(maxAge, maxBytes)
	}
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
		// A new client is a new connection (rotated credentials, a moved
		// apiserver): the writer keeps its buffer and writes with it.
		w.use(c)
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
