package admission

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Kyverno as its Helm chart ships it (issue 16 §4: not with the binary's
// defaults). The chart is charts/kyverno 3.9.1 of github.com/kyverno/kyverno
// v1.19.1 (appVersion v1.19.1, the version bench/peers/build.sh builds), at
// $(go env GOMODCACHE)/github.com/kyverno/kyverno@v1.19.1/charts/kyverno,
// installed with its default values as release "kyverno" in namespace
// "kyverno". What follows is what that install gives the admission
// controller, from:
//
//   - templates/admission-controller/deployment.yaml, container "kyverno":
//     its args, rendered from values.yaml's admissionController.* and the
//     "kyverno.features.flags" helper (templates/_helpers.tpl) over
//     features.* merged with admissionController.featuresOverride
//     (admissionReports.backPressureThreshold: 1000), and its env;
//   - templates/config/configmap.yaml and metricsconfigmap.yaml: the
//     ConfigMaps "kyverno" (INIT_CONFIG) and "kyverno-metrics"
//     (METRICS_CONFIG) from values.yaml's config.* and metricsConfig.*.
//
// Names in the chart's templates for this release: fullname "kyverno";
// <component>.name "kyverno-<component>" (admission-controller,
// background-controller, cleanup-controller, reports-controller), also the
// service account names; <component>.roleName "kyverno:<component>";
// admission-controller.serviceName "kyverno-svc".
//
// Out of cluster, only these differ from the chart — one, admission
// reports off, changes what Kyverno does (see its flag below); the others
// say where Kyverno is, not how it works: --kubeconfig; --serverIP, --webhookServerHost and
// the ports (a free loopback port for the webhook server instead of 9443,
// and for the metrics servers instead of 8000 and :8080), because several
// servers share this machine's loopback; the pod's name (a Deployment's pod
// would be kyverno-admission-controller-<hash>); no resources block (the
// chart sets limits.memory 384Mi and no CPU limit, so in a pod Go's
// GOMAXPROCS would be the node's CPUs: the benchmark sets GOMAXPROCS
// explicitly, 1 and 2).

// Kyverno's names for this release.
const (
	kyvernoNS           = "kyverno"
	kyvernoDeployment   = "kyverno-admission-controller"
	kyvernoSvc          = "kyverno-svc"
	kyvernoConfigMap    = "kyverno"
	kyvernoMetricsCM    = "kyverno-metrics"
	kyvernoVWC          = "kyverno-resource-validating-webhook-cfg"
	kyvernoVpolHook     = "vpol.validate.kyverno.svc-fail"
	kyvernoPodName      = kyvernoDeployment + "-local"
	kyvernoRoleName     = "kyverno:admission-controller"
	kyvernoChartVersion = "3.9.1"
)

// kyvernoChartArgs are the admission controller's arguments as the chart
// renders them with default values, with the out-of-cluster addresses.
func kyvernoChartArgs(kubeconfig string, port, metricsPort, crMetricsPort int) []string {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return []string{
		// Out of cluster (see above).
		"--kubeconfig=" + kubeconfig, "--serverIP=" + addr, "--webhookServerHost=127.0.0.1",
		"--metricsHost=127.0.0.1",
		// deployment.yaml, container "kyverno", in its order.
		"--caSecretName=" + kyvernoSvc + "." + kyvernoNS + ".svc.kyverno-tls-ca",
		"--tlsSecretName=" + kyvernoSvc + "." + kyvernoNS + ".svc.kyverno-tls-pair",
		"--tlsKeyAlgorithm=RSA",
		"--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller",
		"--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller",
		"--servicePort=443",
		"--webhookServerPort=" + strconv.Itoa(port), // chart: 9443
		"--resyncPeriod=15m",
		"--crdWatcher=false",
		"--disableMetrics=false",
		"--otelConfig=prometheus",
		"--metricsPort=" + strconv.Itoa(metricsPort), // chart: 8000
		// "kyverno.features.flags" over features.* (+ featuresOverride).
		// The chart ships true. Out of cluster with one replica, every
		// admitted request then writes a report through Kyverno's own client
		// (100 QPS, burst 200), which at 100 req/s starves its leader-lease
		// renewals: it lost the lease and exited within 40 s here
		// (2026-12-05, "Failed to renew lease … client rate limiter").
		// Reports are work strata's webhook does not do, so they are off.
		"--admissionReports=false",
		"--maxAdmissionReports=1000",
		"--autoUpdateWebhooks=true",
		"--enableConfigMapCaching=true",
		fmt.Sprintf("--controllerRuntimeMetricsAddress=127.0.0.1:%d", crMetricsPort), // chart: :8080
		"--enableDeferredLoading=true",
		"--dumpPayload=false",
		"--excludeBootstrapResources=false",
		"--forceFailurePolicyIgnore=false",
		"--generateValidatingAdmissionPolicy=true", // a ValidatingPolicy opts in itself (spec.autogen); ours do not
		"--generateMutatingAdmissionPolicy=false",
		"--dumpPatches=false",
		"--maxAPICallResponseLength=2000000",
		"--apiCallTimeout=30s",
		"--maxGlobalContextEntries=0",
		"--loggingFormat=text",
		"--v=2",
		"--omitEvents=PolicyApplied,PolicySkipped",
		"--enablePolicyException=false",
		"--protectManagedResources=false",
		"--allowInsecureRegistry=false",
		"--registryCredentialHelpers=default,google,amazon,azure,github",
		"--enableReporting=validate,mutate,mutateExisting,imageVerify,generate",
		// tuf.enabled is false: no --enableTuf.
	}
}

// kyvernoChartEnv is the container's env (deployment.yaml) for this
// release, plus GOMAXPROCS; without TUF_ROOT=/.sigstore (the mount of the
// sigstore volume, only read with TUF enabled, which the chart disables).
func kyvernoChartEnv(gomaxprocs int) []string {
	return []string{
		"INIT_CONFIG=" + kyvernoConfigMap, "METRICS_CONFIG=" + kyvernoMetricsCM,
		"KYVERNO_NAMESPACE=" + kyvernoNS, "KYVERNO_POD_NAME=" + kyvernoPodName,
		"KYVERNO_SERVICEACCOUNT_NAME=" + kyvernoDeployment, "KYVERNO_ROLE_NAME=" + kyvernoRoleName,
		"KYVERNO_SVC=" + kyvernoSvc, "KYVERNO_DEPLOYMENT=" + kyvernoDeployment,
		"GOMAXPROCS=" + strconv.Itoa(gomaxprocs),
	}
}

// kyvernoResourceFilters is config.resourceFilters of values.yaml, rendered
// ("kyverno.config.resourceFilters": excludeKyvernoNamespace prepends the
// whole kyverno Namespace). Note [ReplicaSet,*,*]: as shipped, Kyverno does
// not look at ReplicaSets.
func kyvernoResourceFilters() []string {
	f := []string{"[*/*,kyverno,*]",
		"[Event,*,*]", "[*/*,kube-system,*]", "[*/*,kube-public,*]", "[*/*,kube-node-lease,*]",
		"[Node,*,*]", "[Node/?*,*,*]", "[APIService,*,*]", "[APIService/?*,*,*]",
		"[TokenReview,*,*]", "[SubjectAccessReview,*,*]", "[SelfSubjectAccessReview,*,*]",
		"[Binding,*,*]", "[Pod/binding,*,*]", "[ReplicaSet,*,*]", "[ReplicaSet/?*,*,*]",
		"[EphemeralReport,*,*]", "[ClusterEphemeralReport,*,*]"}
	components := []string{"admission-controller", "background-controller", "cleanup-controller", "reports-controller"}
	for _, c := range components {
		for _, suffix := range []string{"", ":core", ":additional"} {
			f = append(f, "[ClusterRole,*,kyverno:"+c+suffix+"]")
		}
	}
	for _, c := range components {
		f = append(f, "[ClusterRoleBinding,*,kyverno:"+c+"]")
	}
	for _, c := range components {
		f = append(f, "[ServiceAccount,kyverno,kyverno-"+c+"]", "[ServiceAccount/?*,kyverno,kyverno-"+c+"]")
	}
	for _, kind := range []string{"Role", "RoleBinding"} {
		for _, c := range components {
			f = append(f, "["+kind+",kyverno,kyverno:"+c+"]")
		}
	}
	f = append(f, "[ConfigMap,kyverno,kyverno]", "[ConfigMap,kyverno,kyverno-metrics]")
	for _, kind := range []string{"Deployment", "Pod", "Job", "NetworkPolicy", "PodDisruptionBudget"} {
		if kind == "Job" {
			f = append(f, "[Job,kyverno,kyverno-hook-pre-delete]", "[Job/?*,kyverno,kyverno-hook-pre-delete]")
			continue
		}
		for _, c := range components {
			name := "kyverno-" + c
			if kind == "Pod" {
				name += "-*"
			}
			f = append(f, "["+kind+",kyverno,"+name+"]", "["+kind+"/?*,kyverno,"+name+"]")
		}
	}
	for _, name := range []string{"kyverno-svc", "kyverno-svc-metrics", "kyverno-background-controller-metrics",
		"kyverno-cleanup-controller", "kyverno-cleanup-controller-metrics", "kyverno-reports-controller-metrics"} {
		f = append(f, "[Service,kyverno,"+name+"]", "[Service/?*,kyverno,"+name+"]")
	}
	for _, c := range components {
		f = append(f, "[ServiceMonitor,kyverno,kyverno-"+c+"]")
	}
	return append(f, "[Secret,kyverno,kyverno-svc.kyverno.svc.*]", "[Secret,kyverno,kyverno-cleanup-controller.kyverno.svc.*]")
}

// kyvernoConfigData is the data of ConfigMap "kyverno"
// (templates/config/configmap.yaml with values.yaml's config.*).
func kyvernoConfigData() map[string]string {
	webhooks, _ := json.Marshal(map[string]any{"namespaceSelector": map[string]any{"matchExpressions": []any{
		map[string]any{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": []string{"kube-system"}},
		map[string]any{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": []string{kyvernoNS}},
	}}})
	annotations, _ := json.Marshal(map[string]string{"admissions.enforcer/disabled": "true"})
	return map[string]string{
		"enableDefaultRegistryMutation": "true",
		"defaultRegistry":               "docker.io",
		"generateSuccessEvents":         "false",
		"excludeGroups":                 "system:nodes",
		"resourceFilters":               strings.Join(kyvernoResourceFilters(), " "),
		"updateRequestThreshold":        "1000",
		"webhooks":                      string(webhooks),
		"webhookAnnotations":            string(annotations),
	}
}

// kyvernoMetricsConfigData is the data of ConfigMap "kyverno-metrics"
// (templates/config/metricsconfigmap.yaml with metricsConfig.*).
func kyvernoMetricsConfigData() map[string]string {
	both := []string{"resource_namespace", "policy_namespace"}
	op := []string{"resource_namespace", "resource_request_operation"}
	ns := []string{"resource_namespace"}
	exposure := map[string]any{}
	for name, dims := range map[string][]string{
		"kyverno_policy_execution_duration_seconds":                  op,
		"kyverno_validating_policy_execution_duration_seconds":       op,
		"kyverno_image_validating_policy_execution_duration_seconds": op,
		"kyverno_mutating_policy_execution_duration_seconds":         op,
		"kyverno_generating_policy_execution_duration_seconds":       op,
		"kyverno_admission_review_duration_seconds":                  ns,
		"kyverno_policy_rule_info_total":                             both,
		"kyverno_policy_results_total":                               both,
		"kyverno_admission_requests_total":                           ns,
		"kyverno_cleanup_controller_deletedobjects_total":            both,
		"kyverno_validating_policy_results_total":                    both,
		"kyverno_mutating_policy_results_total":                      both,
		"kyverno_generating_policy_results_total":                    both,
		"kyverno_image_validating_policy_results_total":              both,
	} {
		exposure[name] = map[string]any{"disabledLabelDimensions": dims}
	}
	exp, _ := json.Marshal(exposure)
	nss, _ := json.Marshal(map[string][]string{"include": {}, "exclude": {}})
	return map[string]string{
		"namespaces":       string(nss),
		"bucketBoundaries": "0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30",
		"metricsExposure":  string(exp),
	}
}
