#!/usr/bin/env bash
# The Helm chart test (ctest label `chart`): renders helm/passport with every values file in
# helm/passport/ci/ and validates each result; then proves that each check can fail.
#
#   tests/helm/chart_test.sh [BUILD_DIR]      (default build/; chart-render is built there)
#
# Rendering: chart-render (tests/helm/render), Helm's template engine, function library and
# values-schema validator built from Debian's Go packages (`helm` itself is not packaged).
# Validation of every render:
#   1. yamllint (tests/helm/yamllint.yaml): YAML syntax, duplicate keys, indentation, truthy;
#   2. validate_k8s.py: strict decoding into the Kubernetes API types (python3-kubernetes),
#      unknown fields rejected, required fields enforced;
#   3. npm/validate_models.mjs: the JSON schemas of the Kubernetes API and of the Prometheus
#      Operator CRDs (kubernetes-models), types/patterns/enums/required;
#   4. check_chart.py: what the chart promises Passport (capabilities, mounts, probes, ...).
# Failure proofs: every values file in tests/helm/bad/ must be refused with its stated reason,
# and each deliberately broken copy of a template must be caught by the stage named for it.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build}
chart=$repo/helm/passport
work=$(mktemp -d "${TMPDIR:-/tmp}/passport-chart-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

[[ -d $here/npm/node_modules/kubernetes-models ]] || {
  echo "chart_test: $here/npm/node_modules missing: run .ci/install-deps.sh" >&2; exit 1; }
"$here/build-renderer.sh" "$build/chart-render" || { echo "chart_test: chart-render did not build" >&2; exit 1; }
render=$build/chart-render/chart-render
# monitoring.coreos.com/v1 as served by a cluster with the Prometheus Operator's CRDs.
render_args=(-n passport -r passport -a monitoring.coreos.com/v1)

# validate FILE...: runs the four stages; prints the first stage that fails.
validate() {
  yamllint -s -c "$here/yamllint.yaml" "$@" >&2 || { echo yamllint; return 1; }
  /usr/bin/python3 "$here/validate_k8s.py" "$@" >&2 || { echo validate_k8s; return 1; }
  node "$here/npm/validate_models.mjs" "$@" >&2 || { echo validate_models; return 1; }
  /usr/bin/python3 "$here/check_chart.py" "$repo" "$@" >&2 || { echo check_chart; return 1; }
}

good_values() {
  local rendered=() f out
  if yamllint -s -c "$here/yamllint.yaml" "$chart/values.yaml" "$chart"/ci/*.yaml "$here"/bad/*.yaml; then
    pass "values files pass yamllint"
  else
    fail "values files fail yamllint"
  fi
  for f in "$chart"/ci/*.yaml; do
    out=$work/$(basename "$f" .yaml).rendered.yaml
    if "$render" "${render_args[@]}" -notes "$work/$(basename "$f" .yaml).notes" -f "$f" "$chart" >"$out"; then
      rendered+=("$out")
    else
      fail "render ci/$(basename "$f")"
    fi
  done
  ((${#rendered[@]})) || return
  # Least privilege: SYS_ADMIN and privileged only where a values file asks for them.
  local r name has
  for r in "${rendered[@]}"; do
    name=${r##*/}
    case $name in
      sys-admin-values.rendered.yaml) has='- SYS_ADMIN' ;;
      privileged-values.rendered.yaml) has='privileged: true' ;;
      *) has='' ;;
    esac
    if [[ -n $has ]] && grep -q -- "$has" "$r"; then
      pass "$name has '$has'"
    elif [[ -z $has ]] && ! grep -q -e 'SYS_ADMIN' -e 'privileged: true' "$r"; then
      pass "$name: no SYS_ADMIN, not privileged"
    else
      fail "$name: SYS_ADMIN/privileged not as its values file asks"
    fi
  done
  local stage
  if stage=$(validate "${rendered[@]}"); then
    pass "${#rendered[@]} ci values files rendered and valid"
  else
    fail "ci renders rejected by $stage"
  fi
}

bad_values() {
  local f want err
  for f in "$here"/bad/*.yaml; do
    want=$(sed -n '1s/^# expect: //p' "$f")
    if err=$("$render" -n passport -r passport -f "$f" "$chart" 2>&1 >/dev/null); then
      fail "bad/$(basename "$f") rendered"
    elif [[ -n $want && $err == *"$want"* ]]; then
      pass "bad/$(basename "$f") refused: $want"
    else
      fail "bad/$(basename "$f") refused for another reason: $err"
    fi
  done
}

# broken STAGE FILE SED_EXPR DESCRIPTION: a copy of the chart with one template edited must
# fail exactly at STAGE (render = chart-render itself).
broken() {
  local stage=$1 file=$2 expr=$3 what=$4 copy=$work/broken-chart got
  rm -rf "$copy" && cp -r "$chart" "$copy"
  sed -i "$expr" "$copy/templates/$file"
  if cmp -s "$chart/templates/$file" "$copy/templates/$file"; then
    fail "broken template ($what): the edit did not apply"
    return
  fi
  if ! "$render" "${render_args[@]}" -f "$chart/ci/default-values.yaml" "$copy" >"$work/broken.yaml" 2>"$work/broken.err"; then
    got=render
  else
    got=$(validate "$work/broken.yaml" 2>/dev/null) && got=none
  fi
  if [[ $got == "$stage" ]]; then
    pass "broken template ($what) caught by $stage"
  else
    fail "broken template ($what) caught by '$got', expected $stage"
  fi
}

broken_templates() {
  broken render daemonset.yaml 's/{{- if .Values.metrics.podAnnotations }}/{{- if .Values.metrics.podAnnotations }/' "unclosed action"
  broken render daemonset.yaml 's/\.Values\.metrics\.port | quote/.Values.metrics.prot | quote/' "missing value key"
  broken yamllint daemonset.yaml 's/^\(  *\)readOnlyRootFilesystem: true$/&\n\1readOnlyRootFilesystem: false/' "duplicate key"
  broken validate_k8s daemonset.yaml 's/hostPID: true/hostPid: true/' "unknown pod field"
  broken validate_k8s configmap.yaml 's/^data:/date:/' "unknown ConfigMap field"
  broken validate_k8s daemonset.yaml 's/containerPort: {{ .Values.metrics.port }}/containerPort: {{ .Values.metrics.port | quote }}/' "port as a string"
  broken validate_models daemonset.yaml '0,/port: metrics$/s//port: true/' "probe port neither a number nor a name"
  broken check_chart daemonset.yaml 's/^\(  *\)- ALL$/\1- NET_RAW/' "capabilities not dropped"
  broken check_chart daemonset.yaml 's/path: \/readyz/path: \/healthz/' "readiness on the wrong path"
  broken check_chart daemonset.yaml 's/mountPath: \/host\/sys\/fs\/cgroup/mountPath: \/sys\/fs\/cgroup/' "cgroup root at the wrong path"
}

checksum_of() {
  "$render" "${render_args[@]}" -f "$chart/ci/default-values.yaml" "$@" "$chart" | sed -n 's/^ *checksum\/config: //p'
}

checksum_rolls() {
  printf 'sampling:\n  version: 2\n  default:\n    fixed_target: 1\n    rate: 0.5\n  rules: []\n' >"$work/sampling.yaml"
  printf 'resources:\n  requests:\n    cpu: 200m\n' >"$work/resources.yaml"
  local base sampling resources
  base=$(checksum_of) sampling=$(checksum_of -f "$work/sampling.yaml") resources=$(checksum_of -f "$work/resources.yaml")
  if [[ -n $base && $base != "$sampling" ]]; then
    pass "a changed sampling rule changes checksum/config"
  else
    fail "checksum/config did not change with the sampling rules"
  fi
  if [[ -n $base && $base == "$resources" ]]; then
    pass "checksum/config ignores values outside the ConfigMap"
  else
    fail "checksum/config changed without a config change"
  fi
}

# The renderer itself: a fixture chart using each Helm function the renderer implements must
# render exactly as Helm renders it.
renderer_fixture() {
  local fx=$here/fixture
  if "$render" -n ns -r rel -f "$fx/override.yaml" -notes "$work/fixture.notes" "$fx/chart" >"$work/fixture.yaml" &&
    diff -u "$fx/expected.yaml" "$work/fixture.yaml" && diff -u "$fx/expected-notes.txt" "$work/fixture.notes"; then
    pass "renderer fixture renders as Helm does"
  else
    fail "renderer fixture differs from Helm's output"
  fi
}

renderer_fixture
good_values
bad_values
broken_templates
checksum_rolls
echo "chart: $passed passed, $failed failed"
((failed == 0))
