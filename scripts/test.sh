#!/usr/bin/env bash
# The project's test command: installs what is missing, builds, runs every unit and
# integration test, prints a summary. Exits non-zero when anything fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "${MODELCACHE_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup.sh || { echo "test: setup failed"; exit 1; }
fi
bash scripts/build.sh || { echo "test: build failed"; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
ctest --test-dir build --output-on-failure -j2 --timeout 900 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
elapsed=$(( $(date +%s) - start ))
# The image test (scripts/image-test.sh) skips unless MODELCACHE_IMAGE_TEST=1: its reason is in
# the log of this run (read it now: the `ctest -N` below writes that log again).
image_skip=$(grep -h '^image-test: skipped: ' build/Testing/Temporary/LastTest.log 2>/dev/null | tail -n 1)

echo
echo "== modelcache test summary =="
grep -E '^[0-9]+% tests passed' "$log" || true
for label in unit repository integration fault image; do
  count=$(ctest --test-dir build -N -L "^${label}\$" 2>/dev/null | awk '/Total Tests:/ {print $3}')
  echo "  ${label} tests: ${count:-0}"
done
# The fault suite (tests/fault, label "fault"): one line per case, then tried and passed.
fault_cases=$(ctest --test-dir build -N -L '^fault$' 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: //p')
if [ -n "$fault_cases" ]; then
  echo "  fault suite:"
  tried=0; passed=0
  while read -r case_name; do
    tried=$((tried + 1))
    line=$(grep -F -- ": ${case_name} " "$log" | grep -F " Test " | tail -n 1)
    case "$line" in
      *" Passed "*) passed=$((passed + 1)); echo "    pass  $case_name" ;;
      *"Skipped"*|*"Not Run"*) echo "    skip  $case_name" ;;
      "") echo "    ----  $case_name (not run)" ;;
      *) echo "    FAIL  $case_name" ;;
    esac
  done <<< "$fault_cases"
  echo "  fault suite: tried ${tried}, passed ${passed}"
fi
[ -z "$image_skip" ] || echo "  ${image_skip}"
skipped=$(grep -c 'Not Run\|\*\*\*Skipped' "$log" || true)
echo "  skipped: ${skipped}"
echo "  time: ${elapsed}s"
if [ "$status" -ne 0 ]; then
  echo "  FAILED:"
  sed -n '/The following tests FAILED:/,$p' "$log" | tail -n +2
  exit "$status"
fi
echo "  result: OK"
