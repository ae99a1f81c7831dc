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

{{/* Labels that select the in-cluster Redis's pod (apart from the agents'). */}}
{{- define "api-guard.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-redis
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
{{- if regexMatch "(?m)^\\s*\\[\\s*cluster\\s*\\]" .Values.config -}}
{{- fail "config: put the [cluster] table in the `cluster` values, not in `config`" -}}
{{- end -}}
{{ .Values.config | trimSuffix "\n" }}

[xdp]
interfaces = {{ .Values.xdp.interfaces | toJson }}
mode = {{ .Values.xdp.mode | toJson }}
pin = {{ .Values.xdp.pin | ternary "true" "false" }}
{{- if .Values.cluster.enabled }}

[cluster]
redis_url = {{ include "api-guard.redisUrl" . | toJson }}
{{- if include "api-guard.redisSecret" . }}
password_file = "/etc/api-guard/redis/password"
{{- end }}
{{- if .Values.cluster.caSecret }}
ca_file = "/etc/api-guard/redis-ca/ca.crt"
{{- end }}
{{- end }}
{{- end -}}

{{/* Redis URL of cluster mode: the external one, or the in-cluster Redis's Service. */}}
{{- define "api-guard.redisUrl" -}}
{{- if .Values.cluster.redisUrl -}}
{{- if or (not (regexMatch "^rediss?://[^/]" .Values.cluster.redisUrl)) (regexMatch "^rediss?://[^/@]*:[^/@]*@" .Values.cluster.redisUrl) -}}
{{- fail "cluster.redisUrl must be redis://host:port or rediss://host:port, without a password" -}}
{{- end -}}
{{- .Values.cluster.redisUrl -}}
{{- else if .Values.cluster.inClusterRedis.enabled -}}
{{- printf "redis://%s-redis.%s.svc:6379" (include "api-guard.fullname" .) .Release.Namespace -}}
{{- else -}}
{{- fail "cluster.enabled needs cluster.redisUrl or cluster.inClusterRedis.enabled" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the Redis password ("" when none). */}}
{{- define "api-guard.redisSecret" -}}
{{- if .Values.cluster.existingSecret -}}
{{- .Values.cluster.existingSecret -}}
{{- else if .Values.cluster.password -}}
{{- printf "%s-redis" (include "api-guard.fullname" .) -}}
{{- end -}}
{{- end -}}
