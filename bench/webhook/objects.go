package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

type object = map[string]any

// benchNamespaces are the demo's Namespaces and their sensitivity floors;
// the webhook reads them from the cluster through its informer.
var benchNamespaces = []struct{ name, sensitivity string }{
	{"ledger", "restricted"},
	{"fraud", "confidential"},
	{"ml-training", "public"},
	{"risk", "internal"},
	// features holds feature-pipeline (internal), whose requests are in the
	// mix; without its Namespace every one of them would make the webhook
	// GET the missing Namespace from the apiserver.
	{"features", "internal"},
}

// namespaceLabels are the labels a benchmark Namespace carries in the cluster.
func namespaceLabels(name, sensitivity string) map[string]string {
	return map[string]string{
		"strata.dev/sensitivity":      sensitivity,
		"app.kubernetes.io/part-of":   "finance-ai",
		"kubernetes.io/metadata.name": name,
	}
}

// renderOverlay builds overlays/prod of the module root with kustomize
// (krusty on the real filesystem) and returns its objects by "Kind/ns/name".
func renderOverlay(root string) (map[string]object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, "overlays", "prod"))
	if err != nil {
		return nil, fmt.Errorf("rendering overlays/prod: %w", err)
	}
	out := map[string]object{}
	for _, res := range rm.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			return nil, err
		}
		var o object
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, err
		}
		out[objKey(o)] = o
	}
	return out, nil
}

func objKey(o object) string {
	md, _ := o["metadata"].(map[string]any)
	kind, _ := o["kind"].(string)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return kind + "/" + ns + "/" + name
}

// benchCase is one kind of request in the mix.
type benchCase struct {
	name        string // e.g. "UPDATE Deployment fraud/fraud-scoring (replicas 3→6)"
	op          admissionv1.Operation
	gvk         schema.GroupVersionKind
	gvr         schema.GroupVersionResource
	namespace   string
	objName     string
	obj, old    object // as the apiserver sends them (defaulted by a dry run)
	user        authenticationv1.UserInfo
	wantAllowed bool
	wantMsg     string // substring of the denial message
	weight      int    // percent of the mix
	objBytes    int    // size of one body
}

// caseSpec describes a case in terms of the rendered overlay.
type caseSpec struct {
	weight  int
	op      admissionv1.Operation
	from    string // rendered object key
	what    string // what the change does, for the case name
	rename  string // new metadata.name (CREATE of a variant)
	edit    func(o object)
	allowed bool
	want    string // substring of the denial message
	human   bool   // sent by a person with kubectl rather than by strata
}

// Denial message fragments, one per rule the mix exercises.
const (
	wantTier   = "is in tier private-cloud"
	wantLimits = "policy resource-limits"
	wantLB     = "policy no-loadbalancer-for-confidential"
)

// specs is the mix: 70 % allowed (features, risk and fraud are internal or
// confidential, ml-training is public: all allowed in private-cloud), 30 %
// denied (the restricted ledger by tier, missing limits by policy, a
// LoadBalancer for confidential data by policy). Weights are percent.
var specs = []caseSpec{
	{weight: 10, op: admissionv1.Create, from: "Deployment/features/feature-pipeline", allowed: true},
	{weight: 6, op: admissionv1.Create, from: "Deployment/risk/risk-dashboard", allowed: true},
	{weight: 8, op: admissionv1.Create, from: "Deployment/fraud/fraud-scoring", allowed: true},
	{weight: 10, op: admissionv1.Update, from: "Deployment/fraud/fraud-scoring", what: "month-end scale-up, replicas 3→6", allowed: true,
		edit: func(o object) { o["spec"].(map[string]any)["replicas"] = 6 }},
	{weight: 6, op: admissionv1.Update, from: "Deployment/features/feature-pipeline", what: "image 1.11.4→1.11.5", allowed: true,
		edit: func(o object) { setImageTag(o, "1.11.5") }},
	{weight: 4, op: admissionv1.Create, from: "Service/features/feature-pipeline", allowed: true},
	{weight: 4, op: admissionv1.Create, from: "Service/risk/risk-dashboard", allowed: true},
	{weight: 4, op: admissionv1.Create, from: "Service/fraud/fraud-scoring", allowed: true},
	{weight: 3, op: admissionv1.Create, from: "ConfigMap/features/feature-pipeline-config", allowed: true},
	{weight: 3, op: admissionv1.Create, from: "ConfigMap/risk/risk-dashboard-config", allowed: true},
	{weight: 3, op: admissionv1.Create, from: "ConfigMap/fraud/fraud-scoring-config", allowed: true},
	{weight: 4, op: admissionv1.Update, from: "ConfigMap/risk/risk-dashboard-config", what: "one data key changed", allowed: true,
		edit: func(o object) {
			d, _ := o["data"].(map[string]any)
			if d == nil {
				d = map[string]any{}
				o["data"] = d
			}
			d["REFRESH_INTERVAL"] = "45s"
		}},
	{weight: 3, op: admissionv1.Create, from: "CronJob/ml-training/model-training", allowed: true},
	{weight: 2, op: admissionv1.Create, from: "NetworkPolicy/fraud/allow-fraud-scoring", allowed: true},

	{weight: 6, op: admissionv1.Create, from: "Deployment/ledger/ledger", want: wantTier, human: true},
	{weight: 4, op: admissionv1.Update, from: "StatefulSet/ledger/ledger-db", what: "image 16.4→16.5", want: wantTier,
		edit: func(o object) { setImageTag(o, "16.5") }},
	{weight: 3, op: admissionv1.Create, from: "ConfigMap/ledger/ledger-config", want: wantTier, human: true},
	{weight: 5, op: admissionv1.Create, from: "Deployment/features/feature-pipeline", rename: "feature-backfill", what: "no resources.limits", want: wantLimits, human: true,
		edit: dropLimits},
	{weight: 4, op: admissionv1.Update, from: "Deployment/risk/risk-dashboard", what: "resources.limits removed", want: wantLimits,
		edit: dropLimits},
	{weight: 4, op: admissionv1.Create, from: "Service/fraud/fraud-scoring", rename: "fraud-scoring-public", what: "type LoadBalancer", want: wantLB, human: true,
		edit: func(o object) { o["spec"].(map[string]any)["type"] = "LoadBalancer" }},
	{weight: 4, op: admissionv1.Update, from: "Service/fraud/fraud-scoring", what: "ClusterIP→LoadBalancer", want: wantLB, human: true,
		edit: func(o object) { o["spec"].(map[string]any)["type"] = "LoadBalancer" }},
}

var gvrs = map[string]schema.GroupVersionResource{
	"Deployment":    {Group: "apps", Version: "v1", Resource: "deployments"},
	"StatefulSet":   {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"Service":       {Version: "v1", Resource: "services"},
	"ConfigMap":     {Version: "v1", Resource: "configmaps"},
	"CronJob":       {Group: "batch", Version: "v1", Resource: "cronjobs"},
	"NetworkPolicy": {Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
}

var (
	strataUser = authenticationv1.UserInfo{
		Username: "system:serviceaccount:strata-system:strata", UID: "6f1c2a4e-0d3b-4c55-9a57-2b0f3c9d8e71",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:strata-system", "system:authenticated"},
	}
	humanUser = authenticationv1.UserInfo{
		Username: "dana@finance.example", UID: "b2d5e0f4-8a61-4f0e-93c2-7d4a1e6b5c08",
		Groups: []string{"finance-ai:developers", "system:authenticated"},
	}
)

func podTemplateSpec(o object) map[string]any {
	spec, _ := o["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	ps, _ := tmpl["spec"].(map[string]any)
	return ps
}

func setImageTag(o object, tag string) {
	for _, c := range podTemplateSpec(o)["containers"].([]any) {
		cm := c.(map[string]any)
		img := cm["image"].(string)
		if i := strings.LastIndex(img, ":"); i > 0 {
			img = img[:i]
		}
		cm["image"] = img + ":" + tag
	}
}

func dropLimits(o object) {
	for _, c := range podTemplateSpec(o)["containers"].([]any) {
		if res, ok := c.(map[string]any)["resources"].(map[string]any); ok {
			delete(res, "limits")
		}
	}
}

// deepCopy copies a JSON object.
func deepCopy(o object) object {
	data, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	var out object
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// buildCases turns the specs into requests with objects as the apiserver
// would send them: each object goes through a server-side-apply dry run
// (field manager strata), which defaults it and sets uid,
// creationTimestamp and managedFields. For an UPDATE the old object gets a
// resourceVersion, a generation and a status, and the new one keeps the
// old's identity.
func buildCases(ctx context.Context, dyn dynamic.Interface, rendered map[string]object) ([]*benchCase, error) {
	total := 0
	var cases []*benchCase
	for _, s := range specs {
		total += s.weight
		base, ok := rendered[s.from]
		if !ok {
			return nil, fmt.Errorf("overlays/prod renders no %s (the mix needs it)", s.from)
		}
		kind := base["kind"].(string)
		gvr, ok := gvrs[kind]
		if !ok {
			return nil, fmt.Errorf("no resource known for kind %s", kind)
		}
		gv, err := schema.ParseGroupVersion(base["apiVersion"].(string))
		if err != nil {
			return nil, err
		}
		newObj := deepCopy(base)
		if s.rename != "" {
			newObj["metadata"].(map[string]any)["name"] = s.rename
		}
		if s.edit != nil {
			s.edit(newObj)
		}
		md := newObj["metadata"].(map[string]any)
		c := &benchCase{
			op: s.op, gvk: gv.WithKind(kind), gvr: gvr, namespace: md["namespace"].(string), objName: md["name"].(string),
			user: strataUser, wantAllowed: s.allowed, wantMsg: s.want, weight: s.weight,
		}
		if s.human {
			c.user = humanUser
		}
		c.name = fmt.Sprintf("%s %s %s/%s", s.op, kind, c.namespace, c.objName)
		if s.what != "" {
			c.name += " (" + s.what + ")"
		}
		if c.obj, err = dryRunApply(ctx, dyn, gvr, newObj); err != nil {
			return nil, err
		}
		if s.op == admissionv1.Update {
			if c.old, err = dryRunApply(ctx, dyn, gvr, deepCopy(base)); err != nil {
				return nil, err
			}
			makeUpdate(c.old, c.obj)
		}
		cases = append(cases, c)
	}
	if total != 100 {
		return nil, fmt.Errorf("the mix's weights add up to %d, want 100", total)
	}
	return cases, nil
}

func dryRunApply(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, o object) (object, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	md := o["metadata"].(map[string]any)
	force := true
	u, err := dyn.Resource(gvr).Namespace(md["namespace"].(string)).Patch(ctx, md["name"].(string), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: "strata", Force: &force, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("server-side apply dry run of %s: %w", objKey(o), err)
	}
	return u.Object, nil
}

// makeUpdate gives old the marks of a live object and new its identity.
func makeUpdate(old, new object) {
	omd, nmd := old["metadata"].(map[string]any), new["metadata"].(map[string]any)
	omd["resourceVersion"] = "48213"
	nmd["resourceVersion"] = "48213"
	for _, k := range []string{"uid", "creationTimestamp"} {
		if v, ok := omd[k]; ok {
			nmd[k] = v
		}
	}
	switch old["kind"] {
	case "Deployment", "StatefulSet":
		omd["generation"] = int64(7)
		nmd["generation"] = int64(8)
		replicas := old["spec"].(map[string]any)["replicas"]
		status := map[string]any{
			"observedGeneration": int64(7), "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
			"updatedReplicas": replicas,
		}
		if old["kind"] == "Deployment" {
			status["conditions"] = []any{
				map[string]any{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
					"lastTransitionTime": "2026-11-20T08:14:03Z", "lastUpdateTime": "2026-11-20T08:14:03Z"},
				map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed.",
					"lastTransitionTime": "2026-11-19T10:02:41Z", "lastUpdateTime": "2026-11-20T08:14:03Z"},
			}
		} else {
			status["currentReplicas"] = replicas
			status["currentRevision"] = "ledger-db-7c9f6d5b8"
			status["updateRevision"] = "ledger-db-7c9f6d5b8"
			status["collisionCount"] = int64(0)
			status["availableReplicas"] = replicas
		}
		old["status"] = status
		new["status"] = deepCopy(object{"s": status})["s"]
	case "Service":
		// The apiserver allocated a cluster IP when it was created.
		for _, o := range []object{old, new} {
			spec := o["spec"].(map[string]any)
			spec["clusterIP"] = "10.96.41.17"
			spec["clusterIPs"] = []any{"10.96.41.17"}
		}
	}
}

// body is one prepared AdmissionReview.
type body struct {
	uid   string
	data  []byte
	bcase *benchCase
}

// buildPool makes n bodies, each case in proportion to its weight, each
// with its own request uid, shuffled with seed.
func buildPool(cases []*benchCase, n int, seed int64) ([]*body, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	var pool []*body
	// Largest-remainder apportionment of n over the weights.
	counts := make([]int, len(cases))
	rems := make([]int, len(cases))
	left := n
	for i, c := range cases {
		counts[i] = n * c.weight / 100
		rems[i] = n * c.weight % 100
		left -= counts[i]
	}
	order := make([]int, len(cases))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rems[b] - rems[a] })
	for i := 0; left > 0; i, left = i+1, left-1 {
		counts[order[i%len(order)]]++
	}
	for i, c := range cases {
		for range counts[i] {
			uid := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, 0x4000|rng.Uint32()&0x0fff, 0x8000|rng.Uint32()&0x3fff, rng.Uint64()&0xffffffffffff)
			data, err := reviewBody(c, uid)
			if err != nil {
				return nil, err
			}
			c.objBytes = len(data)
			pool = append(pool, &body{uid: uid, data: data, bcase: c})
		}
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	return pool, nil
}

// reviewBody is the AdmissionReview v1 the kube-apiserver sends for c.
func reviewBody(c *benchCase, uid string) ([]byte, error) {
	obj, err := json.Marshal(c.obj)
	if err != nil {
		return nil, err
	}
	kind := metav1.GroupVersionKind{Group: c.gvk.Group, Version: c.gvk.Version, Kind: c.gvk.Kind}
	res := metav1.GroupVersionResource{Group: c.gvr.Group, Version: c.gvr.Version, Resource: c.gvr.Resource}
	dry := false
	optKind := "CreateOptions"
	if c.op == admissionv1.Update {
		optKind = "UpdateOptions"
	}
	opts, _ := json.Marshal(map[string]any{"apiVersion": "meta.k8s.io/v1", "kind": optKind, "fieldManager": "strata"})
	req := &admissionv1.AdmissionRequest{
		UID: types.UID(uid), Kind: kind, Resource: res, RequestKind: &kind, RequestResource: &res,
		Name: c.objName, Namespace: c.namespace, Operation: c.op, UserInfo: c.user,
		Object: runtime.RawExtension{Raw: obj}, DryRun: &dry, Options: runtime.RawExtension{Raw: opts},
	}
	if c.old != nil {
		old, err := json.Marshal(c.old)
		if err != nil {
			return nil, err
		}
		req.OldObject = runtime.RawExtension{Raw: old}
	}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req,
	})
}
