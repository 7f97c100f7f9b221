#!/usr/bin/env bash
# A five-minute tour: an origin (nginx) serving a small model, a node agent with its cache
# folder, two `modelcachectl fetch` runs (a fill, then a hit), `list` and the agent's metrics.
# Everything runs on 127.0.0.1 in a temp dir and is stopped by PID on exit.
# Env: DEMO_MODEL_MIB (size of the big file, default 200), KEEP=1 keeps the temp dir,
# MODELCACHE_SKIP_SETUP=1 skips scripts/setup.sh (packages known to be installed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
big_mib=${DEMO_MODEL_MIB:-200}

[ "${MODELCACHE_SKIP_SETUP:-0}" = 1 ] || bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
agent_bin="$root/build/agent/modelcache-agent"
ctl_bin="$root/build/cli/modelcachectl"

work=$(mktemp -d /tmp/modelcache-demo-XXXXXX)
source "$root/scripts/lib.sh"
pids=()
cleanup() {
  stop_pids "${pids[@]}"
  if [ "${KEEP:-0}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

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
echo "origin: $source_url"

step "3. The node agent: cache folder, Unix socket, metrics on 127.0.0.1"
metrics_port=$(free_port)
socket="$work/run/agent.sock"
cat > "$work/agent.yaml" <<CONF
cacheRoot: $work/cache
socket: $socket
metricsAddress: 127.0.0.1:$metrics_port
nodeName: demo-node
log: {level: info}
fill: {concurrency: 16, chunkSize: 8Mi}
CONF
cat "$work/agent.yaml"
"$agent_bin" --config "$work/agent.yaml" 2> "$work/agent.log" &
pids+=($!)
wait_for 30 curl -sf "http://127.0.0.1:$metrics_port/readyz"
echo "agent ready (log: $work/agent.log)"

export MODELCACHE_SOCKET="$socket"
step "4. modelcachectl fetch (a fill: bytes come from the origin)"
start=$(now_ms)
path=$("$ctl_bin" fetch --model demo-llm --version v1 --source "$source_url")
echo "stdout: $path  ($(( $(now_ms) - start )) ms)"

step "5. The same fetch again (a hit: answered from the cache)"
start=$(now_ms)
"$ctl_bin" fetch --model demo-llm --version v1 --source "$source_url"
echo "($(( $(now_ms) - start )) ms)"

step "6. The cached files match the origin"
(cd "$model_dir" && sha256sum config.json tokenizer.json weights/model.safetensors) > "$work/origin.sha256"
(cd "$path" && sha256sum -c "$work/origin.sha256")
echo "origin served $(awk '{s += $10} END {print s}' "$work/nginx/access.log") bytes in $(wc -l < "$work/nginx/access.log") requests"

step "7. modelcachectl list"
"$ctl_bin" list

step "8. The agent's metrics"
curl -s "http://127.0.0.1:$metrics_port/metrics" | grep '^modelcache_'

step "9. The cache volume"
(cd "$work/cache" && find . -maxdepth 4 | sort)
echo
echo "demo: done (stopping nginx and the agent)"
