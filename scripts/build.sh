#!/usr/bin/env bash
# Configures (once) and builds everything into build/ with Ninja.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${MODELCACHE_BUILD_JOBS:-$(nproc)}
cmake -S "$root" -B "$root/build" -G Ninja ${CMAKE_BUILD_TYPE:+-DCMAKE_BUILD_TYPE=$CMAKE_BUILD_TYPE} >/dev/null
ninja -C "$root/build" -j"$jobs"
