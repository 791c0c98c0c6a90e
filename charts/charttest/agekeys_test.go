package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/strata-gitops/strata/internal/cli"
	"github.com/strata-gitops/strata/internal/secrets"
)

// The age key Secret is mounted read-only, whole (its keys change when a
// tier's key is rotated), and the reconciler decrypts with --age-key-dir
// pointing at it: the directory layout strata reads is <tier>.agekey.
func TestAgeKeySecretReachesTheReconciler(t *testing.T) {
	pod := reconcilerPod(t, "--set", "reconciler.mode=agent", "--set", "reconciler.self=public",
		"--set", "reconciler.ageKeys.secretName=strata-age-keys")
	c := pod.Containers[0]
	cmd, rest, err := cli.NewRootCommand().Find(c.Args)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("strata %s %v: %v", cmd.Name(), rest, err)
	}
	dir, err := cmd.Flags().GetString("age-key-dir")
	if err != nil || dir == "" {
		t.Fatalf("the reconciler runs without --age-key-dir (%v): %v", err, c.Args)
	}
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == dir {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("--age-key-dir=%s is not a read-only mount: %+v", dir, c.VolumeMounts)
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
	case vol.Secret.SecretName != "strata-age-keys":
		t.Errorf("volume %s mounts Secret %s, want strata-age-keys", vol.Name, vol.Secret.SecretName)
	case len(vol.Secret.Items) > 0:
		t.Errorf("volume %s lists items %v: the Secret's keys are the file names strata reads", vol.Name, vol.Secret.Items)
	case vol.Secret.DefaultMode == nil || *vol.Secret.DefaultMode != 0o440:
		t.Errorf("volume %s defaultMode = %v, want 0440", vol.Name, vol.Secret.DefaultMode)
	}

	// Without the value, nothing is mounted or passed.
	pod = reconcilerPod(t)
	if v, ok := flagValue(pod.Containers[0].Args, "age-key-dir"); ok {
		t.Errorf("the default rendering passes --age-key-dir=%s", v)
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil && strings.Contains(v.Name, "age") {
			t.Errorf("the default rendering mounts Secret %s", v.Secret.SecretName)
		}
	}
}

// A mounted Secret is a directory whose keys are symlinks into ..data/
// (the kubelet swaps ..data at an update): strata reads the tier's key
// through it, and a key swapped in later without a restart.
func TestAgeKeysReadThroughASecretVolumeLayout(t *testing.T) {
	dir := t.TempDir()
	mount := func(gen string, key []byte) {
		t.Helper()
		d := filepath.Join(dir, gen)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "public-cloud"+secrets.KeyFileSuffix), key, 0o440); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(gen, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	first, r1, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mount("..2026_12_04_01", first)
	if err := os.Symlink(filepath.Join("..data", "public-cloud"+secrets.KeyFileSuffix), filepath.Join(dir, "public-cloud"+secrets.KeyFileSuffix)); err != nil {
		t.Fatal(err)
	}
	kd := secrets.KeyDir{Dir: dir}
	if tiers, err := kd.Tiers(); err != nil || strings.Join(tiers, ",") != "public-cloud" {
		t.Fatalf("tiers = %v, %v; want [public-cloud] (..data is no tier)", tiers, err)
	}
	ids, err := kd.ForTier("public-cloud")
	if err != nil || ids.Len() != 1 || ids.Recipients[0] != r1 {
		t.Fatalf("public-cloud key = %v, %v; want %s", ids.Recipients, err, r1)
	}
	second, r2, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mount("..2026_12_04_02", second)
	if ids, err := kd.ForTier("public-cloud"); err != nil || ids.Len() != 1 || ids.Recipients[0] != r2 {
		t.Fatalf("after the kubelet swapped ..data: %v, %v; want the rotated key %s", ids.Recipients, err, r2)
	}
}
