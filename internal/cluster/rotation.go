package cluster

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// connections keeps one connection per cluster together with a digest of
// the kubeconfig it was made from. Connectors read the credentials at every
// Connect, so a rewritten kubeconfig file or Secret (a rotated token or
// certificate, a moved apiserver) gives a new connection at the next
// reconcile, without a restart.
type connections struct {
	mu sync.Mutex
	cs map[string]*connection
}

type connection struct {
	cl  *Cluster
	sum [sha256.Size]byte
}

// get returns name's connection made from kubeconfig, making one with
// connect when there is none from these exact credentials. The connection
// it replaces is closed in the background: a reconcile still holding it
// finishes with it (only its events stop), and its event sink may be
// retrying against an apiserver that is gone.
func (cc *connections) get(name string, kubeconfig []byte, connect func() (*Cluster, error)) (*Cluster, error) {
	sum := sha256.Sum256(kubeconfig)
	cc.mu.Lock()
	if cur, ok := cc.cs[name]; ok && cur.sum == sum {
		cc.mu.Unlock()
		return cur.cl, nil
	}
	cc.mu.Unlock()
	// Connected outside the lock: a cluster that does not answer must not
	// hold up connections to the others.
	cl, err := connect()
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cur, ok := cc.cs[name]; ok {
		if cur.sum == sum { // another Connect made the same one meanwhile
			go cl.Close()
			return cur.cl, nil
		}
		go cur.cl.Close()
	}
	if cc.cs == nil {
		cc.cs = map[string]*connection{}
	}
	cc.cs[name] = &connection{cl: cl, sum: sum}
	return cl, nil
}

// cached returns name's current connection, if any.
func (cc *connections) cached(name string) (*Cluster, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cur, ok := cc.cs[name]
	if !ok {
		return nil, false
	}
	return cur.cl, true
}

// drop closes and forgets name's connection: its credentials were removed,
// and a revoked credential must not stay in use.
func (cc *connections) drop(name string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cur, ok := cc.cs[name]; ok {
		go cur.cl.Close()
		delete(cc.cs, name)
	}
}

// closeAll closes every connection.
func (cc *connections) closeAll() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for name, cur := range cc.cs {
		cur.cl.Close()
		delete(cc.cs, name)
	}
}

// flatten inlines the certificate and key files a kubeconfig names and
// returns it serialized (its digest changes when one of those files is
// rotated too) with the rest.Config it describes. Token files are re-read by
// client-go itself.
func flatten(cfg *clientcmdapi.Config) ([]byte, *rest.Config, error) {
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, nil, fmt.Errorf("reading the files it names: %w", err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, nil, err
	}
	return data, rc, nil
}
