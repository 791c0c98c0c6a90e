// Command statusdemo serves the strata status page (internal/statuspage)
// with fixed demo data, for screenshots and for looking at the page
// without clusters: prod has a revision that failed its health check in
// the private cloud (the page shows the rollback command), staging waits
// for a second approval of a restricted change, dev is healthy, and the
// on-call engineer used break-glass on-prem.
//
//	go run ./hack/statusdemo -addr 127.0.0.1:8099
//
// hack/screenshot-status.sh runs it and takes docs/status-page.png.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/statuspage"
	"github.com/strata-gitops/strata/reconciler"
)

const (
	prodGood = "d1cf1d9894f0a7c3e5b2d4f6a8c0e2b4d6f8a0c2"
	prodBad  = "3f2a9c1d0e4b6a8c0e2f4b6d8a0c2e4f6b8d0a2c"
	stgRev   = "8b41e07c52aa93d1f0e6c7b5a4d3e2f1a0b9c8d7"
	stgNext  = "a94d3e1f07b2c6d5e4f3a2b1c0d9e8f7a6b5c4d3"
	devRev   = "e7f0c2d4b6a8091a2b3c4d5e6f708192a3b4c5d6"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "address to serve the page on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := statuspage.New(statuspage.SourceFunc(func(context.Context) (*statuspage.Snapshot, error) {
		return demo(time.Now().UTC()), nil
	}), statuspage.Options{KubeconfigDir: "/home/oncall/.strata/clusters"})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Printf("status page demo: http://%s/\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func ready(ok bool, reason string) []metav1.Condition {
	s := metav1.ConditionTrue
	if !ok {
		s = metav1.ConditionFalse
	}
	return []metav1.Condition{{Type: "Ready", Status: s, Reason: reason}}
}

func applied(rev string, outcome string, at time.Time, approvers ...string) inventory.Applied {
	return inventory.Applied{Revision: rev, Outcome: outcome, Time: at, Approvers: approvers}
}

// demo is the fixed story, with times relative to now.
func demo(now time.Time) *statuspage.Snapshot {
	ago := func(d time.Duration) time.Time { return now.Add(-d).Truncate(time.Second) }
	ok := inventory.ReasonSucceeded
	prodHistory := []inventory.Applied{applied(prodBad, ok, ago(6*time.Minute), "alice"), applied(prodGood, ok, ago(26*time.Hour), "alice", "bob")}
	gate := (&reconciler.GateError{Environment: "staging", Revision: stgNext, Decision: approval.Decision{
		Message: "restricted change needs 2 approvals, has 1: alice"}}).Error()
	stg := func(objects int) inventory.Status {
		return inventory.Status{Revision: stgRev, Objects: objects, Healthy: objects, LastReconcile: ago(9 * time.Second),
			LastError: gate, Conditions: ready(false, "ReconciliationFailed"),
			History: []inventory.Applied{applied(stgRev, ok, ago(3*time.Hour), "bob")}}
	}
	dev := func(objects int) inventory.Status {
		return inventory.Status{Revision: devRev, Objects: objects, Healthy: objects, LastReconcile: ago(14 * time.Second),
			Conditions: ready(true, ok), History: []inventory.Applied{applied(devRev, ok, ago(40*time.Minute))}}
	}
	return &statuspage.Snapshot{
		Time: now,
		Environments: []statuspage.Environment{
			{Name: "prod", Clusters: []statuspage.Cluster{
				{Name: "public", Tier: "public-cloud", Reachable: true, Reconciled: true, Status: inventory.Status{
					Revision: prodBad, Objects: 6, Healthy: 6, Drifted: 1, DriftTotal: 3, LastReconcile: ago(11 * time.Second),
					Windows: []string{"month-end"}, Conditions: ready(true, ok), History: prodHistory}},
				{Name: "private", Tier: "private-cloud", Reachable: true, Reconciled: true, Status: inventory.Status{
					Revision: prodGood, Objects: 18, Healthy: 17, Failed: 1, DriftTotal: 1, LastReconcile: ago(12 * time.Second),
					Windows: []string{"month-end"}, Conditions: ready(false, inventory.ReasonHealthFailed),
					LastError: "cluster private: health check failed: failed early due to stalled resources: [Deployment/fraud/fraud-scoring status: 'Failed']: " +
						"objects that moved here stay in their old cluster until they are healthy; fix or revert the commit",
					History: append([]inventory.Applied{applied(prodBad, inventory.ReasonHealthFailed, ago(6*time.Minute), "alice")}, prodHistory[1:]...)}},
				{Name: "onprem", Tier: "on-prem", Reachable: true, Reconciled: true, Status: inventory.Status{
					Revision: prodBad, Objects: 11, Healthy: 11, LastReconcile: ago(12 * time.Second),
					Windows: []string{"month-end"}, Conditions: ready(true, ok), History: prodHistory}},
			}},
			{Name: "staging", Clusters: []statuspage.Cluster{
				{Name: "stg-public", Tier: "public-cloud", Reachable: true, Reconciled: true, Status: stg(6)},
				{Name: "stg-private", Tier: "private-cloud", Reachable: true, Reconciled: true, Status: stg(18)},
				{Name: "stg-onprem", Tier: "on-prem", Reachable: true, Reconciled: true, Status: stg(11)},
			}},
			{Name: "dev", Clusters: []statuspage.Cluster{
				{Name: "dev-cloud", Tier: "public-cloud", Reachable: true, Reconciled: true, Status: dev(6)},
				{Name: "dev-onprem", Tier: "on-prem", Reachable: true, Reconciled: true, Status: dev(29)},
			}},
		},
		BreakGlass: []statuspage.BreakGlass{
			{Time: ago(14 * time.Minute), Cluster: "onprem", User: "carol", Reason: "INC-4711: ledger-db connection limit hotfix", Count: 1,
				Message: `break-glass by carol (groups [platform-oncall]) on UPDATE StatefulSet ledger/ledger-db in cluster onprem (on-prem): "INC-4711: ledger-db connection limit hotfix"; bypassed [resource-limits]`},
			{Time: ago(26 * time.Hour), Cluster: "stg-public", User: "dave", Reason: "load test CHG-2291", Count: 3,
				Message: `break-glass by dave (groups [platform-oncall]) on CREATE Deployment risk/loadgen in cluster stg-public (public-cloud): "load test CHG-2291"; bypassed [sensitivity]`},
		},
		Subjects: map[string]string{
			prodGood: "Scale fraud-scoring for month-end",
			prodBad:  "fraud-scoring: switch to model v7 image",
			stgRev:   "Rotate ledger-db TLS certificates",
			stgNext:  "audit-trail: retain records for 10 years",
			devRev:   "risk-dashboard: add feature flags",
		},
	}
}
