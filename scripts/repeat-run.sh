#!/usr/bin/env bash
# Runs the full default suite N times in a row (default 20) with a release build and stops at
# the first run that does not exit 0. Prints one line per run; reports go to target/repeat/.
# Usage: [JOBS=48] scripts/repeat-run.sh [N] [extra `run` arguments...]
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
shift || true
cargo build --release --locked -q || exit 2
out=target/repeat
rm -rf "$out" && mkdir -p "$out"
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  target/release/cpm-harness run -q --jobs "${JOBS:-48}" --out "$out/reports" --captures "$out/captures" "$@" >"$out/run$i.log" 2>&1
  rc=$?
  echo "run $i/$n: exit $rc in $(( $(date +%s) - start )) s: $(grep -h 'passed,' "$out/run$i.log")"
  rm -rf "$out/captures"
  if [ "$rc" -ne 0 ]; then
    echo "run $i failed; its log: $out/run$i.log"
    exit 1
  fi
done
echo "all $n runs passed"
