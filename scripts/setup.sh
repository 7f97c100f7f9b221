#!/usr/bin/env bash
# Installs what the build, tests and demo need; safe to run again (installs only what is missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# Every line but the `image` ones (buildah, podman, mmdebstrap: scripts/image-test.sh installs them).
want=$(awk '!/^#/ && NF==2 && $1 != "image" {print $2}' "$here/packages.txt")

missing=()
for package in $want; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    # node/npm may come from outside apt on developer images; a working binary is enough.
    case "$package" in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged nginx/prometheus services must not hold ports: tests start their own on 127.0.0.1.
for service in nginx prometheus docker-registry; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then systemctl stop "$service" || true; fi
done
# Without systemd the package's postinst starts nginx from /etc/init.d; stop only that one
# (by its pid file), never the test servers of a run in progress.
if [ -s /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
if [ -s /var/run/docker-registry.pid ]; then kill "$(cat /var/run/docker-registry.pid)" 2>/dev/null || true; fi

# npm packages for the tests, into the project's own tools folder: s3rver (an S3 server) and
# the offline Kubernetes API models that validate deploy/ (kubernetes-models 5 needs Node 22: these versions run on Node 20),
# and the official Hugging Face client that checks the test Hub (tests/testing/hf_hub_server.mjs).
tools="$root/build/tools"
npm_packages=(s3rver@3 kubernetes-models@4.5.1 @kubernetes-models/prometheus-operator@4.4.4 @kubernetes-models/cert-manager@4.4.4 @kubernetes/client-node@1.4.0 @huggingface/hub@2.17.5)
npm_missing=()
for package in "${npm_packages[@]}"; do
  [ -f "$tools/node_modules/${package%@*}/package.json" ] || npm_missing+=("$package")
done
if [ ${#npm_missing[@]} -gt 0 ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --silent --no-audit --no-fund "${npm_packages[@]}" >/dev/null)
fi
echo "setup: ok"
