#!/usr/bin/env bash
# Soak: runs the default suite against the reference SUT again and again for MINUTES
# (default 15), then reports every case that did not pass every time (a flaky case) with its
# pass/fail counts. Usage: scripts/soak.sh [MINUTES] [extra `run` arguments…]
# Uses a release build; each run's reports go to target/soak/<n>/ and are summarised from
# summary.json. Exit 0 when no case was flaky or failing, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-15}"
shift || true
cargo build --locked --release -q || exit 1
bin="${CARGO_TARGET_DIR:-target}/release/cpm-harness"
out="${CARGO_TARGET_DIR:-target}/soak"
rm -rf "$out"
mkdir -p "$out"
end=$(($(date +%s) + minutes * 60))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
  n=$((n + 1))
  t0=$(date +%s)
  "$bin" run -q --jobs 2 --out "$out/$n" --captures "$out/$n/captures" "$@" >"$out/$n.log" 2>&1
  rc=$?
  echo "run $n: exit $rc, $(($(date +%s) - t0)) s: $(grep -E 'passed,' "$out/$n.log" | tail -1)"
  rm -rf "$out/$n/captures"
done
# Per case: how many runs gave each verdict (from every run's summary.json).
python3 - "$out" "$n" <<'PY' || exit 1
import json, sys, glob, collections
out, runs = sys.argv[1], int(sys.argv[2])
counts = collections.defaultdict(collections.Counter)
notes = collections.defaultdict(list)
for f in glob.glob(f"{out}/*/run-*/summary.json"):
    for c in json.load(open(f))["cases"]:
        counts[c["id"]][c["verdict"]] += 1
        if c["verdict"] != "pass":
            ev = [e for k in c["checks"] if k["verdict"] != "pass" and k["verdict"] != "not observable" for e in k["evidence"][:1]]
            notes[c["id"]].append(f'{c["verdict"]}: {ev[:1]}')
bad = {k: v for k, v in counts.items() if set(v) != {"pass"}}
total = sum(sum(v.values()) for v in counts.values())
print(f"soak: {runs} runs, {len(counts)} cases, {total} case runs, {len(bad)} flaky or failing")
for k in sorted(bad):
    v = bad[k]
    print(f"  {k}: " + ", ".join(f"{n} {verdict}" for verdict, n in sorted(v.items())))
    for line in notes[k][:3]:
        print(f"      {line}")
sys.exit(1 if bad else 0)
PY
