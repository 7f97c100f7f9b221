#!/usr/bin/env bash
# Benchmark (not a test): the coordinator under many agents. Starts modelcache-coordinator on
# 127.0.0.1 with a fresh database, then tests/bench/coordinator_load simulates BENCH_AGENTS
# agents (one stream each, multiplexed over a few TCP connections) with BENCH_MODELS models
# each: full report on connect, then a delta every BENCH_INTERVAL seconds. Prints:
#   - reports sent per second and the p50/p99 time for the coordinator to accept one (driver)
#   - reports handled per second and p99 handling time (coordinator's own histogram)
#   - the coordinator's CPU seconds during the measurement and its peak/final RSS
# Env: BENCH_AGENTS (2000), BENCH_MODELS (200), BENCH_INTERVAL (10), BENCH_DURATION (60),
#      BENCH_CHANNELS (16). A smoke run: BENCH_AGENTS=50 BENCH_MODELS=20 BENCH_DURATION=10.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib.sh"
agents=${BENCH_AGENTS:-2000}
models=${BENCH_MODELS:-200}
interval=${BENCH_INTERVAL:-10}
duration=${BENCH_DURATION:-60}
channels=${BENCH_CHANNELS:-16}

[ "${MODELCACHE_SKIP_BUILD:-0}" = 1 ] || bash "$root/scripts/build.sh" >/dev/null
coordinator_bin="$root/build/coordinator/modelcache-coordinator"
driver_bin="$root/build/tests/coordinator_load"

work=$(mktemp -d)
pids=()
cleanup() { stop_pids "${pids[@]}"; rm -rf "$work"; }
trap cleanup EXIT

port=$(free_port)
metrics_port=$(free_port)
echo "bench-agent-token agent" > "$work/tokens"
cat > "$work/coordinator.yaml" <<YAML
modelsCacheStorage:
  storageSize: 100Ti
  checkUnusedCachedModelsEvery: 1h
  purgeUnusedCachedModelsAfter: 1w
coordinator:
  listen: 127.0.0.1:$port
  database: $work/coordinator.db
  tokensFile: $work/tokens
  maxThreads: $((agents + 64))
  metricsAddress: 127.0.0.1:$metrics_port
YAML
"$coordinator_bin" --config "$work/coordinator.yaml" --log-level warn 2> "$work/coordinator.log" &
coordinator_pid=$!
pids+=("$coordinator_pid")
wait_for 30 curl -sf "http://127.0.0.1:$metrics_port/metrics"

cpu_seconds() {  # utime + stime of the coordinator, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$coordinator_pid/stat"
}
metric() {  # metric NAME: its value now (0 if absent)
  curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk -v n="$1" '$1 == n {print $2; found=1} END {if (!found) print 0}'
}

echo "bench: $agents agents x $models models, a report every ${interval}s per agent, ${duration}s"
cpu_before=$(cpu_seconds)
reports_before=$(metric modelcache_coordinator_usage_reports_total)
start_ms=$(now_ms)
"$driver_bin" --target "127.0.0.1:$port" --token bench-agent-token --agents "$agents" \
  --models "$models" --interval "$interval" --duration "$duration" --channels "$channels" || true
elapsed=$(awk -v a="$start_ms" -v b="$(now_ms)" 'BEGIN {print (b - a) / 1000}')
cpu_after=$(cpu_seconds)
reports_after=$(metric modelcache_coordinator_usage_reports_total)

curl -sf "http://127.0.0.1:$metrics_port/metrics" > "$work/metrics.txt"
p99=$(awk '
  /^modelcache_coordinator_usage_report_seconds_bucket/ {
    match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5); bound[n] = le; count[n++] = $2 }
  /^modelcache_coordinator_usage_report_seconds_count/ { total = $2 }
  END { for (i = 0; i < n; i++) if (count[i] >= 0.99 * total) { print bound[i]; exit } }' "$work/metrics.txt")
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$coordinator_pid/status")
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$coordinator_pid/status")
threads=$(awk '/Threads/ {print $2}' "/proc/$coordinator_pid/status")

awk -v r0="$reports_before" -v r1="$reports_after" -v t="$elapsed" -v c0="$cpu_before" \
    -v c1="$cpu_after" -v p99="$p99" -v rss="$rss_kib" -v hwm="$hwm_kib" -v th="$threads" 'BEGIN {
  printf "coordinator: %d reports handled in %.1f s = %.0f reports/s (incl. connect-time full reports)\n", r1 - r0, t, (r1 - r0) / t
  printf "coordinator: p99 report handling <= %s s (histogram bucket)\n", p99
  printf "coordinator: CPU %.1f s over %.1f s = %.0f%% of one core\n", c1 - c0, t, 100 * (c1 - c0) / t
  printf "coordinator: RSS %.0f MiB now, peak %.0f MiB, %d threads\n", rss / 1024, hwm / 1024, th
}'
