package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// This file runs a container of a rendered Deployment on this machine the
// way a kubelet would, since kwok's nodes run no containers: the image's
// root file system (extracted from the image internal/image builds), the
// container's command, args and env exactly as rendered ($(VAR) expanded,
// valueFrom resolved against the cluster), every volume at its mountPath
// (emptyDir, ConfigMap and Secret volumes filled from the cluster, and the
// ServiceAccount token volume a kubelet adds, with a token from the
// TokenRequest API), runAsUser/runAsGroup/fsGroup and a read-only root.
// The process gets a mount namespace of its own and is chrooted into the
// image, so its paths are the container's. What is not emulated: the pod
// network (it shares this machine's, so ports come from the chart's values
// and the apiserver is KUBERNETES_SERVICE_HOST=127.0.0.1), /etc/hosts and
// /etc/resolv.conf, probes. It needs root (mount namespaces, chroot, the
// container's user).

// podInitEnv names the spec file of the helper process (TestPodInit).
const podInitEnv = "STRATA_E2E_POD_SPEC"

// saMountPath is where a kubelet mounts a pod's ServiceAccount token.
const saMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// node runs pods of one cluster on this machine.
type node struct {
	cluster string
	rest    *rest.Config
	cs      kubernetes.Interface
	image   *containerImage
}

// start runs the first container of dep's pod template as pod name.
func (n *node) start(t *testing.T, dep *appsv1.Deployment, name string) *pod {
	t.Helper()
	ctx := context.Background()
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 || len(spec.InitContainers) > 0 {
		t.Fatalf("%s: %d containers and %d init containers; the emulation runs exactly one container", dep.Name, len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	ns := dep.Namespace
	dir := t.TempDir()

	sc := spec.SecurityContext
	if sc == nil {
		sc = &corev1.PodSecurityContext{}
	}
	// A root of its own (hard links to the image's files), so that the mount
	// points of one container are not in another's.
	root := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("cp", "-a", "-l", n.image.root, root).CombinedOutput(); err != nil {
		t.Fatalf("%s: copying the image's root: %v: %s", dep.Name, err, out)
	}
	ps := podSpec{Root: root, WorkingDir: c.WorkingDir, Hostname: name}
	ps.UID, ps.GID = int(ptrOr(sc.RunAsUser, -1)), int(ptrOr(sc.RunAsGroup, -1))
	if c.SecurityContext != nil {
		ps.UID, ps.GID = int(ptrOr(c.SecurityContext.RunAsUser, int64(ps.UID))), int(ptrOr(c.SecurityContext.RunAsGroup, int64(ps.GID)))
		ps.ReadOnlyRoot = ptrOr(c.SecurityContext.ReadOnlyRootFilesystem, false)
	}
	if ps.UID < 0 || ps.GID < 0 {
		t.Fatalf("%s: no runAsUser/runAsGroup; the emulation needs both", dep.Name)
	}
	fsGroup := int(ptrOr(sc.FSGroup, -1))
	if fsGroup >= 0 {
		ps.Groups = append(ps.Groups, fsGroup)
	}
	for _, g := range sc.SupplementalGroups {
		ps.Groups = append(ps.Groups, int(g))
	}
	if ps.WorkingDir == "" {
		ps.WorkingDir = n.image.config.WorkingDir
	}

	// Volumes, as the kubelet fills them.
	volumes := map[string]string{}
	for _, v := range spec.Volumes {
		d := filepath.Join(dir, "volumes", v.Name)
		must(t, os.MkdirAll(d, 0o755))
		volumes[v.Name] = d
		switch {
		case v.EmptyDir != nil:
			must(t, os.Chmod(d, 0o777))
		case v.ConfigMap != nil:
			cm, err := n.cs.CoreV1().ConfigMaps(ns).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s: volume %s: %v (the kubelet could not start the pod)", dep.Name, v.Name, err)
			}
			data := map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			project(t, d, data, v.ConfigMap.Items, ptrOr(v.ConfigMap.DefaultMode, 0o644), fsGroup)
		case v.Secret != nil:
			s, err := n.cs.CoreV1().Secrets(ns).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s: volume %s: %v (the kubelet could not start the pod)", dep.Name, v.Name, err)
			}
			project(t, d, s.Data, v.Secret.Items, ptrOr(v.Secret.DefaultMode, 0o644), fsGroup)
		default:
			t.Fatalf("%s: volume %s: only emptyDir, configMap and secret volumes are emulated", dep.Name, v.Name)
		}
	}
	for _, m := range c.VolumeMounts {
		src, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("%s: volumeMount %s names no volume", dep.Name, m.Name)
		}
		ps.Mounts = append(ps.Mounts, podMount{Source: filepath.Join(src, m.SubPath), Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	if n.automount(t, spec, ns) {
		d := filepath.Join(dir, "volumes", "kube-api-access")
		must(t, os.MkdirAll(d, 0o755))
		project(t, d, n.serviceAccountFiles(t, ns, spec.ServiceAccountName), nil, 0o644, fsGroup)
		ps.Mounts = append(ps.Mounts, podMount{Source: d, Target: saMountPath, ReadOnly: true})
	}
	for _, dev := range []string{"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"} {
		ps.Mounts = append(ps.Mounts, podMount{Source: dev, Target: dev})
	}

	// Env: the image's, the apiserver's address (the kubernetes Service's),
	// then the container's in order, each able to use those before it.
	env := &envList{}
	for _, kv := range n.image.config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env.set(k, v)
	}
	host, port := apiserverAddress(t, n.rest.Host)
	env.set("HOSTNAME", name)
	env.set("KUBERNETES_SERVICE_HOST", host)
	env.set("KUBERNETES_SERVICE_PORT", port)
	for _, e := range c.Env {
		v := expand(e.Value, env.lookup)
		if e.ValueFrom != nil {
			v = n.valueFrom(t, dep, c, name, e)
		}
		env.set(e.Name, v)
	}
	if len(c.EnvFrom) > 0 {
		t.Fatalf("%s: envFrom is not emulated", dep.Name)
	}
	ps.Env = env.list()
	cmd := c.Command
	args := c.Args
	if len(cmd) == 0 {
		cmd = n.image.config.Entrypoint
		if len(args) == 0 {
			args = n.image.config.Cmd
		}
	}
	for _, a := range append(append([]string{}, cmd...), args...) {
		ps.Argv = append(ps.Argv, expand(a, env.lookup))
	}
	if len(ps.Argv) == 0 {
		t.Fatalf("%s: nothing to run", dep.Name)
	}

	// Mount points exist in the image's root (runc makes them too).
	for _, m := range append(ps.Mounts, podMount{Target: "/proc"}) {
		target := filepath.Join(ps.Root, m.Target)
		if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
			must(t, os.MkdirAll(filepath.Dir(target), 0o755))
			if _, err := os.Stat(target); err != nil {
				must(t, os.WriteFile(target, nil, 0o644))
			}
			continue
		}
		must(t, os.MkdirAll(target, 0o755))
	}
	return n.run(t, name, dir, ps)
}

// automount says whether the kubelet would mount the ServiceAccount token.
func (n *node) automount(t *testing.T, spec corev1.PodSpec, ns string) bool {
	if spec.AutomountServiceAccountToken != nil {
		return *spec.AutomountServiceAccountToken
	}
	sa, err := n.cs.CoreV1().ServiceAccounts(ns).Get(context.Background(), saName(spec), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ServiceAccount %s/%s: %v (the pod would not be admitted)", ns, saName(spec), err)
	}
	return sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken
}

func saName(spec corev1.PodSpec) string {
	if spec.ServiceAccountName == "" {
		return "default"
	}
	return spec.ServiceAccountName
}

// serviceAccountFiles are the kube-api-access volume's files: a token of the
// TokenRequest API, the cluster's CA from ConfigMap kube-root-ca.crt (as
// kube-controller-manager publishes it) and the namespace.
func (n *node) serviceAccountFiles(t *testing.T, ns, sa string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	if sa == "" {
		sa = "default"
	}
	tr, err := n.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3607))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s: %v", ns, sa, err)
	}
	var ca string
	waitUntil(t, 30*time.Second, func() bool {
		cm, err := n.cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		ca = cm.Data["ca.crt"]
		return err == nil && ca != ""
	}, "ConfigMap kube-root-ca.crt did not appear in "+ns+" of cluster "+n.cluster)
	return map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": []byte(ca), "namespace": []byte(ns)}
}

// valueFrom resolves an env var's valueFrom as the kubelet does.
func (n *node) valueFrom(t *testing.T, dep *appsv1.Deployment, c corev1.Container, podName string, e corev1.EnvVar) string {
	t.Helper()
	ctx := context.Background()
	vf := e.ValueFrom
	switch {
	case vf.FieldRef != nil:
		switch vf.FieldRef.FieldPath {
		case "metadata.name":
			return podName
		case "metadata.namespace":
			return dep.Namespace
		case "spec.serviceAccountName":
			return saName(dep.Spec.Template.Spec)
		}
	case vf.ResourceFieldRef != nil:
		r := vf.ResourceFieldRef
		var q resource.Quantity
		switch {
		case strings.HasPrefix(r.Resource, "limits."):
			q = c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(r.Resource, "limits."))]
		case strings.HasPrefix(r.Resource, "requests."):
			q = c.Resources.Requests[corev1.ResourceName(strings.TrimPrefix(r.Resource, "requests."))]
		}
		if q.IsZero() {
			t.Fatalf("%s: env %s: %s is not set (the kubelet would use the node's allocatable, which kwok's node does not have)", dep.Name, e.Name, r.Resource)
		}
		divisor := r.Divisor
		if divisor.IsZero() {
			divisor = resource.MustParse("1")
		}
		return fmt.Sprint((q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue())
	case vf.SecretKeyRef != nil:
		s, err := n.cs.CoreV1().Secrets(dep.Namespace).Get(ctx, vf.SecretKeyRef.Name, metav1.GetOptions{})
		if err != nil || s.Data[vf.SecretKeyRef.Key] == nil {
			t.Fatalf("%s: env %s: key %s of Secret %s: %v", dep.Name, e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name, err)
		}
		return string(s.Data[vf.SecretKeyRef.Key])
	case vf.ConfigMapKeyRef != nil:
		cm, err := n.cs.CoreV1().ConfigMaps(dep.Namespace).Get(ctx, vf.ConfigMapKeyRef.Name, metav1.GetOptions{})
		v, ok := cm.Data[vf.ConfigMapKeyRef.Key]
		if err != nil || !ok {
			t.Fatalf("%s: env %s: key %s of ConfigMap %s: %v", dep.Name, e.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name, err)
		}
		return v
	}
	t.Fatalf("%s: env %s: this valueFrom is not emulated: %+v", dep.Name, e.Name, vf)
	return ""
}

// project writes a ConfigMap's or Secret's keys into dir as the kubelet
// does: every key, or the items listed; group fsGroup.
func project(t *testing.T, dir string, data map[string][]byte, items []corev1.KeyToPath, mode int32, fsGroup int) {
	t.Helper()
	files := map[string][]byte{}
	modes := map[string]int32{}
	if len(items) == 0 {
		for k, v := range data {
			files[k], modes[k] = v, mode
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			t.Fatalf("volume item %s: no such key (the kubelet could not start the pod)", it.Key)
		}
		files[it.Path], modes[it.Path] = v, ptrOr(it.Mode, mode)
	}
	for name, v := range files {
		p := filepath.Join(dir, filepath.FromSlash(path.Clean(name)))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, v, 0o600))
		if fsGroup >= 0 {
			must(t, os.Chown(p, 0, fsGroup))
		}
		must(t, os.Chmod(p, os.FileMode(modes[name])&os.ModePerm))
	}
}

// apiserverAddress splits the apiserver URL into KUBERNETES_SERVICE_HOST and
// _PORT: kwok has no Service network, so the kubernetes Service is the
// apiserver's own address.
func apiserverAddress(t *testing.T, hostURL string) (string, string) {
	t.Helper()
	hp := strings.TrimPrefix(hostURL, "https://")
	i := strings.LastIndex(hp, ":")
	if i < 0 || strings.Contains(hp, "/") {
		t.Fatalf("apiserver address %q is not https://HOST:PORT", hostURL)
	}
	return hp[:i], hp[i+1:]
}

// expand replaces $(VAR) with VAR's value where VAR is defined and $$ with
// $, leaving anything else as written (the kubelet's rules for command,
// args and env values).
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := lookup(name); ok {
					b.WriteString(v)
				} else {
					b.WriteString("$(" + name + ")")
				}
				i += 2 + end
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// envList keeps env vars in order, a later one replacing an earlier one.
type envList struct {
	names []string
	vals  map[string]string
}

func (e *envList) set(k, v string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[k]; !ok {
		e.names = append(e.names, k)
	}
	e.vals[k] = v
}

func (e *envList) lookup(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }

func (e *envList) list() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestExpand checks $(VAR) expansion against the kubelet's rules, which the
// chart's --repo=$(STRATA_REPO) relies on.
func TestExpand(t *testing.T) {
	vars := map[string]string{"STRATA_REPO": "https://git.example.com/config.git", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"--repo=$(STRATA_REPO)":  "--repo=https://git.example.com/config.git",
		"$(STRATA_REPO)$(EMPTY)": "https://git.example.com/config.git",
		"$(UNDEFINED)":           "$(UNDEFINED)",
		"$$(STRATA_REPO)":        "$(STRATA_REPO)",
		"a$$b":                   "a$b",
		"$(unclosed":             "$(unclosed",
		"ends with $":            "ends with $",
		"$STRATA_REPO":           "$STRATA_REPO",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
