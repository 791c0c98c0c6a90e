package charttest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/strata-gitops/strata/internal/cli"
)

// reconcilerPod renders the chart with args and returns the reconciler's
// pod spec.
func reconcilerPod(t *testing.T, args ...string) corev1.PodSpec {
	t.Helper()
	out, err := template(t, append([]string{"--set", "webhook.enabled=false"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return typed[appsv1.Deployment](t, one(t, objs, "Deployment", releaseName+"-reconciler")).Spec.Template.Spec
}

// The credentials Secret is mounted read-only, whole (its keys may change
// at a rotation), and the reconciler reads it with --git-credentials-dir.
func TestGitCredentialsSecretReachesTheReconciler(t *testing.T) {
	pod := reconcilerPod(t, "--set", "reconciler.repo.url=git@git.example.com:platform/config.git",
		"--set", "reconciler.repo.credentialsSecret=git-credentials")
	c := pod.Containers[0]
	root := cli.NewRootCommand()
	cmd, rest, err := root.Find(c.Args)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("strata %s %v: %v", cmd.Name(), rest, err)
	}
	dir, err := cmd.Flags().GetString("git-credentials-dir")
	if err != nil || dir == "" {
		t.Fatalf("the reconciler runs without --git-credentials-dir (%v): %v", err, c.Args)
	}
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == dir {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("--git-credentials-dir=%s is not a read-only mount: %+v", dir, c.VolumeMounts)
	}
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	switch {
	case vol == nil || vol.Secret == nil:
		t.Fatalf("volume %s is not a Secret: %+v", mount.Name, vol)
	case vol.Secret.SecretName != "git-credentials":
		t.Errorf("volume %s mounts Secret %s, want git-credentials", vol.Name, vol.Secret.SecretName)
	case len(vol.Secret.Items) > 0:
		t.Errorf("volume %s lists items %v: a key missing from the Secret would keep the pod from starting", vol.Name, vol.Secret.Items)
	case vol.Secret.DefaultMode == nil || *vol.Secret.DefaultMode != 0o440:
		t.Errorf("volume %s defaultMode = %v, want 0440", vol.Name, vol.Secret.DefaultMode)
	}

	// Without the value, nothing is mounted or passed.
	pod = reconcilerPod(t)
	if v, ok := flagValue(pod.Containers[0].Args, "git-credentials-dir"); ok {
		t.Errorf("the default rendering passes --git-credentials-dir=%s", v)
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil && strings.Contains(v.Name, "git") {
			t.Errorf("the default rendering mounts Secret %s", v.Secret.SecretName)
		}
	}
}

func TestGitRepoURLAndSecretSchema(t *testing.T) {
	for _, url := range []string{"https://git.example.com/c.git", "ssh://git@git.example.com:2222/c.git", "git@git.example.com:platform/c.git"} {
		if _, err := template(t, "--set", "reconciler.repo.url="+url); err != nil {
			t.Errorf("reconciler.repo.url=%s refused: %v", url, err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "reconciler.repo.url=ftp://git.example.com/c.git"}, "/reconciler/repo"},
		{[]string{"--set", "reconciler.repo.credentialsSecret=Git_Credentials"}, "/reconciler/repo/credentialsSecret"},
	} {
		if _, err := template(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("helm template %v = %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
