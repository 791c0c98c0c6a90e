package inventory

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"strings"
)

// The inventory of an environment in a cluster is a root ConfigMap
// strata-inventory-<env> and the shards it lists. A shard is a ConfigMap
// strata-inventory-<env>.<generation>.<hash> holding a gzip-compressed JSON
// array of entries, sorted by key; the root holds the status and, for each
// shard, its name, the SHA-256 of its entries (the JSON array) and their
// count.
// Shards are written before the root that lists them and deleted only after
// a root that no longer lists them has been stored, so the one write of the
// root switches from the complete old to the complete new inventory. Load
// follows the root only and checks every shard against it.
//
// Before format 2, the root held the entries itself (data key "entries",
// JSON): Load still reads that, and the next Save moves them into shards.
const (
	entriesKey    = "entries" // format 1: the entries, JSON, in the root
	statusKey     = "status"
	formatKey     = "format"
	generationKey = "generation"
	shardsKey     = "shards"
	countKey      = "count"
	shardDataKey  = "entries.json.gz"

	// formatSharded is the value of formatKey of this format.
	formatSharded = "2"
)

// Limits of the format. The writer keeps within them and the reader
// refuses anything beyond them, so a forged shard can neither exhaust memory
// nor make strata prune from a partial inventory.
const (
	// MaxShards bounds the shards of one inventory.
	MaxShards = 256
	// maxShardCompressed bounds a shard's compressed entries; a ConfigMap
	// holds at most 1 MiB.
	maxShardCompressed = 768 << 10
	// maxShardRaw bounds a shard's entries once decompressed.
	maxShardRaw = 16 << 20
	// MaxRawBytes bounds all the entries of an inventory, decompressed (at
	// about 150 bytes an entry, some 400,000 objects).
	MaxRawBytes = 64 << 20
	// maxShardRawWrite bounds the size of a shard written.
	maxShardRawWrite = 2 << 20
)

// The cut of shards; tests make them smaller to have many shards cheaply.
var (
	// targetShardEntries is the mean number of entries per shard: a shard
	// ends after an entry whose key hashes to 0 modulo it, so that adding or
	// removing an object changes one shard and leaves the others as they
	// are (content-defined boundaries).
	targetShardEntries uint32 = 4096
	// minShardRaw is the least size of a shard that may end at a boundary.
	minShardRaw = 64 << 10
)

// shardRef is the root's record of one shard.
type shardRef struct {
	Name string `json:"name"`
	// SHA256 is the hash of the shard's entries decompressed (the JSON
	// array), so that an unchanged shard is recognized before compression.
	SHA256  string `json:"sha256"`
	Entries int    `json:"entries"`
}

// shard is one shard's content, ready to be written.
type shard struct {
	ref shardRef
	// data is the gzip of the JSON array of entries; nil for a shard the
	// current root lists already.
	data []byte
}

// sortedEntries returns entries sorted by key, the first of several
// entries of one key kept (they name the same object).
func sortedEntries(entries []Ref) []Ref {
	type keyed struct {
		key string
		ref *Ref
	}
	ks := make([]keyed, len(entries))
	for i := range entries {
		ks[i] = keyed{entries[i].Key(), &entries[i]}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	ks = slices.CompactFunc(ks, func(a, b keyed) bool { return a.key == b.key })
	out := make([]Ref, len(ks))
	for i, k := range ks {
		out[i] = *k.ref
	}
	return out
}

// boundary reports whether a shard may end after e: whether the FNV-1a
// hash of its key is 0 modulo targetShardEntries.
func boundary(e *Ref) bool {
	h := fnv.New32a()
	for i, s := range [...]string{e.Group, e.Kind, e.Namespace, e.Name} {
		if i > 0 {
			h.Write([]byte{'/'})
		}
		_, _ = io.WriteString(h, s)
	}
	return h.Sum32()%targetShardEntries == 0
}

// encodeShards cuts sorted entries into shards named after root and gen.
// A shard whose content is in have (the current root's shards by content
// hash) is not compressed again: it keeps its ref and has no data.
func encodeShards(root string, gen int64, entries []Ref, have map[string]shardRef) ([]shard, error) {
	var (
		out   []shard
		buf   bytes.Buffer
		n     int
		total int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		buf.WriteByte(']')
		total += buf.Len()
		if total > MaxRawBytes {
			return fmt.Errorf("the inventory of %d objects needs more than %d MiB, the most strata stores in a cluster: split the environment", len(entries), MaxRawBytes>>20)
		}
		ss, err := compress(root, gen, buf.Bytes(), n, have) // keeps nothing of buf
		if err != nil {
			return err
		}
		out = append(out, ss...)
		buf.Reset()
		n = 0
		return nil
	}
	enc := json.NewEncoder(&buf)
	for i := range entries {
		if n == 0 {
			buf.WriteByte('[')
		} else {
			buf.WriteByte(',')
		}
		if err := enc.Encode(&entries[i]); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode ends the value with a newline
		n++
		if buf.Len() >= maxShardRawWrite || buf.Len() >= minShardRaw && boundary(&entries[i]) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(out) > MaxShards {
		return nil, fmt.Errorf("the inventory of %d objects needs %d shards, more than the %d strata stores in a cluster: split the environment", len(entries), len(out), MaxShards)
	}
	return out, nil
}

// compress makes the JSON array raw of n entries one shard, or two halves
// when it does not fit compressed.
func compress(root string, gen int64, raw []byte, n int, have map[string]shardRef) ([]shard, error) {
	sum := sha256.Sum256(raw)
	h := hex.EncodeToString(sum[:])
	if r, ok := have[h]; ok && r.Entries == n {
		return []shard{{ref: r}}, nil
	}
	var z bytes.Buffer
	w, err := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if z.Len() > maxShardCompressed && n > 1 {
		var refs []json.RawMessage
		if err := json.Unmarshal(raw, &refs); err != nil {
			return nil, err
		}
		half := len(refs) / 2
		a, err := compress(root, gen, arrayOf(refs[:half]), half, have)
		if err != nil {
			return nil, err
		}
		b, err := compress(root, gen, arrayOf(refs[half:]), len(refs)-half, have)
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	}
	return []shard{{ref: shardRef{Name: shardName(root, gen, h), SHA256: h, Entries: n}, data: z.Bytes()}}, nil
}

func arrayOf(items []json.RawMessage) []byte {
	b, _ := json.Marshal(items) // RawMessages that were valid JSON
	return b
}

// shardName names a shard of root first written for generation gen.
func shardName(root string, gen int64, sha string) string {
	return root + "." + strconv.FormatInt(gen, 10) + "." + sha[:16]
}

// errTooLarge is returned by decodeShard for entries beyond the limits.
var errTooLarge = errors.New("too large")

// decodeShard checks data against ref and returns its entries. budget is
// how many decompressed bytes the inventory may still take; it is reduced.
func decodeShard(ref shardRef, data []byte, budget *int64) ([]Ref, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("its entries are not gzip: %v", err)
	}
	limit := min(int64(maxShardRaw), *budget)
	raw, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing its entries: %v", err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("its entries exceed %d bytes decompressed: %w", limit, errTooLarge)
	}
	*budget -= int64(len(raw))
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != ref.SHA256 {
		return nil, fmt.Errorf("its entries do not match the root (sha256 %s, root says %s)", got, ref.SHA256)
	}
	var entries []Ref
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("its entries are not JSON: %v", err)
	}
	if len(entries) != ref.Entries {
		return nil, fmt.Errorf("it holds %d entries, the root says %d", len(entries), ref.Entries)
	}
	return entries, nil
}

// parseRoot reads the shard list of a format-2 root of env.
func parseRoot(root string, data map[string]string) (gen int64, refs []shardRef, count int, err error) {
	gen, err = strconv.ParseInt(data[generationKey], 10, 64)
	if err != nil || gen < 1 {
		return 0, nil, 0, fmt.Errorf("its generation %q is not a positive number", data[generationKey])
	}
	count, err = strconv.Atoi(data[countKey])
	if err != nil || count < 0 {
		return 0, nil, 0, fmt.Errorf("its count %q is not a number", data[countKey])
	}
	if err := json.Unmarshal([]byte(data[shardsKey]), &refs); err != nil {
		return 0, nil, 0, fmt.Errorf("its shard list is not JSON: %v", err)
	}
	if len(refs) > MaxShards {
		return 0, nil, 0, fmt.Errorf("it lists %d shards, more than %d", len(refs), MaxShards)
	}
	sum := 0
	seen := map[string]bool{}
	for _, r := range refs {
		if !strings.HasPrefix(r.Name, root+".") || len(r.SHA256) != 64 || r.Entries < 1 || seen[r.Name] {
			return 0, nil, 0, fmt.Errorf("its shard list names %q (sha256 %q, %d entries), not a shard of this inventory", r.Name, r.SHA256, r.Entries)
		}
		seen[r.Name] = true
		sum += r.Entries
	}
	if sum != count {
		return 0, nil, 0, fmt.Errorf("its shards hold %d entries, its count says %d", sum, count)
	}
	return gen, refs, count, nil
}

// checkOrder verifies that entries, all shards together, are sorted by key
// with no key twice: a shard that was moved, repeated or swapped breaks it.
func checkOrder(entries []Ref) error {
	prev := ""
	for i, e := range entries {
		k := e.Key()
		if i > 0 && prev >= k {
			return fmt.Errorf("entry %s follows %s: the shards are out of order or repeat an object", k, prev)
		}
		prev = k
	}
	return nil
}
