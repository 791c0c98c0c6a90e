package reconciler

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/leaderelection"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// Two replicas share a lease: only one runs the loop; when the leader
// stops, the other takes over.
func TestLeaderElectionRunsOneReplica(t *testing.T) {
	cfg := startClusters(t)["public"]
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: labels.SystemNamespace}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running := map[int]bool{}
	var started []int
	maxRunning := 0
	loopOf := func(id int) func(context.Context) error {
		return func(ctx context.Context) error {
			mu.Lock()
			running[id] = true
			started = append(started, id)
			maxRunning = max(maxRunning, len(running))
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			delete(running, id)
			mu.Unlock()
			return nil
		}
	}
	snapshot := func() (int, []int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(running), append([]int(nil), started...), maxRunning
	}
	opts := ElectionOptions{ID: LeaseID("election-test"), MetricsAddr: "0", Log: logr.Discard(),
		Election: leaderelection.Options{Enable: true, ReleaseOnCancel: true,
			LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 300 * time.Millisecond}}
	stops := make([]context.CancelFunc, 2)
	var wg sync.WaitGroup
	for id := range 2 {
		ctx, stop := context.WithCancel(context.Background())
		stops[id] = stop
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := RunElected(ctx, cfg, opts, loopOf(id)); err != nil {
				t.Errorf("replica %d: %v", id, err)
			}
		}()
	}
	defer func() {
		for _, s := range stops {
			s()
		}
		wg.Wait()
	}()

	waitFor(t, 20*time.Second, func() bool { n, _, _ := snapshot(); return n == 1 })
	time.Sleep(3 * time.Second) // longer than a lease: the other replica must still wait
	n, started, most := snapshot()
	if n != 1 || len(started) != 1 || most != 1 {
		t.Fatalf("running %d, started %v, at most %d at once; want exactly one leader", n, started, most)
	}
	leader := started[0]
	stops[leader]()
	waitFor(t, 20*time.Second, func() bool { _, s, _ := snapshot(); return len(s) == 2 })
	_, started, most = snapshot()
	if started[1] == leader || most != 1 {
		t.Errorf("after the leader stopped: started %v, at most %d at once", started, most)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
