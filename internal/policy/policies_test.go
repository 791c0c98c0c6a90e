package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/config"
)

func TestRepoPoliciesLoad(t *testing.T) {
	s := loadRepoPolicies(t)
	want := []string{
		"no-hostpath",
		"no-loadbalancer-for-confidential",
		"nonroot-readonly-rootfs",
		"public-cloud-no-secret-refs",
		"resource-limits",
		"restricted-images-onprem-registry",
	}
	if diff := cmp.Diff(want, s.Policies()); diff != "" {
		t.Errorf("Policies() (-want +got):\n%s", diff)
	}
	wantPrivate := []string{
		"no-hostpath",
		"no-loadbalancer-for-confidential",
		"nonroot-readonly-rootfs",
		"resource-limits",
		"restricted-images-onprem-registry",
	}
	if diff := cmp.Diff(wantPrivate, s.ForTier(config.PrivateCloud)); diff != "" {
		t.Errorf("ForTier(private-cloud) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, s.ForTier(config.PublicCloud)); diff != "" {
		t.Errorf("ForTier(public-cloud) (-want +got):\n%s", diff)
	}
	if got := s.File("no-hostpath"); got != "policies/no-hostpath.yaml" {
		t.Errorf("File(no-hostpath) = %q", got)
	}
}

// TestPolicies evaluates every fixture under testdata/<policy>/ against all of
// policies/: allowed-* fixtures pass every policy, denied-* fixtures fail
// exactly the listed rules of their own policy, with a message saying what
// to do.
func TestPolicies(t *testing.T) {
	s := loadRepoPolicies(t)
	type want struct {
		rules []string // "policy rule"
		msg   []string // substrings of every verdict's message
	}
	tests := []struct {
		file string
		tier config.Tier
		want want
	}{
		// no-loadbalancer-for-confidential
		{"no-loadbalancer-for-confidential/allowed-clusterip-confidential.yaml", config.PrivateCloud, want{}},
		{"no-loadbalancer-for-confidential/allowed-loadbalancer-public.yaml", config.PublicCloud, want{}},
		{"no-loadbalancer-for-confidential/denied-loadbalancer-confidential.yaml", config.PrivateCloud, want{
			rules: []string{"no-loadbalancer-for-confidential validations[0]"},
			msg:   []string{"Service fraud-scoring-public is confidential", "use type ClusterIP"},
		}},
		{"no-loadbalancer-for-confidential/denied-loadbalancer-namespace-floor.yaml", config.OnPrem, want{
			rules: []string{"no-loadbalancer-for-confidential validations[0]"},
			msg:   []string{"Service ledger-export is restricted", "use type ClusterIP"},
		}},

		// nonroot-readonly-rootfs
		{"nonroot-readonly-rootfs/allowed-pod-level-nonroot.yaml", config.PrivateCloud, want{}},
		{"nonroot-readonly-rootfs/allowed-internal-runs-as-root.yaml", config.PrivateCloud, want{}},
		{"nonroot-readonly-rootfs/denied-container-overrides-nonroot.yaml", config.OnPrem, want{
			rules: []string{"nonroot-readonly-rootfs validations[0]"},
			msg:   []string{"StatefulSet ledger-db is restricted: container(s) ledger-db may run as root", "set securityContext.runAsNonRoot: true"},
		}},
		{"nonroot-readonly-rootfs/denied-writable-rootfs-cronjob.yaml", config.PrivateCloud, want{
			rules: []string{"nonroot-readonly-rootfs validations[1]"},
			msg:   []string{"CronJob fraud-score-export is confidential: container(s) export can write their root filesystem", "set securityContext.readOnlyRootFilesystem: true"},
		}},
		{"nonroot-readonly-rootfs/denied-pod-init-container-as-root.yaml", config.OnPrem, want{
			rules: []string{"nonroot-readonly-rootfs validations[0]"},
			msg:   []string{"Pod ledger-migrate is restricted: container(s) wait-for-db may run as root", "runAsNonRoot: true"},
		}},

		{"nonroot-readonly-rootfs/denied-pod-template-confidential.yaml", config.PrivateCloud, want{
			rules: []string{"nonroot-readonly-rootfs validations[0]"},
			msg:   []string{"Deployment risk-scorer is confidential: container(s) scorer may run as root"},
		}},

		// restricted-images-onprem-registry
		{"restricted-images-onprem-registry/allowed-onprem-images.yaml", config.OnPrem, want{}},
		{"restricted-images-onprem-registry/allowed-confidential-external-registry.yaml", config.PrivateCloud, want{}},
		{"restricted-images-onprem-registry/denied-public-registry-image.yaml", config.OnPrem, want{
			rules: []string{"restricted-images-onprem-registry validations[0]"},
			msg:   []string{"ledger-db=docker.io/library/postgres:16.4", "mirror the image to the on-prem registry"},
		}},
		{"restricted-images-onprem-registry/denied-cronjob-job-template-restricted.yaml", config.OnPrem, want{
			rules: []string{"restricted-images-onprem-registry validations[0]"},
			msg:   []string{"CronJob ledger-snapshot is restricted", "snapshot=docker.io/library/postgres:16.4"},
		}},
		{"restricted-images-onprem-registry/denied-init-container-lookalike-registry.yaml", config.OnPrem, want{
			rules: []string{"restricted-images-onprem-registry validations[0]"},
			msg:   []string{"Job ledger-reconcile is restricted", "fetch-rates=registry.onprem.example.internal.attacker.example/rates:1", "mirror the image"},
		}},

		// resource-limits
		{"resource-limits/allowed-all-containers-limited.yaml", config.PrivateCloud, want{}},
		{"resource-limits/denied-missing-memory-limit.yaml", config.PrivateCloud, want{
			rules: []string{"resource-limits validations[0]"},
			msg:   []string{"Deployment feature-pipeline: container(s) feature-pipeline must set resources.limits.cpu and resources.limits.memory"},
		}},
		{"resource-limits/denied-init-container-unlimited.yaml", config.PublicCloud, want{
			rules: []string{"resource-limits validations[0]"},
			msg:   []string{"container(s) download-dataset must set resources.limits.cpu and resources.limits.memory"},
		}},

		// no-hostpath
		{"no-hostpath/allowed-emptydir-and-pvc.yaml", config.PrivateCloud, want{}},
		{"no-hostpath/denied-hostpath-daemonset.yaml", config.PublicCloud, want{
			rules: []string{"no-hostpath validations[0]"},
			msg:   []string{"DaemonSet log-shipper mounts hostPath volume(s) varlog (/var/log)", "use an emptyDir for scratch space or a PersistentVolumeClaim"},
		}},
		{"no-hostpath/denied-hostpath-pod.yaml", config.PrivateCloud, want{
			rules: []string{"no-hostpath validations[0]"},
			msg:   []string{"Pod node-debug mounts hostPath volume(s) host (/)", "PersistentVolumeClaim"},
		}},

		// public-cloud-no-secret-refs
		{"public-cloud-no-secret-refs/allowed-no-secrets-public-cloud.yaml", config.PublicCloud, want{}},
		{"public-cloud-no-secret-refs/allowed-secret-in-private-cloud.yaml", config.PrivateCloud, want{}},
		{"public-cloud-no-secret-refs/denied-secret-volume.yaml", config.PublicCloud, want{
			rules: []string{"public-cloud-no-secret-refs validations[0]"},
			msg:   []string{"Job model-training-bootstrap uses Secrets in the public cloud (volume warehouse)", "workload identity"},
		}},
		{"public-cloud-no-secret-refs/denied-env-secret-key-ref.yaml", config.PublicCloud, want{
			rules: []string{"public-cloud-no-secret-refs validations[0]"},
			msg:   []string{"(volume bundle, container publisher)", "remove the Secret reference, or label the workload internal or above"},
		}},
	}

	listed := map[string]bool{}
	for _, tt := range tests {
		listed[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			in := fixtureInput(t, readDocs(t, filepath.Join("testdata", tt.file)), tt.tier)
			got := s.Evaluate(context.Background(), in)
			if diff := cmp.Diff(tt.want.rules, policyNames(got)); diff != "" {
				t.Fatalf("verdicts (-want +got):\n%s\n%+v", diff, got)
			}
			wantPolicy := filepath.Dir(tt.file)
			for _, v := range got {
				if v.Policy != wantPolicy || v.Action != ActionDeny {
					t.Errorf("verdict %+v: want policy %s, action Deny", v, wantPolicy)
				}
				for _, m := range tt.want.msg {
					if !strings.Contains(v.Message, m) {
						t.Errorf("message %q does not contain %q", v.Message, m)
					}
				}
			}
			if strings.HasPrefix(filepath.Base(tt.file), "denied-") == (len(tt.want.rules) == 0) {
				t.Errorf("file name says %s but the table expects %d verdicts", filepath.Base(tt.file), len(tt.want.rules))
			}
		})
	}

	// Every policy has at least one allowed and one denied fixture, and every
	// fixture is in the table.
	for _, name := range s.Policies() {
		files, err := filepath.Glob(filepath.Join("testdata", name, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var allowed, denied int
		for _, f := range files {
			rel, _ := filepath.Rel("testdata", f)
			rel = filepath.ToSlash(rel)
			if !listed[rel] {
				t.Errorf("fixture %s is not in the test table", rel)
			}
			switch {
			case strings.HasPrefix(filepath.Base(f), "allowed-"):
				allowed++
			case strings.HasPrefix(filepath.Base(f), "denied-"):
				denied++
			}
		}
		if allowed == 0 || denied == 0 {
			t.Errorf("policy %s has %d allowed and %d denied fixtures; want at least one of each", name, allowed, denied)
		}
	}
	if _, err := os.Stat("testdata"); err != nil {
		t.Fatal(err)
	}
}
