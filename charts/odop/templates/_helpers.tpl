{{/* The release's base name: the release name when it already says odop. */}}
{{- define "odop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if contains "odop" .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-odop" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Deployment, RBAC and Lease name (52 + "-controller" stays within 63). */}}
{{- define "odop.controllerName" -}}
{{- printf "%s-controller" (include "odop.fullname" .) -}}
{{- end -}}

{{- define "odop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "odop.controllerName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "odop.podTemplatesName" -}}
{{- default (printf "%s-pod-templates" (include "odop.fullname" .)) .Values.podTemplate.name -}}
{{- end -}}

{{/* Selector labels never change after install: a Deployment's selector is immutable. */}}
{{- define "odop.selectorLabels" -}}
app.kubernetes.io/name: odop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "odop.labels" -}}
{{ include "odop.selectorLabels" . }}
app.kubernetes.io/part-of: odop
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The node agents' DaemonSet and ServiceAccount (52 + "-agent" stays within 63). */}}
{{- define "odop.agentName" -}}
{{- printf "%s-agent" (include "odop.fullname" .) -}}
{{- end -}}

{{/* The Service agents push to, in the release namespace. */}}
{{- define "odop.ingestName" -}}
{{- printf "%s-agents" (include "odop.controllerName" .) -}}
{{- end -}}

{{- define "odop.agentSelectorLabels" -}}
app.kubernetes.io/name: odop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "odop.agentLabels" -}}
{{ include "odop.agentSelectorLabels" . }}
app.kubernetes.io/part-of: odop
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
