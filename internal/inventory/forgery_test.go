package inventory_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/labels"
)

// forgeriesFailClosed: whoever controls a target cluster can write its
// inventory. A shard or root that was altered, removed, swapped or blown
// up makes Load fail with an error that says strata will not prune, and
// what to do, and Load never holds more than the format's limits.
func forgeriesFailClosed(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := inventory.EnsureNamespace(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Each case starts from a good inventory of 1,000 objects in a few
	// shards and changes what is stored.
	defer inventory.SmallShards(256, 4<<10)()
	tests := []struct {
		name   string
		forge  func(t *testing.T, root *corev1.ConfigMap, shards []corev1.ConfigMap)
		wantIn []string
	}{
		{"shard altered", func(t *testing.T, _ *corev1.ConfigMap, shards []corev1.ConfigMap) {
			sh := &shards[1]
			sh.BinaryData["entries.json.gz"] = gzipped(t, []byte(`[{"v":"v1","k":"Namespace","n":"kube-system"}]`))
			update(ctx, t, c, sh)
		}, []string{"is corrupt", "do not match the root", "strata will not prune"}},
		{"shard deleted", func(t *testing.T, _ *corev1.ConfigMap, shards []corev1.ConfigMap) {
			if err := c.Delete(ctx, &shards[0]); err != nil {
				t.Fatal(err)
			}
		}, []string{"is corrupt", "is missing", "fix or delete the ConfigMap (and its shards, label strata.dev/inventory-of="}},
		{"shards swapped in the root", func(t *testing.T, root *corev1.ConfigMap, _ []corev1.ConfigMap) {
			list := root.Data["shards"]
			first, rest, _ := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(list, "]"), "["), "},")
			second, tail, _ := strings.Cut(rest, "},")
			root.Data["shards"] = "[" + second + "}," + first + "}," + tail + "]"
			update(ctx, t, c, root)
		}, []string{"is corrupt", "out of order or repeat"}},
		{"shard of another environment", func(t *testing.T, _ *corev1.ConfigMap, shards []corev1.ConfigMap) {
			shards[0].Labels[labels.InventoryOf] = "other"
			update(ctx, t, c, &shards[0])
		}, []string{"is corrupt", `labelled strata.dev/inventory-of="other"`}},
		{"decompression bomb", func(t *testing.T, root *corev1.ConfigMap, shards []corev1.ConfigMap) {
			raw := append(append([]byte("["), bytes.Repeat([]byte(" "), 17<<20)...), ']')
			shards[0].BinaryData["entries.json.gz"] = gzipped(t, raw)
			update(ctx, t, c, &shards[0])
			sum := sha256.Sum256(raw)
			root.Data["shards"] = strings.Replace(root.Data["shards"], shaOf(t, root, shards[0].Name), hex.EncodeToString(sum[:]), 1)
			update(ctx, t, c, root)
		}, []string{"is corrupt", "exceed 16777216 bytes decompressed"}},
		{"format of a newer strata", func(t *testing.T, root *corev1.ConfigMap, _ []corev1.ConfigMap) {
			root.Data["format"] = "3"
			update(ctx, t, c, root)
		}, []string{`has format "3"`, "newer", "strata will not prune"}},
		{"count raised", func(t *testing.T, root *corev1.ConfigMap, _ []corev1.ConfigMap) {
			root.Data["count"] = "1001"
			update(ctx, t, c, root)
		}, []string{"is corrupt", "its count says 1001"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fmt.Sprintf("forged-%d", i)
			if err := saveNew(ctx, c, env, refs(1000, 0, "r"), "r"); err != nil {
				t.Fatal(err)
			}
			root := &corev1.ConfigMap{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.InventoryName(env)}, root); err != nil {
				t.Fatal(err)
			}
			var shards corev1.ConfigMapList
			if err := c.List(ctx, &shards, client.InNamespace(labels.SystemNamespace), client.MatchingLabels{labels.InventoryOf: env}); err != nil {
				t.Fatal(err)
			}
			if len(shards.Items) < 2 {
				t.Fatalf("%d shards: the cases need two", len(shards.Items))
			}
			tt.forge(t, root, shards.Items)
			inv, err := inventory.Load(ctx, c, env)
			if err == nil {
				t.Fatalf("Load of a forged inventory read %d entries, want an error", len(inv.Entries))
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func update(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Update(ctx, obj, client.FieldOwner("intruder")); err != nil {
		t.Fatal(err)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// shaOf is the content hash the root records for shard name.
func shaOf(t *testing.T, root *corev1.ConfigMap, name string) string {
	t.Helper()
	_, after, ok := strings.Cut(root.Data["shards"], `"name":"`+name+`","sha256":"`)
	if !ok || len(after) < 64 {
		t.Fatalf("root does not list %s: %s", name, root.Data["shards"])
	}
	return after[:64]
}
