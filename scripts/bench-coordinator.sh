#!/usr/bin/env bash
# Benchmark (not a test): the coordinator under many agents. Starts modelcache-coordinator on
# 127.0.0.1 with a fresh database, then tests/bench/coordinator_load simulates BENCH_AGENTS
# agents (one stream each, multiplexed over a few TCP connections, callback API) with
# BENCH_MODELS models each: full report on connect, then a delta every BENCH_INTERVAL seconds.
# Prints, for the connect burst and for the steady measurement window separately:
#   - reports handled per second and the p99 handling time (coordinator's own histogram:
#     from receiving a report to having stored it, queueing included)
#   - the coordinator's CPU share, and at the end its RSS, peak RSS and thread count
# plus the driver's own view (reports sent per second, p50/p99 time for a write to be accepted).
# The steady window starts BENCH_WARMUP seconds after the full reports were stored, so that
# the connect burst's backlog does not count in it.
# Env: BENCH_AGENTS (2000), BENCH_MODELS (200), BENCH_INTERVAL (10), BENCH_DURATION (60),
#      BENCH_CHANNELS (4), BENCH_WARMUP (BENCH_INTERVAL). A smoke run: BENCH_AGENTS=50 BENCH_MODELS=20 BENCH_DURATION=10.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib.sh"
agents=${BENCH_AGENTS:-2000}
models=${BENCH_MODELS:-200}
interval=${BENCH_INTERVAL:-10}
duration=${BENCH_DURATION:-60}
channels=${BENCH_CHANNELS:-4}
warmup=${BENCH_WARMUP:-$interval}

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

# The histogram's buckets now, one "le count" line each (cumulative, as exposed).
buckets() {
  curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk '
    /^modelcache_coordinator_usage_report_seconds_bucket/ {
      match($0, /le="[^"]+"/); print substr($0, RSTART + 4, RLENGTH - 5), $2 }'
}
# p99 of the reports handled between two bucket snapshots: the smallest bucket bound that
# holds 99% of them.
p99_between() {
  awk 'NR == FNR { before[$1] = $2; next }
       { le[n] = $1; count[n++] = $2 - before[$1] }
       END { total = count[n - 1]; if (total <= 0) { print "n/a"; exit }
             for (i = 0; i < n; i++) if (count[i] >= 0.99 * total) { print le[i]; exit } }' "$1" "$2"
}
# Prints one phase's figures: name, seconds, cpu0, cpu1, reports0, reports1, buckets0, buckets1.
phase() {
  awk -v name="$1" -v t="$2" -v c0="$3" -v c1="$4" -v r0="$5" -v r1="$6" -v p99="$(p99_between "$7" "$8")" 'BEGIN {
    printf "coordinator, %s: %d reports handled in %.1f s = %.0f reports/s, p99 handling <= %s s, CPU %.0f%% of one core\n",
      name, r1 - r0, t, (r1 - r0) / t, p99, 100 * (c1 - c0) / t }'
}

echo "bench: $agents agents x $models models, a report every ${interval}s per agent, ${duration}s, $channels channels"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cpu0=$(cpu_seconds); reports0=$(metric modelcache_coordinator_usage_reports_total); buckets > "$work/b0"
t0=$(now_ms)
"$driver_bin" --target "127.0.0.1:$port" --token bench-agent-token --agents "$agents" \
  --models "$models" --interval "$interval" --channels "$channels" \
  --duration "$(awk -v d="$duration" -v w="$warmup" 'BEGIN {print d + w + 30}')" \
  > "$work/driver.out" 2>&1 &
driver_pid=$!
pids=("$driver_pid" "${pids[@]}")
# The connect burst ends once every agent's full report went out (the driver says
# "connected") and the coordinator stored as many reports as there are agents.
wait_for 600 grep -q '^connected' "$work/driver.out"
stored_all_full_reports() {
  awk -v now="$(metric modelcache_coordinator_usage_reports_total)" -v base="$reports0" \
    -v want="$agents" 'BEGIN { exit !(now - base >= want) }'
}
wait_for 600 stored_all_full_reports
tb=$(now_ms); cpub=$(cpu_seconds); reportsb=$(metric modelcache_coordinator_usage_reports_total); buckets > "$work/bb"
sleep "$warmup"
t1=$(now_ms); cpu1=$(cpu_seconds); reports1=$(metric modelcache_coordinator_usage_reports_total); buckets > "$work/b1"
sleep "$duration"
t2=$(now_ms); cpu2=$(cpu_seconds); reports2=$(metric modelcache_coordinator_usage_reports_total); buckets > "$work/b2"
# The driver measures from its "connected" line for warmup + duration + 30 s, which covers
# the window above unless storing the full reports took longer than 30 s.
wait "$driver_pid" || echo "driver: exit $?"
cat "$work/driver.out"

phase "connect burst" "$(awk -v a="$t0" -v b="$tb" 'BEGIN {print (b - a) / 1000}')" \
  "$cpu0" "$cpub" "$reports0" "$reportsb" "$work/b0" "$work/bb"
phase "steady" "$(awk -v a="$t1" -v b="$t2" 'BEGIN {print (b - a) / 1000}')" \
  "$cpu1" "$cpu2" "$reports1" "$reports2" "$work/b1" "$work/b2"
awk -v rss="$(awk '/VmRSS/ {print $2}' "/proc/$coordinator_pid/status")" \
    -v hwm="$(awk '/VmHWM/ {print $2}' "/proc/$coordinator_pid/status")" \
    -v th="$(awk '/Threads/ {print $2}' "/proc/$coordinator_pid/status")" 'BEGIN {
  printf "coordinator: RSS %.0f MiB now, peak %.0f MiB, %d threads\n", rss / 1024, hwm / 1024, th }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
