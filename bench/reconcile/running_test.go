package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/strata-gitops/strata/reconciler"
)

func TestParseProcStatus(t *testing.T) {
	data, err := os.ReadFile("testdata/proc-status-vmrss-vmhwm.txt")
	if err != nil {
		t.Fatal(err)
	}
	rss, hwm := parseProcStatus(string(data))
	if diff := cmp.Diff([2]int64{131072, 245760}, [2]int64{rss, hwm}); diff != "" {
		t.Errorf("VmRSS, VmHWM (-want +got):\n%s", diff)
	}
	if rss, hwm := parseProcStatus("Name:\tgone\n"); rss != 0 || hwm != 0 {
		t.Errorf("no Vm lines: got %d, %d, want 0, 0", rss, hwm)
	}
}

// TestParseCounters reads the exposition of the reconciler's own metrics,
// so that a renamed metric or label fails here rather than in a
// benchmark that would wait for a counter that never moves.
func TestParseCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := reconciler.NewMetrics(reg)
	m.ReconcileDuration.WithLabelValues("bench", "public").Observe(0.5)
	m.ReconcileDuration.WithLabelValues("bench", "public").Observe(1.5)
	m.ReconcileDuration.WithLabelValues("bench", "onprem").Observe(0.25)
	m.ReconcileDuration.WithLabelValues("other", "public").Observe(9)
	m.ObjectsApplied.WithLabelValues("bench", "public", "created").Add(200)
	m.ObjectsApplied.WithLabelValues("bench", "public", "configured").Add(1)
	m.ObjectsPruned.WithLabelValues("bench", "onprem").Add(3)
	m.DriftCorrected.WithLabelValues("bench", "onprem").Add(2)
	m.ReconcileErrors.WithLabelValues("bench", "onprem", "ApplyFailed").Inc()
	m.ReconcileErrors.WithLabelValues("bench", "onprem", "HealthCheckFailed").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	got, err := parseCounters(&buf, "bench")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]clusterCounters{
		"public": {reconciles: 2, seconds: 2, created: 200, configured: 1},
		"onprem": {reconciles: 1, seconds: 0.25, pruned: 3, drifted: 2, errors: 2},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(clusterCounters{})); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if _, err := parseCounters(strings.NewReader("not { metrics\n"), "bench"); err == nil {
		t.Error("garbage: want an error")
	}
}

func TestCheckStep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		st    runStep
		fails bool
	}{
		{"no-op applies nothing", runStep{kind: stepNoop, delta: clusterCounters{reconciles: 3}}, false},
		{"no-op that configured", runStep{kind: stepNoop, delta: clusterCounters{reconciles: 3, configured: 1}}, true},
		{"start that created", runStep{kind: "start", delta: clusterCounters{reconciles: 3, created: 5}}, true},
		{"change of one object", runStep{kind: stepConfigMap, delta: clusterCounters{reconciles: 3, configured: 1}}, false},
		{"change that applied two", runStep{kind: stepDeployment, delta: clusterCounters{reconciles: 3, configured: 2}}, true},
		{"change applied nowhere", runStep{kind: stepDeployment, delta: clusterCounters{reconciles: 3}}, true},
		{"change with drift corrected", runStep{kind: stepConfigMap, delta: clusterCounters{reconciles: 3, configured: 1, drifted: 1}}, true},
		{"error", runStep{kind: stepNoop, delta: clusterCounters{reconciles: 3, errors: 1}}, true},
	} {
		if err := checkStep(tc.st, nil); (err != nil) != tc.fails {
			t.Errorf("%s: error %v, want failure %v", tc.name, err, tc.fails)
		}
	}
}

func TestStepEditsChangeOneObjectEachTime(t *testing.T) {
	var cms, deps strings.Builder
	for _, name := range []string{"app-0000", "app-0020"} {
		ap := app{name: name, ns: "bench-00", floor: "public"}
		writeConfigMap(&cms, ap, name+"-config")
		writeDeployment(&deps, ap)
	}
	cm, dep := cms.String(), deps.String()
	for i := 1; i <= 3; i++ {
		var err error
		prevCM, prevDep := cm, dep
		if cm, err = setConfigMapValue(cm, i); err != nil {
			t.Fatal(err)
		}
		if dep, err = setPodTemplateAnnotation(dep, i); err != nil {
			t.Fatal(err)
		}
		if cm == prevCM || dep == prevDep {
			t.Fatalf("step %d changed nothing", i)
		}
	}
	wantCM := strings.Replace(cms.String(), "  LOG_LEVEL: info", "  LOG_LEVEL: step-3", 1)
	if diff := cmp.Diff(wantCM, cm); diff != "" {
		t.Errorf("ConfigMaps after three steps (-want +got):\n%s", diff)
	}
	wantDep := strings.Replace(deps.String(), "  template:\n    metadata:\n", "  template:\n    metadata:\n      annotations:\n        bench.example.com/step: \"3\"\n", 1)
	if diff := cmp.Diff(wantDep, dep); diff != "" {
		t.Errorf("Deployments after three steps (-want +got):\n%s", diff)
	}
	if _, err := setConfigMapValue("kind: Deployment\n", 1); err == nil {
		t.Error("no ConfigMap: want an error")
	}
	if _, err := setPodTemplateAnnotation("kind: ConfigMap\n", 1); err == nil {
		t.Error("no pod template: want an error")
	}
}

func TestRunningMarkdown(t *testing.T) {
	r := &report{repo: &Repo{Kinds: map[string]int{"ConfigMap": 10000}}, opts: options{maxOther: 0.3, maxWait: time.Minute}}
	step := func(kind string, wall time.Duration) runStep {
		return runStep{kind: kind, commit: "0123456789abcdef", wall: wall, rssKiB: 100 << 10, hwmKiB: 120 << 10}
	}
	r.running = []runningRep{{
		start: step("start", 4*time.Second),
		steps: []runStep{
			step(stepNoop, 1500*time.Millisecond), step(stepConfigMap, 2*time.Second), step(stepDeployment, 4*time.Second),
			step(stepNoop, 1000*time.Millisecond), step(stepConfigMap, 2500*time.Millisecond), step(stepDeployment, 5*time.Second),
			step(stepNoop, 2500*time.Millisecond), step(stepConfigMap, 3500*time.Millisecond), step(stepDeployment, 6*time.Second),
		},
		peakKiB: 260 << 10,
	}}
	var b strings.Builder
	r.runningMarkdown(&b)
	got := b.String()
	for _, want := range []string{
		"| no-op ≤ 2.00 s | 1.50 s (1.00 s–2.50 s) | PASS |",
		"| one-object change (ConfigMap data) ≤ 3.00 s | 2.50 s (2.00 s–3.50 s) | PASS |",
		"| one-object change (Deployment pod template, rollout) ≤ 3.00 s | 5.00 s (4.00 s–6.00 s) | MISS |",
		"| peak RSS ≤ 250 MiB | 260 MiB",
		"| MISS |\n",
		"Time runs from just before the hook request",
		"| 1 | end of phase | | | | | | | 260 MiB |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("markdown lacks %q:\n%s", want, got)
		}
	}
}
