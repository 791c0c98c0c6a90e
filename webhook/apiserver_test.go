package webhook

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/apiservertest"
)

var update = flag.Bool("update", false, "rewrite testdata/admission/*.json with what a real kube-apiserver (envtest) sends")

// The AdmissionReview fixtures the handler tests decode are what
// kube-apiserver sends: this test drives a real apiserver through every
// scenario, with strata's own registration (Configuration) pointing at a
// recorder, and compares each captured review with its fixture (uids,
// times, resourceVersions and managedFields normalised). A scenario whose
// request never reaches the recorder fails too: the registration would not
// send it to strata either.
func TestAdmissionFixturesAreWhatTheAPIServerSends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver; skipped with -short")
	}
	cfg := startAPIServer(t)
	rec := &recorder{}
	srv := httptest.NewTLSServer(rec)
	t.Cleanup(srv.Close)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, doc := range fixtureSetup {
		if err := c.Create(ctx, obj(t, doc)); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	waitEstablished(t, c)
	ca := pemOf(srv.Certificate().Raw)
	if err := Install(ctx, c, Target{URL: srv.URL}, ca); err != nil {
		t.Fatal(err)
	}
	// The registration takes effect asynchronously: wait until a probe shows.
	waitFor(t, func() bool {
		_ = c.Create(ctx, obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe, namespace: default, generateName: probe-}\n"), client.DryRunAll)
		return rec.find("CREATE", "ConfigMap", "probe") != nil
	})
	for _, sc := range fixtureScenarios {
		t.Run(sc.name, func(t *testing.T) {
			cl := c
			if sc.as != nil {
				ic := rest.CopyConfig(cfg)
				ic.Impersonate = *sc.as
				if cl, err = client.New(ic, client.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := sc.do(ctx, t, cl); err != nil {
				t.Fatalf("%s: %v", sc.name, err)
			}
			body := rec.find(sc.op, sc.kind, sc.objName)
			if body == nil {
				t.Fatalf("no %s %s %s reached the webhook", sc.op, sc.kind, sc.objName)
			}
			got := normalise(t, body)
			path := filepath.Join("testdata", "admission", sc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to capture it)", err)
			}
			var g, w any
			_ = json.Unmarshal(got, &g)
			_ = json.Unmarshal(want, &w)
			if d := cmp.Diff(w, g); d != "" {
				t.Errorf("kube-apiserver sends something else than %s (-fixture +apiserver; -update rewrites it):\n%s", path, d)
			}
		})
	}
}

// recorder admits everything and keeps every AdmissionReview body.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var rv struct {
		APIVersion string `json:"apiVersion"`
		Request    struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	_ = json.Unmarshal(body, &rv)
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": rv.APIVersion, "kind": "AdmissionReview",
		"response": map[string]any{"uid": rv.Request.UID, "allowed": true}})
}

// find returns the last review of op on kind whose object is named name (a
// generateName prefix counts; "*" is any name).
func (r *recorder) find(op, kind, name string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.bodies) - 1; i >= 0; i-- {
		q, err := decodeReview(r.bodies[i])
		if err != nil || q.Request == nil || string(q.Request.Operation) != op || q.Request.Kind.Kind != kind {
			continue
		}
		md, _ := q.Request.Object["metadata"].(map[string]any)
		n, _ := md["name"].(string)
		gn, _ := md["generateName"].(string)
		if name == "*" || n == name || q.Request.Name == name || gn != "" && strings.HasPrefix(gn, name) {
			return r.bodies[i]
		}
	}
	return nil
}

// normalise replaces what changes from run to run and indents.
func normalise(t *testing.T, body []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	req, _ := m["request"].(map[string]any)
	req["uid"] = "705ab4f5-6393-11e8-b7cc-42010a800002"
	ip := false // an IPAddress is named by the (random) address
	if k, _ := req["kind"].(map[string]any); k["kind"] == "IPAddress" {
		ip, req["name"] = true, "10.0.0.10"
	}
	if ui, _ := req["userInfo"].(map[string]any); ui != nil {
		delete(ui, "uid")
		delete(ui, "extra")
	}
	for _, k := range []string{"object", "oldObject"} {
		o, _ := req[k].(map[string]any)
		md, _ := o["metadata"].(map[string]any)
		if md == nil {
			continue
		}
		for f, v := range map[string]string{"uid": "6f2d7b59-1f0b-4c61-9a1f-3c1c0f3b1a00", "creationTimestamp": "2026-12-04T10:00:00Z",
			"resourceVersion": "1000", "deletionTimestamp": "2026-12-04T10:05:00Z"} {
			if _, ok := md[f]; ok {
				md[f] = v
			}
		}
		if ip {
			md["name"] = "10.0.0.10"
		}
		if n, _ := md["name"].(string); n != "" && md["generateName"] != nil {
			md["name"] = md["generateName"].(string) + "abcde"
		}
		if st, _ := o["status"].(map[string]any); st != nil && st["lastPhaseTransitionTime"] != nil {
			st["lastPhaseTransitionTime"] = "2026-12-04T10:00:00Z"
		}
		mf, _ := md["managedFields"].([]any)
		for _, e := range mf {
			if e, ok := e.(map[string]any); ok && e["time"] != nil {
				e["time"] = "2026-12-04T10:00:00Z"
			}
		}
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	_, cfg := apiservertest.Start(t)
	return cfg
}

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("%v:\n%s", err, doc)
	}
	return u
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func waitEstablished(t *testing.T, c client.Client) {
	t.Helper()
	for _, kind := range []string{"Event", "Lease"} {
		waitFor(t, func() bool {
			l := &unstructured.UnstructuredList{}
			l.SetAPIVersion(testGroup + "/v1")
			l.SetKind(kind + "List")
			return c.List(context.Background(), l) == nil
		})
	}
}
