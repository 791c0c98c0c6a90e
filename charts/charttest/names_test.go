package charttest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/strata-gitops/strata/internal/cli"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/policy"
	"github.com/strata-gitops/strata/reconciler"
	"github.com/strata-gitops/strata/webhook"
)

// typed converts a rendered object into its API type.
func typed[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// TestNamesMatchCode renders the chart's name helpers (templates/_helpers.tpl)
// through a template added to a copy of the chart and compares them with the
// constants of internal/labels and webhook.
func TestNamesMatchCode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "strata")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	const probe = `apiVersion: v1
kind: ConfigMap
metadata:
  name: names
data:
  namespace: {{ include "strata.namespace" . | quote }}
  webhookPath: {{ include "strata.webhookPath" . | quote }}
  hookPath: {{ include "strata.hookPath" . | quote }}
  clusterSecretPrefix: {{ include "strata.clusterSecretPrefix" . | quote }}
  webhookConfigurationName: {{ include "strata.webhookConfigurationName" . | quote }}
  webhookName: {{ include "strata.webhookName" . | quote }}
  leaseName: {{ include "strata.leaseName" . | quote }}
`
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-names.yaml"), []byte(probe), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := helm(t, "template", releaseName, dir, "--show-only", "templates/zz-names.yaml", "--set", "environment=staging")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(out), &cm); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"namespace":                labels.SystemNamespace,
		"webhookPath":              labels.WebhookPath,
		"hookPath":                 labels.HookPath,
		"clusterSecretPrefix":      labels.ClusterSecretPrefix,
		"webhookConfigurationName": webhook.ConfigurationName,
		"webhookName":              webhook.WebhookName,
		"leaseName":                reconciler.LeaseID("staging"),
	}
	if d := cmp.Diff(want, cm.Data); d != "" {
		t.Errorf("chart helpers differ from the Go constants (-code +chart):\n%s", d)
	}
}

// clusterScoped are the kinds the chart renders outside any namespace.
var clusterScoped = []string{"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration"}

// TestObjectsUseCodeNames checks the names the rendered objects share with
// the code: the namespace, the cluster credential Secrets and the lease.
func TestObjectsUseCodeNames(t *testing.T) {
	for _, r := range renderings(t) {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			_, objs := mustRender(t, r)
			for _, o := range objs {
				if slices.Contains(clusterScoped, o.GetKind()) {
					if o.GetNamespace() != "" {
						t.Errorf("%s %s is cluster-scoped but has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
					}
				} else if o.GetNamespace() != labels.SystemNamespace {
					t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), labels.SystemNamespace)
				}
			}
			if len(find(objs, "Deployment")) == 0 || !slices.ContainsFunc(find(objs, "Deployment"), func(o *unstructured.Unstructured) bool {
				return strings.HasSuffix(o.GetName(), "-reconciler")
			}) {
				return
			}
			role := typed[rbacv1.Role](t, one(t, objs, "Role", releaseName+"-reconciler"))
			var leaseNames, secretNames []string
			for _, rule := range role.Rules {
				switch {
				case slices.Contains(rule.Resources, "leases") && len(rule.ResourceNames) > 0:
					leaseNames = append(leaseNames, rule.ResourceNames...)
				case slices.Contains(rule.Resources, "secrets"):
					if len(rule.ResourceNames) == 0 {
						t.Errorf("the reconciler may read every Secret of %s: %+v", labels.SystemNamespace, rule)
					}
					if !slices.Equal(rule.Verbs, []string{"get"}) {
						t.Errorf("the reconciler's Secret verbs are %v, want only get", rule.Verbs)
					}
					secretNames = append(secretNames, rule.ResourceNames...)
				}
			}
			if want := []string{reconciler.LeaseID("prod")}; !slices.Equal(leaseNames, want) {
				t.Errorf("lease rules name %v, want %v", leaseNames, want)
			}
			var wantSecrets []string
			switch r.name {
			case "default":
				for _, c := range []string{"public", "private", "onprem"} {
					wantSecrets = append(wantSecrets, labels.ClusterSecretName(c))
				}
			case "reconciler-only":
				wantSecrets = []string{labels.ClusterSecretName("onprem")}
				sec := typed[corev1.Secret](t, one(t, objs, "Secret", labels.ClusterSecretName("onprem")))
				kc, err := os.ReadFile(filepath.Join("testdata", "onprem.kubeconfig"))
				if err != nil {
					t.Fatal(err)
				}
				if strings.TrimSpace(string(sec.Data["kubeconfig"])) != strings.TrimSpace(string(kc)) {
					t.Errorf("Secret %s key kubeconfig = %q, want testdata/onprem.kubeconfig", sec.Name, sec.Data["kubeconfig"])
				}
			}
			if !slices.Equal(secretNames, wantSecrets) {
				t.Errorf("the reconciler may read Secrets %v, want %v", secretNames, wantSecrets)
			}
		})
	}
}

// TestWebhookConfigurationMatchesCode compares the rendered
// ValidatingWebhookConfiguration with the one `strata webhook install`
// registers (webhook.Configuration), apart from the CA bundle.
func TestWebhookConfigurationMatchesCode(t *testing.T) {
	for _, r := range renderings(t) {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			_, objs := mustRender(t, r)
			if len(find(objs, "ValidatingWebhookConfiguration")) == 0 {
				return
			}
			svcName := releaseName + "-webhook"
			got := typed[admissionregistrationv1.ValidatingWebhookConfiguration](t, one(t, objs, "ValidatingWebhookConfiguration", webhook.ConfigurationName))
			want := webhook.Configuration(webhook.Target{ServiceNamespace: labels.SystemNamespace, ServiceName: svcName, ServicePort: 443}, nil)
			caBundle := got.Webhooks[0].ClientConfig.CABundle
			got.Webhooks[0].ClientConfig.CABundle = nil
			if d := cmp.Diff(want.Webhooks, got.Webhooks); d != "" {
				t.Errorf("webhooks differ from webhook.Configuration (-code +chart):\n%s", d)
			}
			if *got.Webhooks[0].ClientConfig.Service.Path != labels.WebhookPath {
				t.Errorf("path %s, want %s", *got.Webhooks[0].ClientConfig.Service.Path, labels.WebhookPath)
			}

			// The Service sends port 443 to the container's https port.
			svc := typed[corev1.Service](t, one(t, objs, "Service", svcName))
			dep := typed[appsv1.Deployment](t, one(t, objs, "Deployment", svcName))
			if svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "https" || dep.Spec.Template.Spec.Containers[0].Ports[0].Name != "https" {
				t.Errorf("Service %s ports %+v do not reach the webhook's https port", svcName, svc.Spec.Ports)
			}
			var tlsVolume corev1.Volume
			for _, v := range dep.Spec.Template.Spec.Volumes {
				if v.Name == "tls" {
					tlsVolume = v
				}
			}
			if len(caBundle) != 0 {
				t.Error("the chart renders a caBundle: the webhook (or cert-manager's cainjector) keeps it, an upgrade must not reset it")
			}

			if len(find(objs, "Certificate")) > 0 {
				if tlsVolume.Secret == nil {
					t.Fatalf("with cert-manager the webhook must mount the Certificate's Secret, not %+v", tlsVolume.VolumeSource)
				}
				var cert *unstructured.Unstructured
				for _, c := range find(objs, "Certificate") {
					if s, _, _ := unstructured.NestedString(c.Object, "spec", "secretName"); s == tlsVolume.Secret.SecretName {
						cert = c
					}
				}
				if cert == nil {
					t.Fatalf("no Certificate writes Secret %s, which the webhook mounts", tlsVolume.Secret.SecretName)
				}
				if want := labels.SystemNamespace + "/" + cert.GetName(); got.Annotations["cert-manager.io/inject-ca-from"] != want {
					t.Errorf("inject-ca-from = %q, want %q", got.Annotations["cert-manager.io/inject-ca-from"], want)
				}
				dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if !slices.Contains(dns, svcName+"."+labels.SystemNamespace+".svc") {
					t.Errorf("Certificate dnsNames %v lack the Service's name", dns)
				}
				if issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name"); issuer == releaseName+"-selfsigned" {
					t.Error("the serving Certificate is self-signed: every renewal would change the caBundle; sign it with a CA")
				}
				return
			}
			checkSelfIssued(t, objs, dep, tlsVolume, svcName)
		})
	}
}

// checkSelfIssued checks the default mode: the webhook issues and renews
// its certificates into an empty Secret the chart makes, serves them from
// memory and keeps the registration's caBundle.
func checkSelfIssued(t *testing.T, objs []*unstructured.Unstructured, dep *appsv1.Deployment, tls corev1.Volume, svcName string) {
	t.Helper()
	args := dep.Spec.Template.Spec.Containers[0].Args
	secret, _ := flagValue(args, "cert-secret")
	sec := typed[corev1.Secret](t, one(t, objs, "Secret", secret))
	if len(sec.Data)+len(sec.StringData) != 0 || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret %s: type %s with %d keys; want an empty Opaque Secret the webhook fills", secret, sec.Type, len(sec.Data)+len(sec.StringData))
	}
	if reg, _ := flagValue(args, "registration"); reg != webhook.ConfigurationName {
		t.Errorf("--registration=%s, the chart registers %s", reg, webhook.ConfigurationName)
	}
	var hosts []string
	for _, a := range args {
		if h, ok := strings.CutPrefix(a, "--cert-host="); ok {
			hosts = append(hosts, h)
		}
	}
	if !slices.Contains(hosts, svcName+"."+labels.SystemNamespace+".svc") {
		t.Errorf("--cert-host %v lacks the name the apiserver calls, %s.%s.svc", hosts, svcName, labels.SystemNamespace)
	}
	if tls.EmptyDir == nil || tls.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("the serving certificate's volume is %+v; want an in-memory emptyDir", tls.VolumeSource)
	}
}

// checkSelfSigned checks that a serving certificate is valid for host
// under the CA bundle the apiserver is given, and matches its key.
func checkSelfSigned(t *testing.T, sec *corev1.Secret, caBundle []byte, host string) {
	t.Helper()
	for _, k := range []string{webhook.CAFile, webhook.CertFile, webhook.KeyFile} {
		if len(sec.Data[k]) == 0 {
			t.Fatalf("Secret %s has no %s", sec.Name, k)
		}
	}
	if string(caBundle) != string(sec.Data[webhook.CAFile]) {
		t.Error("the CA bundle differs from the Secret's ca.crt")
	}
	if _, err := tls.X509KeyPair(sec.Data[webhook.CertFile], sec.Data[webhook.KeyFile]); err != nil {
		t.Errorf("tls.crt and tls.key: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caBundle) {
		t.Fatal("the CA bundle holds no certificate")
	}
	block, _ := pem.Decode(sec.Data[webhook.CertFile])
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the serving certificate does not verify for %s: %v", host, err)
	}
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

// TestArgsMatchCLI parses every rendered container's arguments with strata's
// own command line, so that the chart passes only flags the binary knows, with
// values it accepts, and its paths and ports match the mounts and ports.
func TestArgsMatchCLI(t *testing.T) {
	for _, r := range renderings(t) {
		t.Run(r.name, func(t *testing.T) {
			_, objs := mustRender(t, r)
			for _, o := range find(objs, "Deployment") {
				dep := typed[appsv1.Deployment](t, o)
				c := dep.Spec.Template.Spec.Containers[0]
				root := cli.NewRootCommand()
				cmd, rest, err := root.Find(c.Args)
				if err != nil || cmd == root {
					t.Fatalf("%s: %v does not start with a strata command: %v", dep.Name, c.Args, err)
				}
				if err := cmd.ParseFlags(rest); err != nil {
					t.Errorf("%s: strata %s %v: %v", dep.Name, cmd.Name(), rest, err)
					continue
				}
				if err := cmd.ValidateRequiredFlags(); err != nil {
					t.Errorf("%s: %v", dep.Name, err)
				}
				if args := cmd.Flags().Args(); len(args) > 0 {
					t.Errorf("%s: positional arguments %v", dep.Name, args)
				}
				mounts := map[string]string{}
				for _, m := range c.VolumeMounts {
					mounts[m.Name] = m.MountPath
				}
				ports := map[string]int32{}
				for _, p := range c.Ports {
					ports[p.Name] = p.ContainerPort
				}
				port := func(flag string) string {
					v, _ := flagValue(c.Args, flag)
					_, p, err := net.SplitHostPort(v)
					if err != nil {
						t.Errorf("%s: --%s=%s: %v", dep.Name, flag, v, err)
					}
					return p
				}
				itoa := func(p int32) string { return strconv.Itoa(int(p)) }
				if got := port("metrics-addr"); got != itoa(ports["metrics"]) {
					t.Errorf("%s: --metrics-addr port %s, container port metrics %d", dep.Name, got, ports["metrics"])
				}
				switch cmd.Name() {
				case "webhook":
					if v, _ := flagValue(c.Args, "cert-dir"); v != mounts["tls"] {
						t.Errorf("--cert-dir=%s, the TLS Secret is mounted at %s", v, mounts["tls"])
					}
					if v, _ := flagValue(c.Args, "config"); path.Dir(v) != mounts["config"] || path.Base(v) != config.ConfigFile {
						t.Errorf("--config=%s, strata.yaml is mounted at %s/%s", v, mounts["config"], config.ConfigFile)
					}
					if v, ok := flagValue(c.Args, "policies"); ok != (mounts["policies"] != "") || v != mounts["policies"] {
						t.Errorf("--policies=%q, the policies are mounted at %q", v, mounts["policies"])
					}
					if got := port("addr"); got != itoa(ports["https"]) {
						t.Errorf("--addr port %s, container port https %d", got, ports["https"])
					}
				case "reconcile":
					if _, ok := flagValue(c.Args, "enable-leader-election"); !ok {
						t.Error("the reconciler runs without --enable-leader-election")
					}
					if v, _ := flagValue(c.Args, "cache-dir"); v != mounts["cache"] {
						t.Errorf("--cache-dir=%s, the cache volume is at %s", v, mounts["cache"])
					}
					self, agent := flagValue(c.Args, "self")
					if agent != (r.name == "agent-certmanager-monitoring") || agent && self != "onprem" {
						t.Errorf("--self=%q in rendering %s", self, r.name)
					}
					if v, ok := flagValue(c.Args, "hook-secret-file"); ok {
						if path.Dir(v) != mounts["hook-secret"] {
							t.Errorf("--hook-secret-file=%s, the hook Secret is mounted at %s", v, mounts["hook-secret"])
						}
						if got := port("hook-addr"); got != itoa(ports["hook"]) {
							t.Errorf("--hook-addr port %s, container port hook %d", got, ports["hook"])
						}
					}
				default:
					t.Errorf("%s runs strata %s", dep.Name, cmd.Name())
				}
			}
		})
	}
}

// TestConfigAndPoliciesLoad loads the strata.yaml and the policies the chart
// ships to the webhook the way `strata webhook` does.
func TestConfigAndPoliciesLoad(t *testing.T) {
	for _, r := range renderings(t) {
		t.Run(r.name, func(t *testing.T) {
			_, objs := mustRender(t, r)
			if len(find(objs, "ValidatingWebhookConfiguration")) == 0 {
				return
			}
			cm := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", releaseName+"-config"))
			cfg, err := config.Parse(config.ConfigFile, []byte(cm.Data[config.ConfigFile]))
			if err != nil {
				t.Fatalf("the chart's strata.yaml: %v", err)
			}
			if len(cfg.Webhook.BreakGlassGroups) == 0 {
				t.Error("the chart's strata.yaml names no break-glass groups")
			}
			pols := find(objs, "ConfigMap")
			for _, p := range pols {
				if p.GetName() != releaseName+"-policies" {
					continue
				}
				dir := t.TempDir()
				files := typed[corev1.ConfigMap](t, p).Data
				for name, data := range files {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				set, err := policy.Load(os.DirFS(dir), ".")
				if err != nil {
					t.Fatalf("the chart's policies: %v", err)
				}
				if len(set.Policies()) < len(files) {
					t.Errorf("%d policies from %d files", len(set.Policies()), len(files))
				}
				t.Logf("%d policies load: %s", len(set.Policies()), strings.Join(set.Policies(), ", "))
			}
		})
	}
}
