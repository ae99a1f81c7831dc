{{/* Name of every object. */}}
{{- define "api-guard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the agent's pods. */}}
{{- define "api-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "api-guard.labels" -}}
{{ include "api-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The whole configuration file: `config` plus the [xdp] table from `xdp`. */}}
{{- define "api-guard.config" -}}
{{- if regexMatch "(?m)^\\s*\\[\\s*xdp\\s*\\]" .Values.config -}}
{{- fail "config: put the [xdp] table in the `xdp` values (interfaces, mode, pin), not in `config`" -}}
{{- end -}}
{{- range .Values.xdp.interfaces -}}
{{- if not (regexMatch "^[A-Za-z0-9_.:-]{1,15}$" (toString .)) -}}
{{- fail (printf "xdp.interfaces: %q is not an interface name" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- if not (has .Values.xdp.mode (list "auto" "native" "generic")) -}}
{{- fail "xdp.mode must be auto, native or generic" -}}
{{- end -}}
{{ .Values.config | trimSuffix "\n" }}

[xdp]
interfaces = {{ .Values.xdp.interfaces | toJson }}
mode = {{ .Values.xdp.mode | toJson }}
pin = {{ .Values.xdp.pin | ternary "true" "false" }}
{{- end -}}
