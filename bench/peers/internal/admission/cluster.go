package admission

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/waitfor"
	"github.com/strata-gitops/strata/webhook"
)

// cluster is the one kwok cluster the scenarios use.
type cluster struct {
	rc *rest.Config
	c  client.Client
}

func newCluster(kubeconfig string) (*cluster, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// The e2e latency loop must not wait for client-side throttling.
	rc.QPS, rc.Burst = 200, 400
	c, err := client.New(rc, client.Options{})
	if err != nil {
		return nil, err
	}
	return &cluster{rc: rc, c: c}, nil
}

// createOrUpdate creates obj, or updates it when it exists (a rerun on the
// same cluster).
func (k *cluster) createOrUpdate(ctx context.Context, obj *unstructured.Unstructured) error {
	obj = obj.DeepCopy()
	err := k.c.Create(ctx, obj)
	if apierrors.IsAlreadyExists(err) {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(obj.GroupVersionKind())
		if err := k.c.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
			return err
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		err = k.c.Update(ctx, obj)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return nil
}

// ensureNamespaces creates the corpus's Namespaces with their labels and
// waits for their default ServiceAccount: Pods are refused without it.
func (k *cluster) ensureNamespaces(ctx context.Context, nss map[string]map[string]string) error {
	for name, labels := range nss {
		ns := &corev1.Namespace{}
		err := k.c.Get(ctx, client.ObjectKey{Name: name}, ns)
		switch {
		case apierrors.IsNotFound(err):
			ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
			err = k.c.Create(ctx, ns)
		case err == nil:
			if ns.Labels == nil {
				ns.Labels = map[string]string{}
			}
			for key, v := range labels {
				ns.Labels[key] = v
			}
			err = k.c.Update(ctx, ns)
		}
		if err != nil {
			return fmt.Errorf("Namespace %s: %w", name, err)
		}
	}
	for name := range nss {
		err := poll(ctx, 60*time.Second, func() (bool, error) {
			err := k.c.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, &corev1.ServiceAccount{})
			return err == nil, client.IgnoreNotFound(err)
		})
		if err != nil {
			return fmt.Errorf("default ServiceAccount of Namespace %s: %w", name, err)
		}
	}
	return nil
}

// dryRunCreate sends obj through admission (dry run) and returns the
// object as the apiserver would store it, or the admission error.
func (k *cluster) dryRunCreate(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	o := obj.DeepCopy()
	err := k.c.Create(ctx, o, client.DryRunAll)
	return o, err
}

// deleteWebhookConfigs removes strata's registration and every Kyverno
// webhook configuration (Kyverno names them kyverno-*): with Kyverno
// stopped, its fail-closed webhooks would refuse every matching request.
func (k *cluster) deleteWebhookConfigs(ctx context.Context, kyverno, strata bool) error {
	var vl admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := k.c.List(ctx, &vl); err != nil {
		return err
	}
	for i := range vl.Items {
		n := vl.Items[i].Name
		if (kyverno && strings.HasPrefix(n, "kyverno-")) || (strata && n == webhook.ConfigurationName) {
			if err := client.IgnoreNotFound(k.c.Delete(ctx, &vl.Items[i])); err != nil {
				return err
			}
		}
	}
	if !kyverno {
		return nil
	}
	var ml admissionregistrationv1.MutatingWebhookConfigurationList
	if err := k.c.List(ctx, &ml); err != nil {
		return err
	}
	for i := range ml.Items {
		if strings.HasPrefix(ml.Items[i].Name, "kyverno-") {
			if err := client.IgnoreNotFound(k.c.Delete(ctx, &ml.Items[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// poll calls done every 250 ms until it is true, returns an error, or
// timeout passes.
func poll(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	return waitfor.Until(ctx, timeout, 250*time.Millisecond, func(context.Context) (bool, error) { return done() })
}

// waitIdle waits (up to max) until the process uses less than 10 % of a
// core over half a second: a server left behind by an overload keeps
// working off its backlog, which would load the machine during the next
// tool's run.
func waitIdle(ctx context.Context, p *childproc.Process, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil && !p.Exited() {
		c0 := p.CPU()
		time.Sleep(500 * time.Millisecond)
		if p.CPU()-c0 < 50*time.Millisecond {
			return
		}
	}
}
