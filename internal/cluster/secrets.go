package cluster

import (
	"context"
	"fmt"
	"time"

	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// SecretConnector connects to clusters with kubeconfigs kept in Secrets
// strata-cluster-<name> (key "kubeconfig") in strata-system of the cluster
// strata runs in, so credentials never live in git. The Secret is read at
// every Connect: a changed kubeconfig gives a new connection, so rotated
// credentials need no restart.
type SecretConnector struct {
	Home client.Reader
	// Client are the client options (--kube-api-qps, --kube-api-burst);
	// zero uses DefaultClientOptions.
	Client runtimeclient.Options
	conns  connections
}

// secretReadTimeout bounds the read of a cluster's Secret, now made at every
// Connect, so that a slow home apiserver cannot hold up a reconcile.
const secretReadTimeout = 10 * time.Second

// Connect implements Connector.
func (s *SecretConnector) Connect(name string) (*Cluster, error) {
	sec := &corev1.Secret{}
	key := client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.ClusterSecretName(name)}
	ctx, cancel := context.WithTimeout(context.Background(), secretReadTimeout)
	defer cancel()
	if err := s.Home.Get(ctx, key, sec); err != nil {
		if !apierrors.IsNotFound(err) {
			// The home apiserver did not answer: keep the credentials read
			// last rather than stop every cluster with it.
			if c, ok := s.conns.cached(name); ok {
				return c, nil
			}
		} else {
			// A deleted Secret is revoked credentials: the connection goes too.
			s.conns.drop(name)
		}
		return nil, fmt.Errorf("no credentials for cluster %s: reading Secret %s: %w; create it with the cluster's kubeconfig under the key \"kubeconfig\"", name, key, err)
	}
	data := sec.Data["kubeconfig"]
	if len(data) == 0 {
		s.conns.drop(name)
		return nil, fmt.Errorf("Secret %s has no \"kubeconfig\" key: store the cluster's kubeconfig under it", key)
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("Secret %s: invalid kubeconfig: %w", key, err)
	}
	flat, cfg, err := flatten(kc)
	if err != nil {
		return nil, fmt.Errorf("Secret %s: invalid kubeconfig: %w", key, err)
	}
	return s.conns.get(name, flat, func() (*Cluster, error) { return NewClusterWithOptions(name, cfg, s.Client) })
}
