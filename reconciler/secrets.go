package reconciler

import (
	"context"
	"fmt"
	"sync"

	runtimeclient "github.com/fluxcd/pkg/runtime/client"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/labels"
)

// SecretConnector connects to clusters with kubeconfigs kept in Secrets
// strata-cluster-<name> (key "kubeconfig") in strata-system of the cluster
// strata runs in, so credentials never live in git.
type SecretConnector struct {
	Home client.Reader
	// Client are the client options (--kube-api-qps, --kube-api-burst);
	// zero uses DefaultClientOptions.
	Client runtimeclient.Options
	mu     sync.Mutex
	cs     map[string]*Cluster
}

// Connect implements Connector.
func (s *SecretConnector) Connect(name string) (*Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cs[name]; ok {
		return c, nil
	}
	sec := &corev1.Secret{}
	key := client.ObjectKey{Namespace: labels.SystemNamespace, Name: labels.ClusterSecretName(name)}
	if err := s.Home.Get(context.Background(), key, sec); err != nil {
		return nil, fmt.Errorf("no credentials for cluster %s: reading Secret %s: %w; create it with the cluster's kubeconfig under the key \"kubeconfig\"", name, key, err)
	}
	data := sec.Data["kubeconfig"]
	if len(data) == 0 {
		return nil, fmt.Errorf("Secret %s has no \"kubeconfig\" key: store the cluster's kubeconfig under it", key)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("Secret %s: invalid kubeconfig: %w", key, err)
	}
	c, err := NewClusterWithOptions(name, cfg, s.Client)
	if err != nil {
		return nil, err
	}
	if s.cs == nil {
		s.cs = map[string]*Cluster{}
	}
	s.cs[name] = c
	return c, nil
}
