#!/usr/bin/env bash
# A short tour of one cluster on one machine: an origin (nginx) serving a generated model, a
# coordinator, and two node agents that share one cache folder (one volume, as two nodes
# mounting the same NFS export would). The admin enables caching for the model; a fetch through
# agent 1 fills the cache, a fetch through agent 2 is answered from the shared volume without
# touching the origin. Then `list`, `usage`, `nodes` and the daemons' metrics.
# Everything runs on 127.0.0.1 in a temp dir and is stopped by PID on exit.
# Env: DEMO_MODEL_MIB (size of the big file, default 200), KEEP=1 keeps the temp dir,
# MODELCACHE_SKIP_SETUP=1 skips scripts/setup.sh (packages known to be installed),
# MODELCACHE_BUILD_JOBS (parallel build jobs, default all cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
big_mib=${DEMO_MODEL_MIB:-200}

[ "${MODELCACHE_SKIP_SETUP:-0}" = 1 ] || bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
agent_bin="$root/build/agent/modelcache-agent"
coordinator_bin="$root/build/coordinator/modelcache-coordinator"
ctl_bin="$root/build/cli/modelcachectl"

work=$(mktemp -d /tmp/modelcache-demo-XXXXXX)
source "$root/scripts/lib.sh"
pids=()
cleanup() {
  local status=$?
  stop_pids "${pids[@]}"
  if [ "$status" != 0 ]; then
    echo "demo: FAILED (exit $status); last lines of the daemons' logs:" >&2
    for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 5 "$log" >&2; }; done
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
origin_bytes() { awk '{s += $10} END {print s + 0}' "$work/nginx/access.log"; }
origin_requests() { wc -l < "$work/nginx/access.log"; }

step "1. A model at the origin: 3 files, one of ${big_mib} MiB, and its modelcache.json"
model_dir="$work/origin/models/demo-llm/v1"
mkdir -p "$model_dir/weights"
echo '{"architectures": ["DemoForCausalLM"], "hidden_size": 512}' > "$model_dir/config.json"
head -c $((3 << 20)) /dev/urandom > "$model_dir/tokenizer.json"
head -c $((big_mib << 20)) /dev/urandom > "$model_dir/weights/model.safetensors"
write_manifest "$model_dir" config.json tokenizer.json weights/model.safetensors
cat "$model_dir/modelcache.json"; echo

step "2. nginx serves it on 127.0.0.1"
origin_port=$(free_port)
start_nginx "$work/nginx" "$work/origin" "$origin_port"
pids+=("$NGINX_PID")
source_url="http://127.0.0.1:$origin_port/models/demo-llm/v1/"
wait_for 10 curl -sf "${source_url}modelcache.json"
: > "$work/nginx/access.log"  # count only what the agents fetch from here on
echo "origin: $source_url"

step "3. The coordinator (SQLite in the temp dir; caching disabled by default, no tokens)"
coordinator_port=$(free_port)
coordinator_metrics_port=$(free_port)
cat > "$work/coordinator.yaml" <<CONF
modelsCacheStorage: {storageSize: 10Gi, checkUnusedCachedModelsEvery: 1h, purgeUnusedCachedModelsAfter: 7d}
coordinator:
  listen: 127.0.0.1:$coordinator_port
  database: $work/coordinator.db
  metricsAddress: 127.0.0.1:$coordinator_metrics_port
  defaultCaching: disabled
CONF
cat "$work/coordinator.yaml"
"$coordinator_bin" --config "$work/coordinator.yaml" 2> "$work/coordinator.log" &
pids+=($!)
export MODELCACHE_COORDINATOR="127.0.0.1:$coordinator_port"
wait_for 30 "$ctl_bin" nodes
echo "coordinator ready on $MODELCACHE_COORDINATOR (log: $work/coordinator.log)"

step "4. Two node agents sharing one cache folder, each with its own socket and metrics port"
metrics_ports=()
for node in 1 2; do
  metrics_port=$(free_port)
  metrics_ports+=("$metrics_port")
  cat > "$work/agent-$node.yaml" <<CONF
cacheRoot: $work/cache
socket: $work/run/agent-$node.sock
metricsAddress: 127.0.0.1:$metrics_port
nodeName: demo-node-$node
coordinator: $MODELCACHE_COORDINATOR
log: {level: info}
fill: {concurrency: 16, chunkSize: 8Mi}
modelsCacheStorage: {enabled: true, storageSize: 10Gi}  # with the block, enabled defaults to false
network: {allow: ["127.0.0.1/32"]}  # the demo's origin is on loopback, refused by default
CONF
  if [ "$node" = 1 ]; then cat "$work/agent-1.yaml"; fi
  "$agent_bin" --config "$work/agent-$node.yaml" 2> "$work/agent-$node.log" &
  pids+=($!)
  # One after the other: the first one on an empty folder writes the volume id.
  wait_for 30 curl -sf "http://127.0.0.1:$metrics_port/readyz"
  echo "agent $node ready: socket $work/run/agent-$node.sock, metrics 127.0.0.1:$metrics_port"
done
echo "volume id (both agents): $(grep -o 'id=[0-9a-f]*' "$work/cache/.modelcache-volume-id")"

step "5. modelcachectl enable-caching demo-llm (the coordinator passes the policy to both agents)"
"$ctl_bin" enable-caching demo-llm
# The agent logs each policy it applies ("caching policy from the coordinator: default
# disabled, 1 rules"); the key=value spelling is accepted too.
policy_applied() { grep -Eq "caching policy.*(1 rules|rules=1)" "$work/agent-$1.log"; }
wait_for 15 policy_applied 1
wait_for 15 policy_applied 2
echo "both agents applied it"

step "6. modelcachectl fetch through agent 1 (a fill: bytes come from the origin)"
start=$(now_ms)
path=$(MODELCACHE_SOCKET="$work/run/agent-1.sock" \
  "$ctl_bin" fetch --model demo-llm --version v1 --source "$source_url")
echo "stdout: $path  ($(( $(now_ms) - start )) ms)"
filled_bytes=$(origin_bytes)
echo "origin served $filled_bytes bytes in $(origin_requests) requests"
(cd "$model_dir" && sha256sum config.json tokenizer.json weights/model.safetensors) > "$work/origin.sha256"
(cd "$path" && sha256sum -c "$work/origin.sha256")

step "7. The same fetch through agent 2 (other node, same volume: no origin traffic)"
start=$(now_ms)
MODELCACHE_SOCKET="$work/run/agent-2.sock" \
  "$ctl_bin" fetch --model demo-llm --version v1 --source "$source_url"
echo "($(( $(now_ms) - start )) ms)"
echo "origin served $(( $(origin_bytes) - filled_bytes )) more bytes (total $(origin_bytes) in $(origin_requests) requests)"
if [ "$(origin_bytes)" != "$filled_bytes" ]; then
  echo "demo: agent 2 went to the origin although the model was on its volume" >&2
  exit 1
fi

step "8. modelcachectl list (each agent's view of the shared volume)"
for node in 1 2; do
  echo "agent $node:"
  MODELCACHE_SOCKET="$work/run/agent-$node.sock" "$ctl_bin" list
done

step "9. modelcachectl usage and nodes (the coordinator's view)"
# The agents report to the coordinator in the background; wait for the model's bytes to arrive.
usage_reported() { "$ctl_bin" usage --json | grep -q '"used_bytes": "[1-9]'; }
wait_for 30 usage_reported
"$ctl_bin" usage
echo
"$ctl_bin" nodes

step "10. A few lines of the daemons' /metrics"
for node in 1 2; do
  echo "agent $node (127.0.0.1:${metrics_ports[$((node - 1))]}/metrics):"
  curl -s "http://127.0.0.1:${metrics_ports[$((node - 1))]}/metrics" |
    grep -E '^modelcache_(ensure_requests_total|cache_models|cache_used_bytes|fill_bytes_total)' | head -n 8 || true
done
echo "coordinator (127.0.0.1:$coordinator_metrics_port/metrics):"
curl -s "http://127.0.0.1:$coordinator_metrics_port/metrics" | grep '^modelcache_' | head -n 8 || true

step "11. The cache volume"
(cd "$work/cache" && find . -maxdepth 4 | sort)
echo
echo "demo: done (stopping nginx, the agents and the coordinator)"
