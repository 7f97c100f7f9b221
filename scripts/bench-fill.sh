#!/usr/bin/env bash
# Benchmark (not a test): how fast the agent fills a model, against common download tools.
#
# A model of BENCH_GIB GiB (one file of 3/4 of it plus four smaller ones) is served by nginx
# on 127.0.0.1. Each round runs, each into an empty folder on the same disk:
#   agent        modelcachectl fetch through a freshly started agent (SHA-256 verified inline)
#   agent-oci    the same, from oci://: the same files pushed as a CNCF ModelPack artifact
#                (one raw layer per file) to Debian's docker-registry on 127.0.0.1; the
#                report gives its ratio to the http:// fill (issue #16: within 10%)
#   aria2c       aria2c -x16 -s16 -k8M, then sha256sum
#   rclone       rclone copy --http-url ... --multi-thread-streams 8, then sha256sum
#   curl         one curl, one stream, file after file, then sha256sum
#   curl-null    curl -o /dev/null of every file (the origin/loopback ceiling; no disk); with
#                agent-oci also of every blob from the registry (that origin's ceiling)
# and reports medians over BENCH_ROUNDS rounds (default 3): wall seconds, CPU seconds
# (user+sys; for the agent: the agent's own CPU plus modelcachectl's), peak RSS, and the
# agent's ratios. The page cache is dropped before each run when /proc/sys/vm/drop_caches
# is writable (root outside a container), otherwise that is reported.
#
# Env: BENCH_GIB (default 4; fractions allowed, e.g. 0.05 for a smoke run), BENCH_ROUNDS,
#      BENCH_DIR (default build/bench; all runs write there: same disk), KEEP=1,
#      BENCH_AGENT_CONFIG (an agent YAML, e.g. to try fill.concurrency/chunkSize; the bench
#      adds network.allow for its loopback origins, so leave network: out of it),
#      BENCH_TOOLS (default "agent agent-oci aria2c rclone curl curl-null"; e.g. "agent" alone to
#      measure the agent's CPU s/GB and peak RSS quickly; ratios need the agent and a peer).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib.sh"
gib=${BENCH_GIB:-4}
tools=" ${BENCH_TOOLS:-agent agent-oci aria2c rclone curl curl-null} "
runs() { [[ $tools == *" $1 "* ]]; }
rounds=${BENCH_ROUNDS:-3}
bench=${BENCH_DIR:-$root/build/bench}

[ "${MODELCACHE_SKIP_SETUP:-0}" = 1 ] || bash "$root/scripts/setup.sh" >/dev/null
bash "$root/scripts/build.sh" >/dev/null
agent_bin="$root/build/agent/modelcache-agent"
ctl_bin="$root/build/cli/modelcachectl"
for tool in aria2c rclone curl sha256sum /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/setup.sh installs it)"; exit 1; }
done

rm -rf "$bench"
mkdir -p "$bench"
pids=()
cleanup() {
  stop_pids "${pids[@]}"
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$bench"; fi
}
trap cleanup EXIT

# --- the model --------------------------------------------------------------------------
model="$bench/origin/bench-model"
generate_bench_model "$model" "$gib"
(cd "$model" && sha256sum "${files[@]}") > "$bench/expected.sha256"

port=$(free_port)
start_nginx "$bench/nginx" "$bench/origin" "$port"
pids+=("$NGINX_PID")
url="http://127.0.0.1:$port/bench-model/"

if runs agent-oci; then
  [ -x /usr/bin/docker-registry ] || { echo "bench: docker-registry is missing (scripts/setup.sh installs it)"; exit 1; }
  registry_port=$(free_port)
  start_registry "$bench/registry" "$registry_port"
  pids+=("$REGISTRY_PID")
  echo "bench: pushing the model to the registry as a ModelPack artifact" >&2
  push_modelpack "127.0.0.1:$registry_port" bench/model v1 "$model" "${files[@]}"
  oci_url="oci://127.0.0.1:$registry_port/bench/model:v1"
fi

# --- measuring ----------------------------------------------------------------------------
drop_note="page cache dropped before each run"
drop_caches() {
  sync
  if ! (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
    drop_note="page cache NOT dropped (/proc/sys/vm/drop_caches not writable): origin reads come from memory"
  fi
}

# measure OUT CMD...: runs CMD under /usr/bin/time -v; appends "wall cpu rss_kib" to OUT.
measure() {
  local out=$1; shift
  local report="$bench/time.txt"
  /usr/bin/time -v -o "$report" "$@" >/dev/null
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, t, ":"); wall = (n == 3) ? t[1]*3600 + t[2]*60 + t[3] : t[1]*60 + t[2] }
    /User time/ { cpu += $2 } /System time/ { cpu += $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %.3f %d\n", wall, cpu, rss }' "$report" >> "$out"
}

verify() {  # verify DIR: the files there match the origin
  (cd "$1" && sha256sum --quiet -c "$bench/expected.sha256") || { echo "bench: $1 does not match the origin"; exit 1; }
}

ticks=$(getconf CLK_TCK)
proc_cpu_seconds() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }

# The agent refuses loopback origins unless network.allow lets it (issue #11): the bench's
# origins listen on 127.0.0.1.
agent_config="$bench/agent.yaml"
{
  echo 'network: {allow: ["127.0.0.1/32"]}'
  if [ -n "${BENCH_AGENT_CONFIG:-}" ]; then cat "$BENCH_AGENT_CONFIG"; fi
} > "$agent_config"

run_agent() {  # run_agent NAME SOURCE: one fill through a fresh agent with an empty cache
  local name=$1 source=$2
  local cache="$bench/agent-cache" socket="$bench/agent.sock"
  rm -rf "$cache"
  "$agent_bin" --config "$agent_config" --cache-root "$cache" \
    --socket "$socket" --metrics-address "" --log-level warn \
    2>> "$bench/agent.log" &
  local agent=$!
  pids+=("$agent")
  wait_for 30 test -S "$socket"
  drop_caches
  local before after
  before=$(proc_cpu_seconds "$agent")
  measure "$bench/$name.ctl" "$ctl_bin" fetch --model bench --version v1 --source "$source" --socket "$socket"
  after=$(proc_cpu_seconds "$agent")
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
  # wall from the client; CPU = agent + client; RSS = the agent's peak.
  tail -n1 "$bench/$name.ctl" | awk -v a="$before" -v b="$after" -v r="$rss" \
    '{printf "%.3f %.3f %d\n", $1, $2 + (b - a), r}' >> "$bench/$name.e2e"
  verify "$cache/models/bench/v1"
  stop_pids "$agent"
  rm -rf "$cache"
}

run_peer() {  # run_peer NAME DIR CMD...: download (measured), then sha256sum (measured)
  local name=$1 dir=$2; shift 2
  rm -rf "$dir"; mkdir -p "$dir"
  drop_caches
  measure "$bench/$name.download" "$@"
  measure "$bench/$name.hash" bash -c "cd '$dir' && sha256sum ${files[*]} > /dev/null"
  verify "$dir"
  # end to end = download + hash (wall and CPU add up; RSS is the larger)
  paste -d' ' <(tail -n1 "$bench/$name.download") <(tail -n1 "$bench/$name.hash") |
    awk '{printf "%.3f %.3f %d\n", $1 + $4, $2 + $5, ($3 > $6 ? $3 : $6)}' >> "$bench/$name.e2e"
  rm -rf "$dir"
}

aria_input="$bench/aria2.txt"
: > "$aria_input"
curl_args=()
null_args=()
for f in "${files[@]}"; do
  printf '%s%s\n  out=%s\n' "$url" "$f" "$f" >> "$aria_input"
  curl_args+=(-o "$bench/curl/$f" "$url$f")
  null_args+=(-o /dev/null "$url$f")
done

for round in $(seq "$rounds"); do
  echo "bench: round $round/$rounds"
  if runs agent; then run_agent agent "$url"; fi
  if runs agent-oci; then run_agent agent-oci "$oci_url"; fi
  if runs aria2c; then run_peer aria2c "$bench/aria2c" aria2c -x16 -s16 -k8M --file-allocation=none --allow-overwrite=true \
    --auto-file-renaming=false --console-log-level=warn --summary-interval=0 -d "$bench/aria2c" -i "$aria_input"; fi
  if runs rclone; then run_peer rclone "$bench/rclone" rclone copy --http-url "$url" :http: "$bench/rclone" \
    --multi-thread-streams 8 --exclude modelcache.json; fi
  if runs curl; then run_peer curl "$bench/curl" curl -sSf "${curl_args[@]}"; fi
  if runs curl-null; then
    drop_caches
    measure "$bench/curl-null.download" curl -sSf "${null_args[@]}"
    if runs agent-oci; then
      drop_caches
      oci_null_args=()
      for blob in "${OCI_BLOB_URLS[@]}"; do oci_null_args+=(-o /dev/null "$blob"); done
      measure "$bench/curl-null-oci.download" curl -sSf "${oci_null_args[@]}"
    fi
  fi
done

# --- report -------------------------------------------------------------------------------
median() {  # median COLUMN FILE
  awk -v c="$1" '{print $c}' "$2" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
gb=$(awk -v b="$model_bytes" 'BEGIN {print b / 1e9}')
row() {  # row LABEL FILE
  local wall cpu rss
  wall=$(median 1 "$2"); cpu=$(median 2 "$2"); rss=$(median 3 "$2")
  awk -v l="$1" -v w="$wall" -v c="$cpu" -v r="$rss" -v gb="$gb" \
    'BEGIN {printf "%-30s %9.2f %9.2f %10.0f %10.2f %10.2f\n", l, w, c, r / 1024, gb / w, c / gb}'
}
echo
echo "model: ${#files[@]} files, $model_bytes bytes; $rounds rounds; medians; $drop_note"
printf '%-30s %9s %9s %10s %10s %10s\n' "run" "wall s" "cpu s" "rss MiB" "GB/s" "cpu s/GB"
if runs agent; then row "agent (fill + sha256)" "$bench/agent.e2e"; fi
if runs agent-oci; then row "agent oci:// (fill + sha256)" "$bench/agent-oci.e2e"; fi
peers=()
for peer in aria2c rclone curl; do
  runs "$peer" || continue
  peers+=("$peer")
  row "$peer + sha256sum" "$bench/$peer.e2e"
  row "$peer download only" "$bench/$peer.download"
done
if runs curl-null; then row "curl -o /dev/null" "$bench/curl-null.download"; fi
if runs curl-null && runs agent-oci; then row "curl -o /dev/null (registry)" "$bench/curl-null-oci.download"; fi

if runs agent && runs agent-oci; then
  echo
  awk -v o="$(median 1 "$bench/agent-oci.e2e")" -v h="$(median 1 "$bench/agent.e2e")" \
    'BEGIN {printf "agent oci:// / agent http:// (same bytes, wall): %.2f (issue #16 target: at most 1.10)\n", o / h}'
fi
if ! runs agent || [ ${#peers[@]} -eq 0 ]; then exit 0; fi
agent_wall=$(median 1 "$bench/agent.e2e")
best_e2e=$(for p in "${peers[@]}"; do echo "$(median 1 "$bench/$p.e2e") $p"; done | sort -g | head -n1)
best_dl=$(for p in "${peers[@]}"; do echo "$(median 1 "$bench/$p.download") $p"; done | sort -g | head -n1)
echo
awk -v a="$agent_wall" -v b="${best_e2e% *}" -v n="${best_e2e#* }" \
  'BEGIN {printf "agent end-to-end / best peer download+sha256sum (%s): %.2f (below 1: agent faster)\n", n, a / b}'
awk -v a="$agent_wall" -v b="${best_dl% *}" -v n="${best_dl#* }" \
  'BEGIN {printf "agent end-to-end / best peer download only (%s):     %.2f\n", n, a / b}'
