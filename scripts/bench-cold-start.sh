#!/usr/bin/env bash
# Benchmark (not a test): a cold start of N replicas on N nodes that share one cache volume.
#
# N agents (BENCH_AGENTS, default "1 4 8") share one cache folder (as agents on N nodes share
# an NFS volume) and report to one coordinator. A model of BENCH_GIB GiB (default 2) is served
# by nginx on 127.0.0.1. For each N, all N agents are asked for the model at once
# (modelcachectl fetch, one per agent) and the script prints the time until every one is
# ready and the bytes the origin served (cross-node single flight: about one model's worth).
# Then the same N clients with caching disabled (MODELCACHE_DISABLE=true modelcachectl fetch
# --dest, each into its own local folder), which is what replicas do without the cache.
#
# Env: BENCH_GIB (fractions allowed, e.g. 0.05 for a smoke run), BENCH_AGENTS,
#      BENCH_DIR (default build/bench-cold-start), KEEP=1, MODELCACHE_SKIP_SETUP=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib.sh"
gib=${BENCH_GIB:-2}
agent_counts=${BENCH_AGENTS:-"1 4 8"}
bench=${BENCH_DIR:-$root/build/bench-cold-start}

[ "${MODELCACHE_SKIP_SETUP:-0}" = 1 ] || bash "$root/scripts/setup.sh" >/dev/null
bash "$root/scripts/build.sh" >/dev/null
agent_bin="$root/build/agent/modelcache-agent"
coordinator_bin="$root/build/coordinator/modelcache-coordinator"
ctl_bin="$root/build/cli/modelcachectl"

rm -rf "$bench"
mkdir -p "$bench"
pids=()
agent_pids=()
cleanup() {
  stop_pids "${agent_pids[@]}" "${pids[@]}"
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$bench"; fi
}
trap cleanup EXIT

# --- the model and the origin -------------------------------------------------------------
model="$bench/origin/cold-model"
generate_bench_model "$model" "$gib"
(cd "$model" && sha256sum "${files[@]}") > "$bench/expected.sha256"

port=$(free_port)
start_nginx "$bench/nginx" "$bench/origin" "$port"
pids+=("$NGINX_PID")
url="http://127.0.0.1:$port/cold-model/"

# Body bytes nginx has served for the model's files so far (combined log: field 10).
served_bytes() {
  awk '$7 ~ /\/cold-model\/model-/ {sum += $10} END {printf "%.0f", sum}' "$bench/nginx/access.log"
}

coordinator_port=$(free_port)
cat > "$bench/coordinator.yaml" <<CONF
modelsCacheStorage: {storageSize: 1Ti, checkUnusedCachedModelsEvery: 1h, purgeUnusedCachedModelsAfter: 1d}
coordinator:
  listen: 127.0.0.1:$coordinator_port
  database: $bench/coordinator.db
  defaultCaching: enabled
CONF
"$coordinator_bin" --config "$bench/coordinator.yaml" 2> "$bench/coordinator.log" &
pids+=("$!")
wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$coordinator_port"

verify() {  # verify DIR: the files there match the origin
  (cd "$1" && sha256sum --quiet -c "$bench/expected.sha256") || { echo "bench: $1 does not match the origin"; exit 1; }
}

# run_clients OUT N CMD_FOR_INDEX: starts N clients at once, waits for all; appends
# "seconds bytes" to OUT. CMD_FOR_INDEX is a function printing nothing, run as "$3 i".
run_clients() {
  local out=$1 n=$2 client=$3
  local before start end i failed=0 client_pids=()
  before=$(served_bytes)
  start=$(now_ms)
  for i in $(seq "$n"); do
    "$client" "$i" > "$bench/client-$i.out" 2> "$bench/client-$i.err" &
    client_pids+=("$!")
  done
  for i in "${!client_pids[@]}"; do
    wait "${client_pids[$i]}" || { failed=1; echo "bench: client $((i + 1)) failed:"; cat "$bench/client-$((i + 1)).err"; }
  done
  end=$(now_ms)
  [ "$failed" = 0 ] || exit 1
  sleep 0.5  # nginx logs a request after answering it
  echo "$(awk -v ms=$((end - start)) 'BEGIN {printf "%.2f", ms / 1000}') $(( $(served_bytes) - before ))" >> "$out"
}

cached_client() {
  "$ctl_bin" fetch --model cold --version v1 --source "$url" --socket "$bench/run-$1/agent.sock" \
    --timeout 1h
}
uncached_client() {
  MODELCACHE_DISABLE=true "$ctl_bin" fetch --model cold --version v1 --source "$url" \
    --dest "$bench/local-$1" --timeout 1h
}

results="$bench/results.txt"
: > "$results"
for n in $agent_counts; do
  echo "bench: $n agents sharing one cache folder"
  cache="$bench/shared-cache"
  rm -rf "$cache"
  agent_pids=()
  for i in $(seq "$n"); do
    mkdir -p "$bench/run-$i"
    cat > "$bench/agent-$i.yaml" <<CONF
cacheRoot: $cache
socket: $bench/run-$i/agent.sock
metricsAddress: ""
nodeName: bench-node-$i
coordinator: 127.0.0.1:$coordinator_port
log: {level: info}
network: {allow: ["127.0.0.1/32"]}  # the bench origin is on loopback, refused by default
CONF
    "$agent_bin" --config "$bench/agent-$i.yaml" 2> "$bench/agent-$n-$i.log" &
    agent_pids+=("$!")
  done
  for i in $(seq "$n"); do wait_for 30 test -S "$bench/run-$i/agent.sock"; done
  run_clients "$bench/cached-$n" "$n" cached_client
  verify "$cache/models/cold/v1"
  stop_pids "${agent_pids[@]}"
  agent_pids=()
  rm -rf "$cache"

  echo "bench: $n clients with caching disabled"
  for i in $(seq "$n"); do rm -rf "$bench/local-$i"; done
  run_clients "$bench/uncached-$n" "$n" uncached_client
  for i in $(seq "$n"); do
    verify "$bench/local-$i/models/cold/v1"
    rm -rf "$bench/local-$i"
  done
  echo "$n $(cat "$bench/cached-$n") $(cat "$bench/uncached-$n")" >> "$results"
done

# --- report -------------------------------------------------------------------------------
echo
echo "model: ${#files[@]} files, $model_bytes bytes; origin: nginx on 127.0.0.1"
printf '%-7s %14s %16s %8s   %14s %16s %8s\n' "agents" "shared: all s" "origin bytes" "x model" \
  "no cache: s" "origin bytes" "x model"
while read -r n cached_s cached_b uncached_s uncached_b; do
  awk -v n="$n" -v cs="$cached_s" -v cb="$cached_b" -v us="$uncached_s" -v ub="$uncached_b" \
    -v m="$model_bytes" \
    'BEGIN {printf "%-7d %14.2f %16.0f %8.2f   %14.2f %16.0f %8.2f\n", n, cs, cb, cb / m, us, ub, ub / m}'
done < "$results"
