{{- define "vaultsync.labels" -}}
app.kubernetes.io/name: vaultsync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "vaultsync.selectorLabels" -}}
app.kubernetes.io/name: vaultsync
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
