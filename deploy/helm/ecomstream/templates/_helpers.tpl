{{/* Names: <release>-ecomstream unless the release is already called ecomstream. */}}
{{- define "ecomstream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of everything; pass (dict "ctx" $ "component" "ingester"). */}}
{{- define "ecomstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "ecomstream.selectorLabels" . }}
{{- end -}}

{{/* The component label is also the Prometheus job name (PodMonitor jobLabel). */}}
{{- define "ecomstream.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "ecomstream.image" -}}
{{- printf "%s/%s:%s" .ctx.Values.image.repository .component (.ctx.Values.image.tag | default .ctx.Chart.AppVersion) -}}
{{- end -}}

{{- define "ecomstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "ecomstream.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "ecomstream.s3URL" -}}
{{- printf "s3://%s/%s" (required "source.s3.bucket is required in s3 mode" .Values.source.s3.bucket) .Values.source.s3.prefix -}}
{{- end -}}

{{- define "ecomstream.claimName" -}}
{{- .Values.source.volume.existingClaim | default (printf "%s-data" (include "ecomstream.fullname" .)) -}}
{{- end -}}

{{/* Values the chart refuses, with the reason. */}}
{{- define "ecomstream.validate" -}}
{{- if not (has .Values.source.mode (list "s3" "volume")) -}}
{{- fail (printf "source.mode must be s3 or volume, not %q" .Values.source.mode) -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "autoscaling: enable keda or hpa, not both (two autoscalers would fight over the ingester's replicas)" -}}
{{- end -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) -}}
{{- fail "database.url or database.existingSecret is required" -}}
{{- end -}}
{{- if and (eq .Values.onSuccess "keep") (ne .Values.source.mode "s3") -}}
{{- fail "onSuccess: keep needs source.mode s3 (a kept file in a directory would be read again)" -}}
{{- end -}}
{{- $grace := include "ecomstream.seconds" .Values.ingester.shutdownGrace | int -}}
{{- if le (int .Values.ingester.terminationGracePeriodSeconds) $grace -}}
{{- fail (printf "ingester.terminationGracePeriodSeconds (%v) must be longer than ingester.shutdownGrace (%s), or the kubelet kills a batch's rollback" .Values.ingester.terminationGracePeriodSeconds .Values.ingester.shutdownGrace) -}}
{{- end -}}
{{- end -}}

{{/* Whole seconds of a duration written as 20s, 2m or 1m30s (rounded up). */}}
{{- define "ecomstream.seconds" -}}
{{- $d := toString . -}}
{{- $total := 0.0 -}}
{{- range $part := regexFindAll "[0-9.]+(ms|h|m|s)" $d -1 -}}
{{- $n := regexFind "^[0-9.]+" $part | float64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9.]+" $part) $part -}}
{{- if eq $unit "h" }}{{ $total = addf $total (mulf $n 3600) }}{{ end -}}
{{- if eq $unit "m" }}{{ $total = addf $total (mulf $n 60) }}{{ end -}}
{{- if eq $unit "s" }}{{ $total = addf $total $n }}{{ end -}}
{{- if eq $unit "ms" }}{{ $total = addf $total (divf $n 1000) }}{{ end -}}
{{- end -}}
{{- if not (regexMatch "^([0-9.]+(ms|h|m|s))+$" $d) -}}
{{- fail (printf "%q is not a duration such as 20s, 2m or 1m30s" $d) -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end -}}

{{/* Pod-level settings every workload shares: no API token (none talks to the API
     server), pull secrets and the security context. The Deployments add the service
     account; the migration hook cannot name it (hooks run before it is created). */}}
{{- define "ecomstream.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Where pods run; pass (dict "v" .Values.ingester). */}}
{{- define "ecomstream.scheduling" -}}
{{- with .v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* "true" when a service (dict "ctx" $ "component" "ingester") has a login of its own
     (database.ingester / database.collector), else "". */}}
{{- define "ecomstream.ownLogin" -}}
{{- $own := index .ctx.Values.database .component | default dict -}}
{{- if or $own.url $own.existingSecret }}true{{ end -}}
{{- end -}}

{{/* "true" when a service connects with database.url from the chart's Secret. */}}
{{- define "ecomstream.sharedURLInSecret" -}}
{{- if not .Values.database.existingSecret -}}
{{- range $c := list "ingester" "collector" -}}
{{- if not (include "ecomstream.ownLogin" (dict "ctx" $ "component" $c)) }}true{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A service's DATABASE_URL (dict "ctx" $ "component" "ingester"): its own login's
     (from the user's Secret, or the chart's under DATABASE_URL_INGESTER), else
     database.url's (the user's Secret, or the chart's under DATABASE_URL). */}}
{{- define "ecomstream.databaseEnv" -}}
{{- $db := .ctx.Values.database }}
{{- $own := index $db .component | default dict }}
{{- $name := include "ecomstream.fullname" .ctx }}
{{- $key := "DATABASE_URL" }}
{{- if $own.existingSecret }}
{{- $name = $own.existingSecret }}
{{- $key = $own.existingSecretKey }}
{{- else if $own.url }}
{{- $key = printf "DATABASE_URL_%s" (upper .component) }}
{{- else if $db.existingSecret }}
{{- $name = $db.existingSecret }}
{{- $key = $db.existingSecretKey }}
{{- end }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $key }}
{{- end -}}

{{/* The AWS SDK's variables in s3 mode (read bare, without a service prefix); pass
     (dict "ctx" $ "component" "ingester"). The collector's keys are collector.s3's
     Secret when one is named (a list-only key), the generator's generator.s3's (a
     put-only key), else the ingesters'. */}}
{{- define "ecomstream.s3Env" -}}
{{- $ctx := .ctx }}
{{- if eq $ctx.Values.source.mode "s3" }}
{{- $s3 := $ctx.Values.source.s3 }}
{{- $keys := $s3 }}
{{- if and (has .component (list "collector" "generator")) (dig "s3" "existingSecret" "" (index $ctx.Values .component)) }}
{{- $keys = (index $ctx.Values .component).s3 }}
{{- end }}
- name: AWS_REGION
  value: {{ $s3.region | quote }}
{{- if $s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ $s3.endpoint | quote }}
{{- end }}
{{- if or $keys.existingSecret $keys.accessKeyId }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $keys.existingSecret | default (include "ecomstream.fullname" $ctx) }}
      key: {{ if $keys.existingSecret }}{{ $keys.accessKeyIdKey }}{{ else }}AWS_ACCESS_KEY_ID{{ end }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $keys.existingSecret | default (include "ecomstream.fullname" $ctx) }}
      key: {{ if $keys.existingSecret }}{{ $keys.secretAccessKeyKey }}{{ else }}AWS_SECRET_ACCESS_KEY{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The shared volume in volume mode: the pod's volumes and a container's mounts. */}}
{{- define "ecomstream.dataVolume" -}}
{{- if eq .Values.source.mode "volume" }}
volumes:
  - name: data
    persistentVolumeClaim:
      claimName: {{ include "ecomstream.claimName" . }}
{{- end }}
{{- end -}}
{{- define "ecomstream.dataMount" -}}
{{- if eq .Values.source.mode "volume" }}
volumeMounts:
  - name: data
    mountPath: /data
{{- end }}
{{- end -}}

{{/* A service's container: image, settings, probes, limits, security; pass
     (dict "ctx" $ "component" "ingester" "port" 8082 "v" .Values.ingester). */}}
{{- define "ecomstream.container" -}}
- name: {{ .component }}
  image: {{ include "ecomstream.image" . }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  ports:
    - name: http
      containerPort: {{ .port }}
      protocol: TCP
  envFrom:
    - configMapRef:
        name: {{ include "ecomstream.fullname" .ctx }}-{{ .component }}
  {{- $env := "" }}
  {{- if ne .component "generator" }}
  {{- $env = include "ecomstream.databaseEnv" (dict "ctx" .ctx "component" .component) }}
  {{- end }}
  {{- /* The collector lists the bucket too (the backlog): s3:ListBucket is all it needs. */}}
  {{- $env = print $env "\n" (include "ecomstream.s3Env" (dict "ctx" .ctx "component" .component) | trim) }}
  {{- with $env | trim }}
  env:
    {{- . | nindent 4 }}
  {{- end }}
  {{- with include "ecomstream.dataMount" .ctx | trim }}{{ . | nindent 2 }}{{ end }}
  # Start-up waits for PostgreSQL (up to INGESTER_DB_WAIT, 60 s) and migrates: two
  # minutes before the liveness probe may restart the container.
  startupProbe:
    httpGet: {path: /healthz, port: http}
    periodSeconds: 5
    failureThreshold: 24
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet: {path: /readyz, port: http}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  resources:
    {{- toYaml .v.resources | nindent 4 }}
  securityContext:
    {{- toYaml .ctx.Values.securityContext | nindent 4 }}
{{- end -}}

{{/* Pod template annotations: a settings change rolls the pods; plain scrape
     annotations unless a PodMonitor scrapes them. */}}
{{- define "ecomstream.podAnnotations" -}}
checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
checksum/secret: {{ include (print .ctx.Template.BasePath "/secret.yaml") .ctx | sha256sum }}
{{- if and .ctx.Values.monitoring.scrapeAnnotations (not .ctx.Values.monitoring.podMonitor.enabled) }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .ctx.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
