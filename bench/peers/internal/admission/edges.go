package admission

// edgeCases probe corners the fixtures leave out: where the sensitivity
// comes from, label values the policies do not know, secret references in
// less common places, several policies denying one object, and kinds the
// fixtures do not use. Every object is valid for the apiserver, so the
// verdicts come from the webhooks alone. The Namespaces are the fixtures'
// (same labels) plus "scratch", which has no labels.
var edgeCases = []struct{ name, why, yaml string }{
	{"service-lb-unlabeled-namespace", "no sensitivity anywhere: level -1, a LoadBalancer is fine", `
apiVersion: v1
kind: Namespace
metadata: {name: scratch}
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: scratch}
spec: {type: LoadBalancer, selector: {app: x}, ports: [{port: 80}]}`},
	{"service-lb-own-label-above-floor", "the object's own label (confidential) is above its public Namespace", `
apiVersion: v1
kind: Service
metadata: {name: lb-conf, namespace: ml-training, labels: {strata.dev/sensitivity: confidential}}
spec: {type: LoadBalancer, selector: {app: x}, ports: [{port: 80}]}`},
	{"service-nodeport-restricted", "only LoadBalancer is refused, a NodePort in the restricted Namespace passes", `
apiVersion: v1
kind: Service
metadata: {name: np, namespace: ledger}
spec: {type: NodePort, selector: {app: x}, ports: [{port: 80}]}`},
	{"pod-unknown-sensitivity-value", "'Confidential' is not a level (indexOf gives -1): the policies see no sensitivity; strata's own tier rule refuses the label", `
apiVersion: v1
kind: Pod
metadata: {name: odd-label, namespace: scratch, labels: {strata.dev/sensitivity: Confidential}}
spec:
  containers:
    - {name: app, image: docker.io/library/busybox:1.36, resources: {limits: {cpu: 100m, memory: 64Mi}}}`},
	{"replicaset-restricted-outside-image", "a ReplicaSet (no fixture uses one) pulling from Docker Hub in the restricted Namespace", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs, namespace: ledger}
spec:
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: app
          image: docker.io/library/nginx:1.27
          resources: {limits: {cpu: 100m, memory: 64Mi}}
          securityContext: {readOnlyRootFilesystem: true}`},
	{"pod-projected-secret", "a projected volume with a secret source in the public Namespace", `
apiVersion: v1
kind: Pod
metadata: {name: projected, namespace: ml-training}
spec:
  containers:
    - {name: app, image: docker.io/library/busybox:1.36, resources: {limits: {cpu: 100m, memory: 64Mi}}}
  volumes:
    - name: creds
      projected: {sources: [{configMap: {name: cfg}}, {secret: {name: creds}}]}`},
	{"pod-projected-no-secret", "a projected volume without a secret source (like the service-account token volume) passes", `
apiVersion: v1
kind: Pod
metadata: {name: projected-ok, namespace: ml-training}
spec:
  containers:
    - {name: app, image: docker.io/library/busybox:1.36, resources: {limits: {cpu: 100m, memory: 64Mi}}}
  volumes:
    - name: cfg
      projected: {sources: [{configMap: {name: cfg}}, {downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}]}`},
	{"pod-csi-secrets-store", "a secrets-store CSI volume", `
apiVersion: v1
kind: Pod
metadata: {name: csi, namespace: ml-training}
spec:
  containers:
    - {name: app, image: docker.io/library/busybox:1.36, resources: {limits: {cpu: 100m, memory: 64Mi}}}
  volumes:
    - name: vault
      csi: {driver: secrets-store.csi.k8s.io, readOnly: true, volumeAttributes: {secretProviderClass: vault}}`},
	{"pod-init-envfrom-secret", "envFrom.secretRef on an init container only, unlabeled Namespace", `
apiVersion: v1
kind: Pod
metadata: {name: init-env, namespace: scratch}
spec:
  initContainers:
    - name: init
      image: docker.io/library/busybox:1.36
      envFrom: [{secretRef: {name: creds}}]
      resources: {limits: {cpu: 100m, memory: 64Mi}}
  containers:
    - {name: app, image: docker.io/library/busybox:1.36, resources: {limits: {cpu: 100m, memory: 64Mi}}}`},
	{"deployment-cpu-and-gpu-no-memory", "limits on cpu and an extended resource but not memory", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: gpu, namespace: scratch}
spec:
  selector: {matchLabels: {app: gpu}}
  template:
    metadata: {labels: {app: gpu}}
    spec:
      containers:
        - name: train
          image: docker.io/library/python:3.13
          resources: {limits: {cpu: "2", nvidia.com/gpu: "1"}}`},
	{"statefulset-container-false-overrides-pod", "pod-level runAsNonRoot: true, one container sets false (confidential)", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: sts, namespace: fraud}
spec:
  serviceName: sts
  selector: {matchLabels: {app: sts}}
  template:
    metadata: {labels: {app: sts}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: ok
          image: registry.onprem.example.internal/a:1
          resources: {limits: {cpu: 100m, memory: 64Mi}}
          securityContext: {readOnlyRootFilesystem: true}
        - name: root
          image: registry.onprem.example.internal/b:1
          resources: {limits: {cpu: 100m, memory: 64Mi}}
          securityContext: {readOnlyRootFilesystem: true, runAsNonRoot: false}`},
	{"job-own-label-restricted-in-internal", "a Job labelled restricted in the internal Namespace: the object's label wins", `
apiVersion: batch/v1
kind: Job
metadata: {name: export, namespace: risk, labels: {strata.dev/sensitivity: restricted}}
spec:
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true}
      containers:
        - name: export
          image: quay.io/acme/export:2
          resources: {limits: {cpu: 100m, memory: 64Mi}}
          securityContext: {readOnlyRootFilesystem: true}`},
	{"daemonset-five-policies", "one object that five policies deny at once (restricted Namespace)", `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everything-wrong, namespace: ledger}
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
        - name: agent
          image: docker.io/acme/agent:1
          env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}]
          volumeMounts: [{name: host, mountPath: /host}]
      volumes:
        - {name: host, hostPath: {path: /var/lib}}`},
	{"cronjob-all-compliant-restricted", "a restricted CronJob that every policy accepts", `
apiVersion: batch/v1
kind: CronJob
metadata: {name: close, namespace: ledger}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          securityContext: {runAsNonRoot: true}
          containers:
            - name: close
              image: registry.onprem.example.internal/finance-ai/close:1
              resources: {limits: {cpu: 500m, memory: 256Mi}}
              securityContext: {readOnlyRootFilesystem: true}
          volumes:
            - {name: tmp, emptyDir: {}}`},
}
