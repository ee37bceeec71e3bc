{{/* The name of every object: the release name, "portcullis" by default. */}}
{{- define "portcullis.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "portcullis.labels" -}}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels that select the pods. */}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: portcullis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Fails rendering on values that cannot work. */}}
{{- define "portcullis.validate" -}}
{{- if not (has .Values.shape (list "sidecar" "gateway" "issuer")) -}}
{{- fail (printf "shape %q: want sidecar, gateway or issuer" .Values.shape) -}}
{{- end -}}
{{- if not .Values.config -}}
{{- fail "config is empty: set it to portcullis' configuration file (see values-*.yaml beside the chart)" -}}
{{- end -}}
{{- if not .Values.resources.limits.memory -}}
{{- fail "resources.limits.memory is required: GOMEMLIMIT is taken from it" -}}
{{- end -}}
{{- end -}}
