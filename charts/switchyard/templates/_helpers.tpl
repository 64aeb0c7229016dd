{{/*
Names, labels and the small computations that several templates share.
*/}}

{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name, cut at 50 characters so that "<fullname>-operator-metrics" and the like still
fit in 63.
*/}}
{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "switchyard.operatorName" -}}
{{- printf "%s-operator" (include "switchyard.fullname" .) }}
{{- end }}

{{- define "switchyard.gatewayName" -}}
{{- printf "%s-gateway" (include "switchyard.fullname" .) }}
{{- end }}

{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; pass (dict "root" $ "component" "gateway"). */}}
{{- define "switchyard.labels" -}}
helm.sh/chart: {{ include "switchyard.chart" .root }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "switchyard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: \"latest\" is not allowed; pin a version or set image.digest" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "switchyard.operatorServiceAccountName" -}}
{{- default (include "switchyard.operatorName" .) .Values.operator.serviceAccount.name }}
{{- end }}

{{- define "switchyard.gatewayServiceAccountName" -}}
{{- default (include "switchyard.gatewayName" .) .Values.gateway.serviceAccount.name }}
{{- end }}

{{/* "true" when the release watches every namespace (ClusterRoles), "" otherwise. */}}
{{- define "switchyard.clusterWide" -}}
{{- if not .Values.watchNamespaces }}true{{ end }}
{{- end }}

{{/* The watched namespaces, de-duplicated, as a list in JSON (fromJsonArray it back). */}}
{{- define "switchyard.watchNamespacesJson" -}}
{{- .Values.watchNamespaces | uniq | toJson }}
{{- end }}

{{- define "switchyard.defaultNamespace" -}}
{{- if .Values.gateway.defaultNamespace }}
{{- .Values.gateway.defaultNamespace }}
{{- else if .Values.watchNamespaces }}
{{- first .Values.watchNamespaces }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{/* Pod-level security context, shared by both Deployments. */}}
{{- define "switchyard.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "switchyard.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* Name of the Secret holding the gateway's inbound bearer tokens. */}}
{{- define "switchyard.authSecretName" -}}
{{- default (printf "%s-auth" (include "switchyard.gatewayName" .)) .Values.gateway.auth.existingSecret }}
{{- end }}

{{/* Name of a cluster-scoped object: the release namespace keeps two releases apart. */}}
{{- define "switchyard.clusterObjectName" -}}
{{- $full := printf "%s-%s-%s" .root.Release.Namespace (include "switchyard.fullname" .root) .suffix }}
{{- if le (len $full) 63 }}
{{- $full }}
{{- else }}
{{- /* Too long: cut, and keep names unique with a hash of the full one. */}}
{{- printf "%s-%s" ($full | trunc 54 | trimSuffix "-") ($full | sha256sum | trunc 8) }}
{{- end }}
{{- end }}

{{/*
The gateway's permissions in one watched namespace (or cluster-wide): read the rendered
ConfigMaps, the credential Secrets and the GatewayEndpoints that own the ConfigMaps, and
post Events. Nothing else: no write on any object it reads.
*/}}
{{- define "switchyard.gatewayRules" -}}
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get, list, watch]
- apiGroups: [switchyard.dev]
  resources: [gatewayendpoints]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
The operator's permissions in one watched namespace (or cluster-wide); the same rules as
docs/operator-rbac.yaml, which docs/operator.md explains one by one.
*/}}
{{- define "switchyard.operatorRules" -}}
# Reconcile GatewayEndpoints: Kopf patches its switchyard.dev/ annotations and the status.
- apiGroups: [switchyard.dev]
  resources: [gatewayendpoints]
  verbs: [get, list, watch, patch]
- apiGroups: [switchyard.dev]
  resources: [gatewayendpoints/status]
  verbs: [get, patch]
# The rendered ConfigMaps: create, replace, and list/watch with the managed-by selector so
# an edit, relabel or deletion by anyone else is repaired at once. No delete (the garbage
# collector deletes them with their endpoint, through the ownerReference).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update]
# Credential Secrets, watched with the switchyard.dev/credential=true selector (RBAC cannot
# restrict by label); nothing is ever written onto a Secret.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/*
The platform policy flags, the same for operator and gateway (one definition,
switchyard_schema/policy.py, checked in both): allowed baseUrl hosts and env keys bound to
the hosts their value may be sent to. operator.allowedBaseUrlHosts is the deprecated place.
*/}}
{{- define "switchyard.policyArgs" -}}
{{- $hosts := concat (.Values.allowedBaseUrlHosts | default list) (.Values.operator.allowedBaseUrlHosts | default list) | uniq }}
{{- with $hosts }}
- --allowed-base-url-hosts={{ join "," . }}
{{- end }}
{{- $pairs := list }}
{{- range $name, $bound := .Values.allowedEnvKeys }}
{{- $pairs = append $pairs (printf "%s=%s" $name (join "|" $bound)) }}
{{- end }}
{{- with $pairs }}
- --allowed-env-keys={{ join "," . }}
{{- end }}
- --signing-secret={{ .Release.Namespace }}/{{ include "switchyard.signingSecretName" . }}
{{- end }}

{{/* The Secret whose keys sign (operator) and verify (gateway) the rendered ConfigMaps. */}}
{{- define "switchyard.signingSecretName" -}}
{{- default (printf "%s-signing-key" (include "switchyard.fullname" .)) .Values.signing.existingSecret }}
{{- end }}

{{/* `get` on the signing-key Secret only: a Role in the release namespace. */}}
{{- define "switchyard.signingKeyRule" -}}
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [{{ include "switchyard.signingSecretName" . | quote }}]
  verbs: [get]
{{- end }}

{{- define "switchyard.leaseName" -}}
{{- default (include "switchyard.operatorName" .) .Values.operator.leaderElection.leaseName }}
{{- end }}
