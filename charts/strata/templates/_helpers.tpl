{{/*
Names shared with strata's code (internal/labels, webhook/install.go); the
chart tests in charts/charttest check them against the Go constants.
*/}}
{{- define "strata.namespace" -}}strata-system{{- end -}}
{{- define "strata.webhookPath" -}}/validate{{- end -}}
{{- define "strata.hookPath" -}}/hook{{- end -}}
{{- define "strata.clusterSecretPrefix" -}}strata-cluster-{{- end -}}
{{- define "strata.webhookConfigurationName" -}}strata-validate{{- end -}}
{{- define "strata.webhookName" -}}validate.strata.dev{{- end -}}
{{- define "strata.leaseName" -}}strata-reconciler-{{ .Values.environment }}{{- end -}}

{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" . }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: strata
{{- end }}

{{/* Component names and labels: include with (dict "ctx" . "component" "webhook"). */}}
{{- define "strata.componentName" -}}
{{ include "strata.fullname" .ctx }}-{{ .component }}
{{- end }}

{{- define "strata.componentLabels" -}}
{{ include "strata.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.componentSelectorLabels" -}}
{{ include "strata.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end }}

{{- define "strata.webhookServiceName" -}}
{{ include "strata.componentName" (dict "ctx" . "component" "webhook") }}
{{- end }}

{{- define "strata.webhookTLSSecretName" -}}
{{ include "strata.componentName" (dict "ctx" . "component" "webhook") }}-tls
{{- end }}

{{- /* The Secret where the webhook keeps the CA and serving certificate it issues itself. */}}
{{- define "strata.webhookCertsSecretName" -}}
{{ include "strata.componentName" (dict "ctx" . "component" "webhook") }}-certs
{{- end }}

{{- /* The DNS names of the webhook's Service, one per line. */}}
{{- define "strata.webhookDNSNames" -}}
{{- $svc := include "strata.webhookServiceName" . }}
{{- $ns := include "strata.namespace" . }}
{{ $svc }}
{{ $svc }}.{{ $ns }}
{{ $svc }}.{{ $ns }}.svc
{{ $svc }}.{{ $ns }}.svc.cluster.local
{{- end }}

{{- define "strata.webhookCluster" -}}
{{- if .Values.webhook.cluster -}}
{{ .Values.webhook.cluster }}
{{- else if and .Values.reconciler.enabled (eq .Values.reconciler.mode "agent") .Values.reconciler.self -}}
{{ .Values.reconciler.self }}
{{- else -}}
{{ .Values.webhook.tier }}
{{- end -}}
{{- end }}

{{- define "strata.hookSecretName" -}}
{{- if .Values.reconciler.hook.existingSecret -}}
{{ .Values.reconciler.hook.existingSecret }}
{{- else -}}
{{ include "strata.componentName" (dict "ctx" . "component" "reconciler") }}-hook
{{- end -}}
{{- end }}

{{- define "strata.hookSecretKey" -}}
{{- if .Values.reconciler.hook.existingSecret -}}
{{ .Values.reconciler.hook.existingSecretKey }}
{{- else -}}
secret
{{- end -}}
{{- end }}

{{- define "strata.configConfigMapName" -}}
{{- if .Values.existingConfigConfigMap -}}
{{ .Values.existingConfigConfigMap }}
{{- else -}}
{{ include "strata.fullname" . }}-config
{{- end -}}
{{- end }}

{{- define "strata.policiesConfigMapName" -}}
{{- if .Values.existingPoliciesConfigMap -}}
{{ .Values.existingPoliciesConfigMap }}
{{- else -}}
{{ include "strata.fullname" . }}-policies
{{- end -}}
{{- end }}

{{- define "strata.hasPolicies" -}}
{{- if or .Values.existingPoliciesConfigMap .Values.policies -}}true{{- end -}}
{{- end }}

{{/* Soft anti-affinity by hostname for a component, unless affinity is given. */}}
{{- define "strata.affinity" -}}
{{- if .affinity }}
{{- toYaml .affinity }}
{{- else }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "strata.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- end }}
{{- end }}
