{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "passport.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> unless the release name already contains the chart name.
*/}}
{{- define "passport.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: <chart>-<version>.
*/}}
{{- define "passport.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the DaemonSet's pods; never change them on upgrade.
*/}}
{{- define "passport.selectorLabels" -}}
app.kubernetes.io/name: {{ include "passport.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "passport.labels" -}}
helm.sh/chart: {{ include "passport.chart" . }}
{{ include "passport.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Service account name.
*/}}
{{- define "passport.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "passport.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference.
*/}}
{{- define "passport.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Namespaces never traced: kube-system and the release's namespace (where the agent itself runs),
unless the operator named them in selection.namespaces, plus selection.excludeNamespaces.
*/}}
{{- define "passport.excludeNamespaces" -}}
{{- $named := .Values.selection.namespaces }}
{{- $out := list }}
{{- range (list "kube-system" .Release.Namespace) }}
{{- if not (has . $named) }}{{ $out = append $out . }}{{ end }}
{{- end }}
{{- range .Values.selection.excludeNamespaces }}{{ $out = append $out . }}{{ end }}
{{- toJson (uniq $out) }}
{{- end }}

{{/*
Stops the render when nothing is selected: the agent must never trace a whole node by default.
*/}}
{{- define "passport.checkSelection" -}}
{{- $s := .Values.selection }}
{{- $a := .Values.agent }}
{{- $k8s := or $s.namespaces $s.labels $s.workloads }}
{{- if not (or $k8s $a.exe $a.port) }}
{{- fail "passport: nothing selected. Name what to trace with at least one of selection.namespaces, selection.labels, selection.workloads, agent.exe or agent.port (e.g. --set 'selection.namespaces={shop}'); the chart never traces every process of a node by default" }}
{{- end }}
{{- if and (eq $a.k8sApi "off") (or $k8s $s.excludeLabels $s.excludeWorkloads $s.noInjectNamespaces) }}
{{- fail "passport: selection.namespaces, labels, workloads, excludeLabels, excludeWorkloads and noInjectNamespaces need pod metadata from the API server: set agent.k8sApi to auto" }}
{{- end }}
{{- if and (eq $a.k8sApi "auto") (not .Values.rbac.create) (not .Values.serviceAccount.name) }}
{{- fail "passport: agent.k8sApi auto needs RBAC: keep rbac.create true, or name a serviceAccount.name bound to a ClusterRole that can get/list/watch pods, namespaces and workloads" }}
{{- end }}
{{- end }}

{{/*
The daemon address written to the config file (hostIP mode uses the environment instead).
*/}}
{{- define "passport.daemonAddress" -}}
{{- $x := .Values.xrayDaemon }}
{{- if eq $x.mode "address" }}
{{- required "xrayDaemon.address is required when xrayDaemon.mode is address" $x.address }}
{{- else if eq $x.mode "sidecar" }}
{{- printf "127.0.0.1:%d" (int $x.port) }}
{{- end }}
{{- end }}

{{/*
The agent's config file, /etc/passport/passport.yaml. Keys are the agent's long flags without
"--", dashes as underscores; lists for repeatable flags; "--no-X" as "X: false".
*/}}
{{- define "passport.config" -}}
{{- include "passport.checkSelection" . }}
{{- $a := .Values.agent }}
{{- $s := .Values.selection }}
{{- $c := dict "metrics_address" (printf "0.0.0.0:%d" (int .Values.metrics.port))
      "log_format" $a.logFormat "summary_interval" $a.summaryInterval
      "sampling_rules" "/etc/passport/sampling-rules.json" "k8s_api" $a.k8sApi
      "max_connections" $a.maxConnections "memory_budget_mb" $a.memoryBudgetMb
      "ringbuf_mb" $a.ringbufMb }}
{{- if eq $a.k8sApi "auto" }}
{{- $_ := set $c "k8s_exclude_namespace" (include "passport.excludeNamespaces" . | fromJsonArray) }}
{{- end }}
{{- with $s.namespaces }}{{ $_ := set $c "k8s_namespace" . }}{{ end }}
{{- with $s.workloads }}{{ $_ := set $c "k8s_workload" . }}{{ end }}
{{- with $s.excludeWorkloads }}{{ $_ := set $c "k8s_exclude_workload" . }}{{ end }}
{{- with $s.noInjectNamespaces }}{{ $_ := set $c "k8s_no_inject_namespace" . }}{{ end }}
{{- with $s.labels }}{{ $_ := set $c "k8s_label" (include "passport.labelList" . | fromJsonArray) }}{{ end }}
{{- with $s.excludeLabels }}{{ $_ := set $c "k8s_exclude_label" (include "passport.labelList" . | fromJsonArray) }}{{ end }}
{{- with $a.exe }}{{ $_ := set $c "exe" . }}{{ end }}
{{- with $a.port }}{{ $_ := set $c "port" . }}{{ end }}
{{- with $a.serviceName }}{{ $_ := set $c "service_name" . }}{{ end }}
{{- $i := .Values.identity }}
{{- with $i.clusterName }}{{ $_ := set $c "cluster_name" . }}{{ end }}
{{- if ne $i.imds "v2" }}{{ $_ := set $c "imds" $i.imds }}{{ end }}
{{- with $i.runtimeSockets }}
{{- $sockets := list }}{{ range . }}{{ $sockets = append $sockets (printf "/host%s" .) }}{{ end }}
{{- $_ := set $c "runtime_socket" $sockets }}
{{- end }}
{{- with $i.serviceNameOverrides }}{{ $_ := set $c "service_name_override" (include "passport.labelList" . | fromJsonArray) }}{{ end }}
{{- with $a.injectDeny }}{{ $_ := set $c "inject_deny" . }}{{ end }}
{{- if not $a.inject }}{{ $_ := set $c "inject" false }}{{ end }}
{{- if not $a.tls }}{{ $_ := set $c "tls" false }}{{ end }}
{{- with include "passport.daemonAddress" . }}{{ $_ := set $c "daemon_address" . }}{{ end }}
{{- range $k, $v := $a.extraConfig }}
{{- if hasKey $c $k }}
{{- fail (printf "agent.extraConfig.%s: the chart sets this key from its own values; set it there" $k) }}
{{- end }}
{{- $_ := set $c $k $v }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/*
The sampling rules file, /etc/passport/sampling-rules.json.
*/}}
{{- define "passport.samplingRules" -}}
{{- toPrettyJson .Values.sampling }}
{{- end }}

{{/*
An X-Ray daemon container (AWS X-Ray daemon flags:
https://docs.aws.amazon.com/xray/latest/devguide/xray-daemon-configuration.html).
"hostPort" in the argument dict publishes its port on the node.
*/}}
{{- define "passport.xrayDaemonContainer" -}}
{{- $x := .root.Values.xrayDaemon -}}
- name: xray-daemon
  image: {{ printf "%s:%s" $x.image.repository $x.image.tag | quote }}
  imagePullPolicy: {{ $x.image.pullPolicy }}
  # After the image's entrypoint (the daemon); a flag given twice takes its last value.
  args:
    - {{ printf "--bind=%s:%d" .bind (int $x.port) | quote }}
    - {{ printf "--bind-tcp=%s:%d" .bind (int $x.port) | quote }}
    {{- with $x.region }}
    - {{ printf "--region=%s" . | quote }}
    {{- end }}
  ports:
    - name: xray-udp
      containerPort: {{ $x.port }}
      protocol: UDP
      {{- if .hostPort }}
      hostPort: {{ $x.port }}
      {{- end }}
    - name: xray-tcp
      containerPort: {{ $x.port }}
      protocol: TCP
      {{- if .hostPort }}
      hostPort: {{ $x.port }}
      {{- end }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop:
        - ALL
  {{- with $x.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
Capabilities of the agent container when not privileged (docs/deploy.md says why each).
*/}}
{{- define "passport.capabilities" -}}
{{- $caps := list "BPF" "PERFMON" "SYS_PTRACE" "NET_ADMIN" "DAC_READ_SEARCH" "CHECKPOINT_RESTORE" }}
{{- if .Values.securityContext.sysResource }}{{ $caps = append $caps "SYS_RESOURCE" }}{{ end }}
{{- if .Values.securityContext.sysAdmin }}{{ $caps = append $caps "SYS_ADMIN" }}{{ end }}
{{- toYaml $caps }}
{{- end }}

{{/*
Labels of the X-Ray daemon's pods: a name of their own, so that neither the agent's DaemonSet
nor its metrics Service selects them.
*/}}
{{- define "passport.xrayDaemonSelectorLabels" -}}
app.kubernetes.io/name: {{ include "passport.name" . }}-xray-daemon
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "passport.xrayDaemonLabels" -}}
helm.sh/chart: {{ include "passport.chart" . }}
{{ include "passport.xrayDaemonSelectorLabels" . }}
app.kubernetes.io/component: xray-daemon
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
A label map as the agent's KEY=VALUE list (JSON), keys sorted.
*/}}
{{- define "passport.labelList" -}}
{{- $out := list }}
{{- range $k, $v := . }}{{ $out = append $out (printf "%s=%s" $k $v) }}{{ end }}
{{- toJson $out }}
{{- end }}
