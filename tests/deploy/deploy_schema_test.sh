#!/usr/bin/env bash
# Renders every Kustomize directory under deploy/ and validates each object against the
# Kubernetes API offline (validate_k8s.mjs: JSON schemas from kubernetes-models, unknown fields
# from a round trip through @kubernetes/client-node's typed models).
# Usage: deploy_schema_test.sh SOURCE_DIR TOOLS_DIR. Exit 77 (skipped) without a renderer.
set -uo pipefail
source_dir=$1 tools=$2
if command -v kubectl >/dev/null; then render=(kubectl kustomize)
elif command -v kustomize >/dev/null; then render=(kustomize build)
else echo "skipped: neither kubectl nor kustomize is on PATH: cannot render deploy/"; exit 77; fi
for module in kubernetes-models @kubernetes-models/prometheus-operator @kubernetes-models/cert-manager @kubernetes/client-node js-yaml; do
  if [ ! -f "$tools/node_modules/$module/package.json" ]; then
    echo "FAIL: $module is not installed in $tools (scripts/setup.sh installs it)"; exit 1
  fi
done
failed=0 count=0
while IFS= read -r kustomization; do
  dir=$(dirname "$kustomization")
  label=${dir#"$source_dir"/}
  rendered=$("${render[@]}" "$dir" 2>&1) || { echo "FAIL: $label does not render: $rendered"; failed=1; continue; }
  node "$source_dir/tests/deploy/validate_k8s.mjs" "$tools" "$label" <<<"$rendered" || failed=1
  count=$((count + 1))
done < <(find "$source_dir/deploy" -name kustomization.yaml | sort)
[ "$count" -gt 0 ] || { echo "FAIL: no kustomization.yaml under $source_dir/deploy"; exit 1; }
exit "$failed"
