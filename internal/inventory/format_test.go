package inventory

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// manyRefs returns n entries shaped like a bench overlay's: a few kinds in
// a few namespaces, one revision, random-looking hashes and fingerprints.
func manyRefs(n int, rev string) []Ref {
	kinds := []struct{ g, k string }{{"apps", "Deployment"}, {"", "Service"}, {"", "ConfigMap"}, {"", "ServiceAccount"}}
	out := make([]Ref, n)
	for i := range out {
		k := kinds[i%len(kinds)]
		h := sha256.Sum256([]byte(strconv.Itoa(i) + rev))
		out[i] = Ref{Group: k.g, Version: "v1", Kind: k.k, Namespace: fmt.Sprintf("bench-%02d", i%20), Name: fmt.Sprintf("app-%06d", i),
			Hash: hex.EncodeToString(h[:12]), Revision: rev, Fingerprint: "g1:" + hex.EncodeToString(h[12:20])}
	}
	return out
}

func decodeAll(t *testing.T, shards []shard) []Ref {
	t.Helper()
	budget := int64(MaxRawBytes)
	var out []Ref
	for _, sh := range shards {
		e, err := decodeShard(sh.ref, sh.data, &budget)
		if err != nil {
			t.Fatalf("shard %s: %v", sh.ref.Name, err)
		}
		out = append(out, e...)
	}
	if err := checkOrder(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestShardsRoundTrip(t *testing.T) {
	rev := strings.Repeat("c", 40)
	for _, n := range []int{0, 1, 100, 10_000, 50_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			want := sortedEntries(manyRefs(n, rev))
			shards, err := encodeShards("strata-inventory-prod", 3, want, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeAll(t, shards)
			if diff := cmp.Diff(want, got); n > 0 && diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			if n == 0 && (len(shards) != 0 || len(got) != 0) {
				t.Fatalf("an empty inventory has %d shards, %d entries", len(shards), len(got))
			}
			var total int
			for _, sh := range shards {
				if len(sh.data) > maxShardCompressed {
					t.Errorf("shard %s: %d bytes compressed, more than %d", sh.ref.Name, len(sh.data), maxShardCompressed)
				}
				if !strings.HasPrefix(sh.ref.Name, "strata-inventory-prod.3.") {
					t.Errorf("shard name %s", sh.ref.Name)
				}
				total += len(sh.data)
			}
			if n > 0 {
				t.Logf("%d entries: %d shards, %d bytes compressed (%.1f bytes an entry)", n, len(shards), total, float64(total)/float64(n))
			}
		})
	}
}

// A change to one object rewrites the shard that holds it, not the others.
func TestShardsAreStable(t *testing.T) {
	rev := strings.Repeat("a", 40)
	base := sortedEntries(manyRefs(20_000, rev))
	before, err := encodeShards("r", 1, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) < 4 {
		t.Fatalf("20,000 entries in %d shards: want several to measure stability", len(before))
	}
	changed := func(after []shard) int {
		had := map[string]bool{}
		for _, sh := range before {
			had[sh.ref.SHA256] = true
		}
		n := 0
		for _, sh := range after {
			if !had[sh.ref.SHA256] {
				n++
			}
		}
		return n
	}
	for name, edit := range map[string]func([]Ref) []Ref{
		"one object changed": func(e []Ref) []Ref { e[7000].Hash, e[7000].Revision = "new", strings.Repeat("b", 40); return e },
		"one object added": func(e []Ref) []Ref {
			return append(e, Ref{Version: "v1", Kind: "Service", Namespace: "bench-05", Name: "app-007000x"})
		},
		"one object removed": func(e []Ref) []Ref { return append(e[:9000:9000], e[9001:]...) },
	} {
		after, err := encodeShards("r", 1, sortedEntries(edit(append([]Ref(nil), base...))), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := changed(after); n < 1 || n > 2 {
			t.Errorf("%s: %d of %d shards changed, want 1 (2 when a boundary moved)", name, n, len(after))
		}
	}
}

func TestSortedEntriesDropsRepeats(t *testing.T) {
	a := Ref{Version: "v1", Kind: "ConfigMap", Namespace: "web", Name: "site", Hash: "first"}
	b := Ref{Version: "v2", Kind: "ConfigMap", Namespace: "web", Name: "site", Hash: "second"}
	c := Ref{Version: "v1", Kind: "Namespace", Name: "web"}
	if diff := cmp.Diff([]Ref{a, c}, sortedEntries([]Ref{c, a, b})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// refOf is the root's record of a shard whose entries are the gzip data.
func refOf(name string, data []byte, n int) shardRef {
	sum := sha256.Sum256(gunzipped(data))
	return shardRef{Name: name, SHA256: hex.EncodeToString(sum[:]), Entries: n}
}

// A shard written by someone else fails closed: it says why and allocates
// no more than the limits.
func TestDecodeShardRefusesForgeries(t *testing.T) {
	good := gz(t, []byte(`[{"v":"v1","k":"ConfigMap","ns":"web","n":"site"}]`))
	bomb := gz(t, bytes.Repeat([]byte(" "), maxShardRaw+1)) // 16 MiB of blanks: ~16 KiB compressed
	tests := []struct {
		name string
		ref  shardRef
		data []byte
		want string
	}{
		{"altered", refOf("s", good, 1), gz(t, []byte(`[{"v":"v1","k":"ConfigMap","ns":"web","n":"other"}]`)), "do not match the root"},
		{"not gzip", refOf("s", []byte("plain"), 1), []byte("plain"), "not gzip"},
		{"bomb", refOf("s", bomb, 1), bomb, "exceed"},
		{"not JSON", refOf("s", gz(t, []byte("{")), 1), gz(t, []byte("{")), "not JSON"},
		{"fewer entries", refOf("s", good, 2), good, "holds 1 entries, the root says 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := int64(MaxRawBytes)
			_, err := decodeShard(tt.ref, tt.data, &budget)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeShard = %v, want an error saying %q", err, tt.want)
			}
			if tt.name == "bomb" && !errors.Is(err, errTooLarge) {
				t.Errorf("bomb: %v is not errTooLarge", err)
			}
		})
	}
	// The budget spans shards: many shards under the per-shard cap cannot
	// add up to more than MaxRawBytes.
	budget := int64(10)
	if _, err := decodeShard(refOf("s", good, 1), good, &budget); !errors.Is(err, errTooLarge) {
		t.Errorf("over the inventory's budget: %v", err)
	}
}

func TestParseRootRefusesForgeries(t *testing.T) {
	sha := strings.Repeat("a", 64)
	list := func(refs ...shardRef) string { b, _ := json.Marshal(refs); return string(b) }
	ok := shardRef{Name: "strata-inventory-prod.2." + sha[:16], SHA256: sha, Entries: 3}
	many := make([]shardRef, MaxShards+1)
	for i := range many {
		many[i] = shardRef{Name: fmt.Sprintf("strata-inventory-prod.2.%d", i), SHA256: sha, Entries: 1}
	}
	tests := []struct {
		name string
		data map[string]string
		want string
	}{
		{"good", map[string]string{generationKey: "2", countKey: "3", shardsKey: list(ok)}, ""},
		{"no generation", map[string]string{countKey: "3", shardsKey: list(ok)}, "generation"},
		{"bad count", map[string]string{generationKey: "2", countKey: "x", shardsKey: list(ok)}, "count"},
		{"count disagrees", map[string]string{generationKey: "2", countKey: "4", shardsKey: list(ok)}, "hold 3 entries, its count says 4"},
		{"not JSON", map[string]string{generationKey: "2", countKey: "3", shardsKey: "[{"}, "not JSON"},
		{"foreign ConfigMap", map[string]string{generationKey: "2", countKey: "3", shardsKey: list(shardRef{Name: "strata-suspend-prod", SHA256: sha, Entries: 3})}, "not a shard of this inventory"},
		{"another env", map[string]string{generationKey: "2", countKey: "3", shardsKey: list(shardRef{Name: "strata-inventory-prod2.1.x", SHA256: sha, Entries: 3})}, "not a shard"},
		{"repeated shard", map[string]string{generationKey: "2", countKey: "6", shardsKey: list(ok, ok)}, "not a shard"},
		{"too many shards", map[string]string{generationKey: "2", countKey: strconv.Itoa(len(many)), shardsKey: list(many...)}, "more than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := parseRoot("strata-inventory-prod", tt.data)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("parseRoot = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckOrder(t *testing.T) {
	a := Ref{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}
	b := Ref{Version: "v1", Kind: "ConfigMap", Namespace: "b", Name: "x"}
	if err := checkOrder([]Ref{a, b}); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]Ref{{b, a}, {a, a}} {
		if err := checkOrder(bad); err == nil || !strings.Contains(err.Error(), "out of order or repeat") {
			t.Errorf("checkOrder(%v) = %v", bad, err)
		}
	}
}

// Whatever a shard holds, decoding never panics and stays within its budget.
func FuzzDecodeShard(f *testing.F) {
	f.Add(gz(f, []byte(`[{"v":"v1","k":"ConfigMap","ns":"web","n":"site"}]`)), 1)
	f.Add([]byte("plain"), 1)
	f.Add(gz(f, []byte(`[`)), 0)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		budget := int64(1 << 20)
		entries, err := decodeShard(refOf("s", data, n), data, &budget)
		if err == nil && len(entries) != n {
			t.Fatalf("%d entries, root says %d", len(entries), n)
		}
		if budget < 0 {
			t.Fatalf("budget overdrawn: %d", budget)
		}
	})
}

func BenchmarkEncodeShards(b *testing.B) {
	e := sortedEntries(manyRefs(50_000, strings.Repeat("c", 40)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeShards("r", 1, e, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeShards(b *testing.B) {
	e := sortedEntries(manyRefs(50_000, strings.Repeat("c", 40)))
	shards, err := encodeShards("r", 1, e, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		budget := int64(MaxRawBytes)
		for _, sh := range shards {
			if _, err := decodeShard(sh.ref, sh.data, &budget); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// gunzipped is data decompressed, or data itself when it is not gzip.
func gunzipped(data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return data
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 1<<20))
	if err != nil {
		return data
	}
	return raw
}

// An unchanged inventory (a status-only Save) is not compressed again.
func BenchmarkEncodeUnchangedShards(b *testing.B) {
	e := sortedEntries(manyRefs(50_000, strings.Repeat("c", 40)))
	shards, err := encodeShards("r", 1, e, nil)
	if err != nil {
		b.Fatal(err)
	}
	have := map[string]shardRef{}
	for _, sh := range shards {
		have[sh.ref.SHA256] = sh.ref
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeShards("r", 2, sortedEntries(e), have); err != nil {
			b.Fatal(err)
		}
	}
}
