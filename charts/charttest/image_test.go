package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// testDigest is a well-formed digest; the chart never resolves it.
const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestImageReference checks the image of both Deployments: the chart's
// appVersion when values leave the tag empty (what `make image` pushes for a
// release tag v<appVersion>), a tag when given, and repository@digest when a
// digest pins it, whatever the tag.
func TestImageReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml has no appVersion: %v", err)
	}
	const repo = "ghcr.io/strata-gitops/strata"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"appVersion by default", nil, repo + ":" + chart.AppVersion},
		{"tag", []string{"--set", "image.tag=1.2.3-rc.1"}, repo + ":1.2.3-rc.1"},
		{"digest", []string{"--set", "image.digest=" + testDigest}, repo + "@" + testDigest},
		{"digest wins over tag", []string{"--set", "image.tag=1.2.3", "--set", "image.digest=" + testDigest}, repo + "@" + testDigest},
		{"own registry, pinned", []string{"--set", "image.repository=registry.example.com:5000/platform/strata", "--set", "image.digest=" + testDigest},
			"registry.example.com:5000/platform/strata@" + testDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, objs := mustRender(t, rendering{name: tc.name, args: tc.args})
			got := map[string]string{}
			for _, o := range objs {
				if o.GetKind() == "Deployment" {
					for _, c := range containers(t, o) {
						got[o.GetName()+"/"+c.name] = c.image
					}
				}
			}
			want := map[string]string{"strata-reconciler/reconciler": tc.want, "strata-webhook/webhook": tc.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
		})
	}
}

// TestImageDigestSchema checks that values.schema.json takes only a full
// sha256 digest, so that a tag put in image.digest fails the install.
func TestImageDigestSchema(t *testing.T) {
	for _, bad := range []string{"latest", "sha256:0123", "sha256:" + strings.Repeat("A", 64), "sha512:" + strings.Repeat("a", 64)} {
		t.Run(bad, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, "--set", "image.digest="+bad)
			if err == nil {
				t.Fatalf("image.digest=%s rendered; want a schema error\n%.300s", bad, out)
			}
			if !strings.Contains(err.Error(), "/image/digest") {
				t.Errorf("error does not name /image/digest:\n%v", err)
			}
		})
	}
}

type container struct{ name, image string }

// containers returns the name and image of a Deployment's containers.
func containers(t *testing.T, o *unstructured.Unstructured) []container {
	t.Helper()
	cs, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if err != nil || len(cs) == 0 {
		t.Fatalf("Deployment %s: no containers: %v", o.GetName(), err)
	}
	var out []container
	for _, c := range cs {
		m, _ := c.(map[string]any)
		name, _ := m["name"].(string)
		image, _ := m["image"].(string)
		out = append(out, container{name, image})
	}
	return out
}
