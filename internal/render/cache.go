package render

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// DefaultCacheBytes bounds a Cache's memory when CacheOptions says nothing:
// the rendered YAML of about 50,000 typical objects.
const DefaultCacheBytes = 64 << 20

// entriesPerUnit is how many renders of one unit (same directories, same
// rewritten kustomizations, different file contents) are kept: the
// approval gate renders the base and the head of a change one after the
// other, with and without windows.
const entriesPerUnit = 4

// CacheOptions configure a Cache.
type CacheOptions struct {
	// MaxBytes bounds the memory held (rendered YAML); 0 means DefaultCacheBytes.
	MaxBytes int64
	// Dir, when set, keeps entries on disk as well (one file each), so that
	// a new process finds what an earlier one rendered. Never pruned by
	// strata; delete it at will.
	Dir string
}

// Cache holds the rendered output of units, keyed by the content of
// everything each unit's render read (see observation), strata.yaml, the
// open windows and the build of strata and kustomize. It is safe for
// concurrent use; share one per process.
type Cache struct {
	max  int64
	dir  string
	mu   sync.Mutex
	size int64
	lru  *list.List                 // of *cacheEntry, most recent first
	byID map[string][]*list.Element // unit key → its entries

	hits, misses atomic.Int64
}

// cacheEntry is one render of a unit. Entries are never modified once
// added (readers hold them without the lock): adding the other form of an
// output replaces the entry with a merged copy.
type cacheEntry struct {
	Key   string        `json:"key"`
	Obs   []observation `json:"observations"`
	Facts []fact        `json:"facts"`
	// Data is the unit's objects as YAML documents; nil when the unit was
	// only rendered for a Converter and no disk cache is kept.
	Data []byte `json:"data"`
	// conv names the Converter that made value, of valueSize bytes (in
	// memory only).
	conv      string
	value     any
	valueSize int64
}

func (e *cacheEntry) bytes() int64 {
	n := int64(len(e.Data)+len(e.Key)) + e.valueSize
	for _, o := range e.Obs {
		n += int64(len(o.Op) + len(o.Path) + len(o.Answer) + 48)
	}
	for _, f := range e.Facts {
		n += int64(len(f.Group)+len(f.Kind)+len(f.Namespace)+len(f.Name)) + 80 + int64(len(f.Refs))*40
	}
	return n
}

// merged returns e with what n adds: the YAML when e has none, n's
// converted value when it has one.
func (e *cacheEntry) merged(n *cacheEntry) *cacheEntry {
	m := *e
	if m.Data == nil {
		m.Data = n.Data
	}
	if n.conv != "" {
		m.conv, m.value, m.valueSize = n.conv, n.value, n.valueSize
	}
	return &m
}

// NewCache returns an empty cache.
func NewCache(o CacheOptions) (*Cache, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultCacheBytes
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("render cache directory %s: %w (choose a writable directory or leave the disk cache off)", o.Dir, err)
		}
	}
	return &Cache{max: o.MaxBytes, dir: o.Dir, lru: list.New(), byID: map[string][]*list.Element{}}, nil
}

// Hits and Misses count unit lookups since the cache was made.
func (c *Cache) Hits() int64   { return c.hits.Load() }
func (c *Cache) Misses() int64 { return c.misses.Load() }

// get returns the entry of unit key whose observations all hold on fsys.
func (c *Cache) get(key string, fsys filesys.FileSystem) (*cacheEntry, bool) {
	c.mu.Lock()
	els := append([]*list.Element(nil), c.byID[key]...)
	c.mu.Unlock()
	for _, el := range els {
		e := el.Value.(*cacheEntry)
		if valid(fsys, e.Obs) {
			c.mu.Lock()
			c.lru.MoveToFront(el) // a no-op when it was evicted meanwhile
			c.mu.Unlock()
			c.hits.Add(1)
			return e, true
		}
	}
	if c.dir != "" {
		for _, e := range c.readDisk(key) {
			if valid(fsys, e.Obs) {
				c.add(e)
				c.hits.Add(1)
				return e, true
			}
		}
	}
	c.misses.Add(1)
	return nil, false
}

// observed returns the digest of the observations of the in-memory entry of
// unit key that holds on fsys, without touching its output or the disk.
func (c *Cache) observed(key string, fsys filesys.FileSystem) (string, bool) {
	c.mu.Lock()
	els := append([]*list.Element(nil), c.byID[key]...)
	c.mu.Unlock()
	for _, el := range els {
		if e := el.Value.(*cacheEntry); valid(fsys, e.Obs) {
			return obsDigest(e.Obs), true
		}
	}
	return "", false
}

// put stores a unit's output with what its render observed; an entry of
// the same render is merged with it. Only entries with YAML go to disk.
func (c *Cache) put(e *cacheEntry) {
	if c.dir != "" && e.Data != nil {
		c.writeDisk(e)
	}
	if e.conv != "" && e.Data != nil {
		// Memory keeps the converted value only: the YAML is for a later
		// process, from disk (a render without a Converter in this one
		// renders the unit again).
		m := *e
		m.Data = nil
		e = &m
	}
	c.add(e)
}

func (c *Cache) add(e *cacheEntry) {
	n := e.bytes()
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	obsKey := obsDigest(e.Obs)
	els := c.byID[e.Key]
	for _, el := range els {
		if old := el.Value.(*cacheEntry); obsDigest(old.Obs) == obsKey {
			m := old.merged(e)
			el.Value = m
			c.size += m.bytes() - old.bytes()
			c.lru.MoveToFront(el)
			c.evict()
			return
		}
	}
	el := c.lru.PushFront(e)
	c.byID[e.Key] = append([]*list.Element{el}, els...)
	c.size += n
	if len(c.byID[e.Key]) > entriesPerUnit {
		c.remove(c.byID[e.Key][entriesPerUnit])
	}
	c.evict()
}

func (c *Cache) evict() {
	for c.size > c.max && c.lru.Len() > 0 {
		c.remove(c.lru.Back())
	}
}

func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	c.size -= e.bytes()
	els := c.byID[e.Key]
	for i, x := range els {
		if x == el {
			els = append(els[:i:i], els[i+1:]...)
			break
		}
	}
	if len(els) == 0 {
		delete(c.byID, e.Key)
	} else {
		c.byID[e.Key] = els
	}
}

func obsDigest(obs []observation) string {
	var b strings.Builder
	for _, o := range obs {
		b.WriteString(o.Op + "\x00" + o.Path + "\x00" + o.Answer + "\x00")
	}
	return digest(b.String())
}

func (c *Cache) diskPath(key, obs string) string {
	return filepath.Join(c.dir, key[:2], key+"-"+obs[:16]+".json")
}

// readDisk returns the entries of key on disk; unreadable ones are skipped
// (the unit is rendered again).
func (c *Cache) readDisk(key string) []*cacheEntry {
	files, _ := filepath.Glob(filepath.Join(c.dir, key[:2], key+"-*.json"))
	var out []*cacheEntry
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var e cacheEntry
		if json.Unmarshal(data, &e) == nil && e.Key == key && e.Data != nil {
			out = append(out, &e)
		}
	}
	return out
}

// writeDisk stores e atomically (write, then rename); a failure leaves
// the memory cache working and is otherwise ignored.
func (c *Cache) writeDisk(e *cacheEntry) {
	p := c.diskPath(e.Key, obsDigest(e.Obs))
	if _, err := os.Stat(p); err == nil {
		return // the same render, written before
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), p) != nil {
		os.Remove(tmp.Name())
	}
}

// buildID names the code that renders: a cache entry made by another
// build of strata or kustomize is never used.
var buildID = func() string {
	const format = "strata-render-cache-2"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return format
	}
	parts := []string{format, bi.GoVersion, bi.Main.Path, bi.Main.Version}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			parts = append(parts, s.Key+"="+s.Value)
		}
	}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "sigs.k8s.io/kustomize/") {
			parts = append(parts, d.Path+"@"+d.Version)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			// A rebuilt binary with uncommitted changes has the same
			// revision; its size and time tell it apart.
			parts = append(parts, fmt.Sprint(fi.Size(), fi.ModTime().UnixNano()))
		}
	}
	return strings.Join(parts, "\n")
}()
