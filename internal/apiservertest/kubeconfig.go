package apiservertest

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig is a kubeconfig for cfg (an apiserver's admin). With dir set,
// its certificates and key are files in dir that it names, as kubeconfigs
// written by kubeadm or cloud CLIs often do (rewritten with ReplaceFile).
func Kubeconfig(t testing.TB, cfg *rest.Config, dir string) []byte {
	t.Helper()
	cluster := &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	user := &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	if dir != "" {
		files := map[string][]byte{"ca.crt": cfg.CAData, "client.crt": cfg.CertData, "client.key": cfg.KeyData}
		for name, data := range files {
			ReplaceFile(t, filepath.Join(dir, name), data)
		}
		cluster = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthority: filepath.Join(dir, "ca.crt")}
		user = &clientcmdapi.AuthInfo{ClientCertificate: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key")}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"], kc.AuthInfos["u"] = cluster, user
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ReplaceFile writes path the way the kubelet updates a mounted Secret: a
// new file renamed over the old one.
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}
