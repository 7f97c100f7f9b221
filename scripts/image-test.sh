#!/usr/bin/env bash
# Builds the image from the Dockerfile as it is, without a Docker engine, and runs what it holds.
#
#  1. Installs the `image` lines of scripts/packages.txt (buildah, podman, mmdebstrap) if missing.
#  2. Makes the two base images the Dockerfile names from Debian packages alone:
#     debian:bookworm (`mmdebstrap --variant=minbase`) and debian:bookworm-slim (the same, without
#     man pages, docs but copyrights, info and locales, as the official slim images drop them), each
#     imported with `podman import`. A base made by this recipe before is reused.
#  3. Builds the image with Debian's buildah: `buildah bud --isolation chroot`, storage driver vfs,
#     the host's network, ulimits this machine allows. The build stage compiles the project and
#     runs the unit tests; an image whose unit tests fail is not built.
#  4. Runs the image's binaries with `buildah run --isolation chroot` (podman run needs cgroups
#     this machine does not give it): each one's --help, the user, a coordinator and an agent
#     started from the image with a config, their /readyz, `modelcachectl enable-caching` and one
#     `modelcachectl fetch` through the agent in the image from nginx on the host, the fetched
#     files' sha256 against the origin's, and a clean stop on SIGTERM.
# Prints a summary at the end; exits non-zero at the first check that fails.
#
# Run it on its own (as root): `bash scripts/image-test.sh`. The build compiles the whole project
# in the image, so it takes a long time (see README, "The container image"). The README's test
# command runs it as the CTest test ImageTest.BuiltWithBuildahAndRunFromTheImage (label `image`)
# with --ctest: then it runs only with MODELCACHE_IMAGE_TEST=1 in the environment, and otherwise,
# or when it cannot run here (not root, no buildah and no apt-get), exits 77, which CTest counts
# as skipped, with the reason on its last line.
#
# Env: KEEP=1 keeps the work folder (configs, logs, cache); IMAGE_TEST_REBUILD_BASE=1 makes the
# base images again; IMAGE_TEST_MIRROR a deb822 .sources file or one-line "deb URL SUITE main"
# for mmdebstrap (default: the host's debian.sources, else deb.debian.org);
# IMAGE_TEST_LAYERS=1 keeps intermediate layers for faster rebuilds (uses much more disk with vfs);
# IMAGE_TEST_SKIP_BUILD=1 runs the checks on the image built before, if there is one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
source "$here/lib.sh"

started=$(date +%s)
step() { printf '\n== image-test: %s\n' "$*"; }
fail() { echo "image-test: FAILED: $*" >&2; exit 1; }
skip() { echo "image-test: skipped: $*"; exit 77; }

from_ctest=0
case "${1:-}" in
  --ctest) from_ctest=1 ;;
  "") ;;
  *) echo "usage: $0 [--ctest]" >&2; exit 2 ;;
esac
if [ "$from_ctest" = 1 ] && [ "${MODELCACHE_IMAGE_TEST:-0}" != 1 ]; then
  skip "it builds the whole image (about an hour on 2 cores); set MODELCACHE_IMAGE_TEST=1 to run it" \
       "in the test command, or run scripts/image-test.sh on its own"
fi

# --- 1. Tools -----------------------------------------------------------------------------------
image_tools=$(awk '$1 == "image" {print $2}' "$here/packages.txt")
missing=()
for package in $image_tools; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
# The origin on the host: nginx and curl, from the `test` lines (setup.sh installs them too).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
if [ "$(id -u)" != 0 ]; then
  message="run as root: mmdebstrap and buildah's chroot isolation need it here"
  [ "$from_ctest" = 1 ] && skip "$message"
  fail "$message"
fi
if [ ${#missing[@]} -gt 0 ] && ! command -v apt-get >/dev/null; then
  message="missing ${missing[*]} and no apt-get to install them"
  [ "$from_ctest" = 1 ] && skip "$message"
  fail "$message"
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "image-test: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# buildah 1.28 does not read STORAGE_DRIVER from the environment for every command: say it to
# each. vfs works on any file system, overlay needs kernel support a container may not give.
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
bh() { buildah --storage-driver vfs "$@"; }
pm() { podman --storage-driver vfs "$@"; }

version=$(sed -n 's/^project(modelcache VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
[ -n "$version" ] || fail "no project version in CMakeLists.txt"
image="localhost/modelcache/modelcache:$version"

work=$(mktemp -d /tmp/modelcache-image-test-XXXXXX)
pids=()
containers=()
cleanup() {
  local status=$?
  [ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
  local container
  for container in "${containers[@]}"; do bh rm "$container" >/dev/null 2>&1 || true; done
  if [ "$status" != 0 ]; then
    echo "image-test: FAILED (exit $status); last lines of the logs:" >&2
    for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }; done
  fi
  if [ "${KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then echo "image-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- 2. Base images -----------------------------------------------------------------------------
# The label names the recipe: a base of another recipe (or pulled from a registry) is made again.
base_recipe="mmdebstrap-minbase-bookworm-1"
if [ -n "${IMAGE_TEST_MIRROR:-}" ]; then
  mirrors=("$IMAGE_TEST_MIRROR")
elif grep -qs '^Suites:.*bookworm' /etc/apt/sources.list.d/debian.sources; then
  mirrors=(/etc/apt/sources.list.d/debian.sources)
else
  mirrors=("deb http://deb.debian.org/debian bookworm main"
           "deb http://deb.debian.org/debian bookworm-updates main"
           "deb http://deb.debian.org/debian-security bookworm-security main")
fi
# What debuerreotype's slimify (the official -slim images) leaves out, and later apt installs in
# the image then leave out too (dpkg keeps these options in /etc/dpkg/dpkg.cfg.d/).
slim_options=(
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/linda/*'
)
make_base() {  # TAG RECIPE MMDEBSTRAP-OPTION...
  local tag=$1 recipe=$2; shift 2
  local found
  found=$(bh inspect --type image --format '{{index .OCIv1.Config.Labels "org.modelcache.base-recipe"}}' "$tag" 2>/dev/null || true)
  if [ "${IMAGE_TEST_REBUILD_BASE:-0}" != 1 ] && [ "$found" = "$recipe" ]; then
    echo "$tag: reusing the base made by $recipe"
    return
  fi
  echo "$tag: mmdebstrap --variant=minbase $* bookworm (mirror: ${mirrors[*]})"
  mmdebstrap --quiet --variant=minbase "$@" bookworm "$work/base.tar" "${mirrors[@]}" > "$work/mmdebstrap.log" 2>&1 ||
    fail "mmdebstrap for $tag (log: $work/mmdebstrap.log)"
  # The official images' config: a PATH and bash as the command.
  pm import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --change "LABEL org.modelcache.base-recipe=$recipe" \
    "$work/base.tar" "$tag" >/dev/null
  rm -f "$work/base.tar"
}
step "base images from Debian packages"
base_start=$(date +%s)
make_base docker.io/library/debian:bookworm "$base_recipe"
make_base docker.io/library/debian:bookworm-slim "$base_recipe-slim" "${slim_options[@]}"
base_seconds=$(( $(date +%s) - base_start ))

# --- 3. The image -------------------------------------------------------------------------------
limit() {  # HARD-LIMIT CAP: the hard limit, at most CAP
  if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi
}
nofile=$(limit "$(ulimit -Hn)" 1048576)
nproc=$(limit "$(ulimit -Hu)" 32768)
layers=()
[ "${IMAGE_TEST_LAYERS:-0}" = 1 ] && layers=(--layers)
build_start=$(date +%s)
if [ "${IMAGE_TEST_SKIP_BUILD:-0}" = 1 ] && bh inspect --type image "$image" >/dev/null 2>&1; then
  step "reusing $image (IMAGE_TEST_SKIP_BUILD=1)"
  echo "(not built by this run)" > "$work/build.log"
  reused_image=1
else
  step "buildah bud $image (compiles the project and runs its unit tests: be patient)"
  # --pull=never: the bases are the ones just made, never a registry's.
  if ! bh bud --isolation chroot --network host --pull=never "${layers[@]}" \
       --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
       -t "$image" -f "$root/Dockerfile" "$root" > "$work/build.log" 2>&1; then
    fail "buildah bud (log: $work/build.log)"
  fi
fi
build_seconds=$(( $(date +%s) - build_start ))
unit_summary=$(grep -E '^[0-9]+% tests passed' "$work/build.log" | tail -n 1 || true)
[ "${reused_image:-0}" = 1 ] && unit_summary="(the image was built before: IMAGE_TEST_SKIP_BUILD=1)"
unit_skipped=$(grep -E '\*\*\*Skipped|Not Run' "$work/build.log" | sed 's/^ *//' || true)
image_size=$(bh images --format '{{.Size}}' "$image" | head -n 1)
echo "built in ${build_seconds}s: $image ($image_size); unit tests in the build: $unit_summary"

# --- 4. Run what the image holds ----------------------------------------------------------------
new_container() {  # NAME VARIABLE: a working container of the image, its name in VARIABLE
  # (not printed for $(...): the name must reach `containers` in this shell, for the cleanup)
  local name="modelcache-image-test-$1-$$"
  bh from --pull=never --name "$name" "$image" >/dev/null
  containers+=("$name")
  printf -v "$2" '%s' "$name"
}
in_image() {  # CONTAINER COMMAND...: runs COMMAND in the image (its user), the work folder shared
  local container=$1; shift
  bh run --isolation chroot --network host --volume "$work/share:$work/share" "$container" -- "$@"
}
# The daemon's own process under `buildah run` (buildah-chroot-runtime, buildah-chroot-exec, it):
# signalled by its PID, so that it sees SIGTERM, not the SIGKILL buildah sends when it is killed.
daemon_pid() {  # BUILDAH-PID COMM
  local queue=("$1") pid child
  while [ ${#queue[@]} -gt 0 ]; do
    pid=${queue[0]}; queue=("${queue[@]:1}")
    for child in $(pgrep -P "$pid" || true); do
      [ "$(cat "/proc/$child/comm" 2>/dev/null)" = "$2" ] && { echo "$child"; return 0; }
      queue+=("$child")
    done
  done
  return 1
}
stop_daemon() {  # BUILDAH-PID COMM: SIGTERM to the daemon, then its exit status (via buildah)
  local buildah_pid=$1 pid i
  pid=$(daemon_pid "$buildah_pid" "$2") || fail "no $2 process under buildah run $buildah_pid"
  kill -TERM "$pid"
  for i in $(seq 300); do kill -0 "$buildah_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$buildah_pid"
}

step "the binaries in the image"
mkdir -p "$work/share"
new_container probe probe
labels_version=$(bh inspect --type image --format '{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}' "$image")
[ "$labels_version" = "$version" ] || fail "image label version $labels_version, project $version"
entrypoint=$(bh inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$image")
user=$(in_image "$probe" id -u):$(in_image "$probe" id -g)
[ "$user" = "10001:10001" ] || fail "the image runs as $user, not 10001:10001"
help_lines=()
for binary in modelcache-agent modelcache-coordinator modelcachectl; do
  binary_version=$(in_image "$probe" "/usr/local/bin/$binary" --version 2>&1) ||
    fail "$binary --version in the image: $binary_version"
  [ "$binary_version" = "$binary $version" ] || fail "$binary --version printed '$binary_version', not '$binary $version'"
  in_image "$probe" "/usr/local/bin/$binary" --help > "$work/$binary-help.txt" 2>&1 ||
    fail "$binary --help in the image: $(cat "$work/$binary-help.txt")"
  help_lines+=("$binary_version; --help: $(head -n 1 "$work/$binary-help.txt")")
  echo "${help_lines[-1]}"
done
missing_libraries=$(in_image "$probe" sh -c 'for b in /usr/local/bin/*; do ldd "$b"; done' | grep 'not found' || true)
[ -z "$missing_libraries" ] || fail "libraries missing in the image: $missing_libraries"

step "an origin on the host: nginx serving a generated model"
model_dir="$work/origin/models/image-test/v1"
mkdir -p "$model_dir/weights"
echo '{"architectures": ["ImageTest"]}' > "$model_dir/config.json"
head -c $((24 << 20)) /dev/urandom > "$model_dir/weights/model.safetensors"
write_manifest "$model_dir" config.json weights/model.safetensors
origin_port=$(free_port)
start_nginx "$work/nginx" "$work/origin" "$origin_port"
pids+=("$NGINX_PID")
source_url="http://127.0.0.1:$origin_port/models/image-test/v1/"
wait_for 10 curl -sf "${source_url}modelcache.json"
: > "$work/nginx/access.log"

step "a coordinator and an agent started from the image"
# The daemons run as uid 10001: their folders are theirs.
mkdir -p "$work/share/coordinator" "$work/share/cache" "$work/share/run"
chown 10001:10001 "$work/share/coordinator" "$work/share/cache" "$work/share/run"
coordinator_port=$(free_port)
coordinator_metrics_port=$(free_port)
cat > "$work/share/coordinator.yaml" <<CONF
modelsCacheStorage: {enabled: true, storageSize: 1Gi}
coordinator:
  listen: 127.0.0.1:$coordinator_port
  database: $work/share/coordinator/coordinator.db
  metricsAddress: 127.0.0.1:$coordinator_metrics_port
CONF
new_container coordinator coordinator_container
in_image "$coordinator_container" /usr/local/bin/modelcache-coordinator --config "$work/share/coordinator.yaml" \
  > "$work/coordinator.log" 2>&1 &
coordinator_buildah=$!
pids+=("$coordinator_buildah")
wait_for 60 curl -sf "http://127.0.0.1:$coordinator_metrics_port/readyz" || fail "coordinator /readyz"
coordinator_ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$coordinator_metrics_port/readyz")

agent_metrics_port=$(free_port)
socket="$work/share/run/agent.sock"
# The origin listens on loopback, which the agent refuses unless network.allow lists it
# (docs/configuration.md, "network").
cat > "$work/share/agent.yaml" <<CONF
cacheRoot: $work/share/cache
socket: $socket
metricsAddress: 127.0.0.1:$agent_metrics_port
nodeName: image-test-node
coordinator: 127.0.0.1:$coordinator_port
modelsCacheStorage: {enabled: true, storageSize: 1Gi}
network: {allow: ["127.0.0.1/32"]}
CONF
new_container agent agent_container
in_image "$agent_container" /usr/local/bin/modelcache-agent --config "$work/share/agent.yaml" > "$work/agent.log" 2>&1 &
agent_buildah=$!
pids+=("$agent_buildah")
wait_for 60 curl -sf "http://127.0.0.1:$agent_metrics_port/readyz" || fail "agent /readyz"
agent_ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$agent_metrics_port/readyz")
echo "coordinator /readyz $coordinator_ready, agent /readyz $agent_ready"

step "modelcachectl in the image: enable-caching, nodes, then fetch through the agent"
new_container ctl ctl
in_image "$ctl" /usr/local/bin/modelcachectl enable-caching image-test --coordinator "127.0.0.1:$coordinator_port" \
  > "$work/ctl-enable.log" 2>&1 || fail "modelcachectl enable-caching: $(cat "$work/ctl-enable.log")"
# A coordinator with a model registry fills a model only from the source registered for it
# (`models set-source`); register it when this modelcachectl has the command.
# (`models set-source --help` is no test: CLI11 answers it with `models`' help when `models` has
# no such command.)
models_help=$(in_image "$ctl" /usr/local/bin/modelcachectl models --help 2>&1 || true)
if grep -q '^ *set-source ' <<< "$models_help"; then
  in_image "$ctl" /usr/local/bin/modelcachectl models set-source image-test@v1 "$source_url" \
    --coordinator "127.0.0.1:$coordinator_port" > "$work/ctl-source.log" 2>&1 ||
    fail "modelcachectl models set-source: $(cat "$work/ctl-source.log")"
fi
node_connected() {  # (grep reads it all: with -q it could stop early and fail the pipe)
  in_image "$ctl" /usr/local/bin/modelcachectl nodes --coordinator "127.0.0.1:$coordinator_port" 2>/dev/null |
    grep image-test-node >/dev/null
}
wait_for 60 node_connected || fail "the agent in the image does not show in modelcachectl nodes"
# The coordinator pushes the policy to the agent over its stream; until the agent has it, the
# agent refuses a disabled model with FAILED_PRECONDITION (exit 4). Poll with a deadline.
fetch_once() {
  in_image "$ctl" /usr/local/bin/modelcachectl fetch --socket "$socket" --model image-test --version v1 \
    --source "$source_url" > "$work/fetch.out" 2> "$work/fetch.err"
}
wait_for 60 fetch_once || fail "modelcachectl fetch through the agent: $(cat "$work/fetch.err")"
fetched_path=$(tail -n 1 "$work/fetch.out")
echo "fetch printed: $fetched_path"
[ "$fetched_path" = "$work/share/cache/models/image-test/v1" ] || fail "fetch printed $fetched_path"
(cd "$model_dir" && sha256sum config.json weights/model.safetensors) > "$work/origin.sha256"
(cd "$fetched_path" && sha256sum --quiet -c "$work/origin.sha256") || fail "the fetched files differ from the origin's"
origin_bytes=$(awk '{s += $10} END {print s + 0}' "$work/nginx/access.log")
model_bytes=$(cat "$model_dir/config.json" "$model_dir/weights/model.safetensors" | wc -c)
[ "$origin_bytes" -ge "$model_bytes" ] || fail "the origin served $origin_bytes bytes, the model has $model_bytes"
owner=$(stat -c %u "$fetched_path/weights/model.safetensors")
hits=$(curl -s "http://127.0.0.1:$agent_metrics_port/metrics" | grep -E '^modelcache_ensure_requests_total' || true)

step "SIGTERM stops both daemons cleanly"
agent_exit=0; stop_daemon "$agent_buildah" modelcache-agen || agent_exit=$?
coordinator_exit=0; stop_daemon "$coordinator_buildah" modelcache-coor || coordinator_exit=$?
[ "$agent_exit" = 0 ] || fail "the agent exited with $agent_exit on SIGTERM"
[ "$coordinator_exit" = 0 ] || fail "the coordinator exited with $coordinator_exit on SIGTERM"

echo
echo "== modelcache image test summary =="
echo "  base images: debian:bookworm and debian:bookworm-slim from mmdebstrap --variant=minbase + podman import (${base_seconds}s)"
echo "  build: buildah bud --isolation chroot, vfs, --network host, nofile=$nofile nproc=$nproc: ${build_seconds}s"
echo "  image: $image, $image_size, version label $labels_version, user $user, entrypoint $entrypoint"
echo "  unit tests in the build: $unit_summary"
if [ -n "$unit_skipped" ]; then
  while read -r line; do echo "    skipped: $line"; done <<< "$unit_skipped"
fi
for line in "${help_lines[@]}"; do echo "  $line"; done
echo "  shared libraries: all found (ldd)"
echo "  coordinator from the image: /readyz $coordinator_ready; agent from the image: /readyz $agent_ready"
echo "  modelcachectl enable-caching, nodes: ok (image-test-node connected)"
echo "  modelcachectl fetch through the agent from nginx on the host: $fetched_path"
echo "    sha256 of both files = origin's; origin served $origin_bytes bytes for a $model_bytes-byte model; files owned by uid $owner"
while read -r line; do [ -n "$line" ] && echo "    $line"; done <<< "$hits"
echo "  SIGTERM: agent exit $agent_exit, coordinator exit $coordinator_exit"
echo "  time: $(( $(date +%s) - started ))s"
echo "  result: OK"
