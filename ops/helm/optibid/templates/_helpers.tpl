{{- define "optibid.labels" -}}
app.kubernetes.io/name: optibid
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pods of one component: what Services, PDBs and policies select. */}}
{{- define "optibid.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "optibid.image" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- end -}}

{{/* Settings from the ConfigMap, secrets from the Secret, then the extras. */}}
{{- define "optibid.env" -}}
envFrom:
  - configMapRef:
      name: {{ .Release.Name }}-settings
  - secretRef:
      name: {{ .Values.existingSecret }}
  {{- with .Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* env: the metrics endpoint scraped from outside the pod, then extraEnv. */}}
{{- define "optibid.metricsEnv" -}}
env:
  - name: OPTIBID_METRICS_HOST
    value: "0.0.0.0"
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/*
Pod-level settings of every pod: Pod Security Standard "restricted", no API token (no role
talks to Kubernetes), and no service links (they would put variables such as
OPTIBID_API_PORT=tcp://... for a Service named optibid-api into the settings' namespace).
*/}}
{{- define "optibid.podSpec" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "optibid.containerSecurity" -}}
securityContext: {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/* The writable folders of a read-only root: /tmp, the state folder, the extras. */}}
{{- define "optibid.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: state
    mountPath: {{ .root.Values.state.mountPath }}
  {{- with .root.Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "optibid.volumes" -}}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: {{ .root.Values.tmp.sizeLimit }}}
  - name: state
    {{- if .stateful }}
    # RocksDB tables: restored from their changelog topics when empty
    emptyDir: {sizeLimit: {{ .root.Values.state.sizeLimit }}}
    {{- else }}
    emptyDir: {sizeLimit: {{ .root.Values.tmp.sizeLimit }}}
    {{- end }}
  {{- with .root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Startup, readiness and liveness probes: GET .path on .port (a container port name). */}}
{{- define "optibid.probes" -}}
{{- $probes := .root.Values.probes }}
startupProbe:
  httpGet: {path: {{ .path }}, port: {{ .port }}}
  {{- toYaml $probes.startup | nindent 2 }}
readinessProbe:
  httpGet: {path: {{ .path }}, port: {{ .port }}}
  {{- toYaml $probes.readiness | nindent 2 }}
livenessProbe:
  httpGet: {path: {{ .path }}, port: {{ .port }}}
  {{- toYaml $probes.liveness | nindent 2 }}
{{- end -}}

{{/* A component's PodDisruptionBudget. */}}
{{- define "optibid.pdb" -}}
{{- if .root.Values.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels: {{- include "optibid.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  maxUnavailable: {{ .root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels: {{- .selector | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A component's metrics Service and, when enabled, its ServiceMonitor. */}}
{{- define "optibid.monitoring" -}}
{{- if .service }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .root.Release.Name }}-{{ .component }}-metrics
  labels: {{- include "optibid.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  type: ClusterIP
  clusterIP: None   # scraped pod by pod
  selector: {{- include "optibid.selector" . | nindent 4 }}
  ports:
    - name: {{ .port }}
      port: {{ .number }}
      targetPort: {{ .port }}
{{- end }}
{{- if .root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .root.Release.Name }}-{{ .component }}
  labels: {{- include "optibid.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with .root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels: {{- include "optibid.selector" . | nindent 6 }}
  endpoints:
    - port: {{ .port }}
      path: /metrics
      interval: {{ .root.Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}
