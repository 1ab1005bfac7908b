{{- /* The chart's name, as in labels: nameOverride or "vaultsync". */ -}}
{{- define "vaultsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /*
The prefix of every object this release creates: fullnameOverride, else the
release name when it already contains the chart's name (release `vaultsync`
gives `vaultsync`), else RELEASE-NAME. Two releases never share a name.
*/ -}}
{{- define "vaultsync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "vaultsync.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- /* The ServiceAccount the operator runs as. */ -}}
{{- define "vaultsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vaultsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* The leader-election Lease, one per release. */ -}}
{{- define "vaultsync.leaseName" -}}
{{- printf "%s-leader" (include "vaultsync.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vaultsync.labels" -}}
{{ include "vaultsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "vaultsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaultsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /*
The budget of a PodDisruptionBudget, or nothing when no budget could ever
be met: a PDB that allows no disruption at all blocks every node drain
(`kubectl drain`, cluster upgrades, autoscaler scale-downs) for as long as
it exists, which is worse than having none. Called with a dict of
`replicas`, `minAvailable` and `maxUnavailable` (minAvailable wins when
set; each an integer or a percentage). Percentages are rounded up, as the
disruption controller rounds them, so "50%" of 1 replica needs 1 and
allows no eviction.
*/ -}}
{{- define "vaultsync.pdbBudget" -}}
{{- $replicas := int .replicas -}}
{{- $min := ternary "" (toString .minAvailable) (kindIs "invalid" .minAvailable) -}}
{{- $max := ternary "" (toString .maxUnavailable) (kindIs "invalid" .maxUnavailable) -}}
{{- if gt $replicas 0 -}}
{{- if ne $min "" -}}
{{- $needed := 0 -}}
{{- if hasSuffix "%" $min -}}
{{- $needed = int (ceil (divf (mul $replicas (atoi (trimSuffix "%" $min))) 100)) -}}
{{- else -}}
{{- $needed = atoi $min -}}
{{- end -}}
{{- if lt $needed $replicas -}}
minAvailable: {{ ternary ($min | quote) $min (hasSuffix "%" $min) }}
{{- end -}}
{{- else if ne $max "" -}}
{{- $allowed := 0 -}}
{{- if hasSuffix "%" $max -}}
{{- $allowed = int (ceil (divf (mul $replicas (atoi (trimSuffix "%" $max))) 100)) -}}
{{- else -}}
{{- $allowed = atoi $max -}}
{{- end -}}
{{- if gt $allowed 0 -}}
maxUnavailable: {{ ternary ($max | quote) $max (hasSuffix "%" $max) }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- /*
The timings of a probe (initialDelaySeconds, periodSeconds, timeoutSeconds,
failureThreshold), from the values map named for it; indented by the caller.
*/ -}}
{{- define "vaultsync.probeTimings" -}}
{{- range $key := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "failureThreshold" }}
{{- if hasKey $.probe $key }}
{{ $key }}: {{ int (get $.probe $key) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Labels of the metrics Service, which the ServiceMonitor selects by:
the component label keeps it from also matching the injector's Service,
which carries the release's labels too. */ -}}
{{- define "vaultsync.metricsLabels" -}}
{{ include "vaultsync.selectorLabels" . }}
app.kubernetes.io/component: metrics
{{- end }}

{{- /* A Go duration ("1m30s", "15s", "500ms") in milliseconds; the schema
has checked its form. */ -}}
{{- define "vaultsync.durationMs" -}}
{{- $units := dict "ns" 0.000001 "us" 0.001 "µs" 0.001 "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" (toString .) -1 -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $total = addf $total (mulf (float64 $number) (get $units (trimPrefix $number .))) -}}
{{- end -}}
{{- $total -}}
{{- end }}

{{- /* The Lease timings must be ordered as `vaultsync run` demands
(retryPeriod < renewDeadline < leaseDuration, retryPeriod above 0); said
at install time rather than by a crash-looping operator. */ -}}
{{- define "vaultsync.checkLeaseTimings" -}}
{{- $le := .Values.leaderElection -}}
{{- $lease := float64 (include "vaultsync.durationMs" $le.leaseDuration) -}}
{{- $renew := float64 (include "vaultsync.durationMs" $le.renewDeadline) -}}
{{- $retry := float64 (include "vaultsync.durationMs" $le.retryPeriod) -}}
{{- if not (lt $renew $lease) -}}
{{- fail (printf "leaderElection.renewDeadline (%s) must be shorter than leaderElection.leaseDuration (%s)" $le.renewDeadline $le.leaseDuration) -}}
{{- end -}}
{{- if or (le $retry 0.0) (not (lt $retry $renew)) -}}
{{- fail (printf "leaderElection.retryPeriod (%s) must be above zero and shorter than leaderElection.renewDeadline (%s)" $le.retryPeriod $le.renewDeadline) -}}
{{- end -}}
{{- end }}

{{/*
The API group of an apiVersion: "" for "v1", "argoproj.io" for
"argoproj.io/v1alpha1".
*/}}
{{- define "vaultsync.apiGroup" -}}
{{- if contains "/" . }}{{ index (splitList "/" .) 0 }}{{ end -}}
{{- end }}

{{/*
genericTargets as --generic-target takes them: apiVersion/Kind, comma-separated.
*/}}
{{- define "vaultsync.genericTargets" -}}
{{- $kinds := list }}
{{- range . }}{{ $kinds = append $kinds (printf "%s/%s" .apiVersion .kind) }}{{ end }}
{{- join "," $kinds }}
{{- end }}
