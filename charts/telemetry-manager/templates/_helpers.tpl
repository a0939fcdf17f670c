{{- define "tm.name" -}}telemetry-manager{{- end -}}

{{- define "tm.labels" -}}
app.kubernetes.io/name: telemetry-manager
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: telemetry
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tm.selector" -}}
app.kubernetes.io/name: telemetry-manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tm.metadata" -}}
labels:
  {{- include "tm.labels" . | nindent 2 }}
{{- with .Values.extraAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "tm.targetNamespace" -}}
{{- default .Release.Namespace .Values.gateway.targetNamespace -}}
{{- end -}}
