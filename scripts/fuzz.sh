#!/usr/bin/env bash
# Fuzzes each parser target for a bounded time: scripts/fuzz.sh [SECONDS] [TARGET...]
# Targets (fuzz/fuzz_targets/): sip sdp msrp cpim pcap; SECONDS per target (default 30).
# Seeds: the malformed-input corpus (tests/corpus/<proto>/*.txt, directives stripped, CRLF
# line ends) and fuzz/seeds/<target>/. Exit 0 when no target crashed, 1 on a crash (the
# reproducer's path and the command to replay it are printed), 2 when the tools are missing.
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sip sdp msrp cpim pcap)

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: the nightly toolchain is MISSING (cargo fuzz needs it): rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

echo "== building the fuzz targets ($(cargo +nightly --version))"
if ! cargo +nightly fuzz build >/dev/null 2>fuzz/build.log; then
  tail -30 fuzz/build.log >&2
  echo "fuzz: the targets do not build" >&2
  exit 1
fi

declare -A proto=([sip]=sip [sdp]=sdp [msrp]=msrp [cpim]=cpim [pcap]=)
crashed=()
for t in "${targets[@]}"; do
  dir="fuzz/corpus/$t"
  mkdir -p "$dir" "fuzz/artifacts/$t"
  p="${proto[$t]-}"
  if [ -n "$p" ]; then
    for f in tests/corpus/"$p"/*.txt; do
      sed -e '/^#!/d' -e 's/$/\r/' "$f" >"$dir/seed-$(basename "$f" .txt)"
    done
  fi
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$dir/" 2>/dev/null
  max_len=16384
  [ "$t" = pcap ] && max_len=65536
  echo "== fuzzing $t for ${secs}s"
  # -rss_limit_mb: a parser that buffers without bound is a crash too; -timeout: a hang.
  cargo +nightly fuzz run "$t" "$dir" -- \
    -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 >"fuzz/$t.log" 2>&1
  rc=$?
  grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "fuzz/$t.log" | tail -2
  if [ $rc -ne 0 ]; then
    crashed+=("$t")
    echo "fuzz: $t CRASHED (exit $rc); last lines of fuzz/$t.log:" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|^thread' "fuzz/$t.log" | head -20 >&2
    for a in fuzz/artifacts/"$t"/*; do
      [ -e "$a" ] && echo "  reproduce: cargo +nightly fuzz run $t $a" >&2
    done
  fi
done
if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${crashed[*]} (add each reproducer to tests/corpus once fixed)" >&2
  exit 1
fi
echo "fuzz: no crash in ${targets[*]} (${secs}s each)"
