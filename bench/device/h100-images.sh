#!/usr/bin/env bash
# Images on the GPU machine (issue 12): fixtures/opencl-c/images natively on NVIDIA's OpenCL and through the ICD,
# migrated right after each of its maps and at spread calls (unix workers), stdout compared each time; the
# TypeScript image-filter workload natively and through the guestlib. Run through the device tool with carry
# [".device", "dist"]; writes $OUT/h100-images/summary.txt (kept as bench/results/h100/images.txt).
set -uo pipefail
OUT=${OUT:-/tmp/out}
R="$OUT/h100-images"
S="$R/summary.txt"
source bench/device/icd-setup.sh
EXE=$(prog images)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)" > "$S"
t0=$(date +%s%N); timeout 120 "$EXE" > "$R/native.out" 2> "$R/native.err"; rn=$?; tn=$(ms $t0)
t0=$(date +%s%N); icd timeout 120 "$EXE" > "$R/icd.out" 2> "$R/icd.err"; ri=$?; ti=$(ms $t0)
same=no; cmp -s "$R/native.out" "$R/icd.out" && same=yes
echo "images natively (NVIDIA): exit $rn, ${tn} ms; through the ICD: exit $ri, ${ti} ms; same stdout: $same" >> "$S"
sed 's/^/  native: /' "$R/native.out" >> "$S"
[ "$same" = yes ] || { sed 's/^/  icd: /' "$R/icd.out" >> "$S"; tail -3 "$R/icd.err" >> "$S"; }

# The calls right after each map (journal of one run), and spread calls.
rm -rf /tmp/j-images; icd env AVA_RECORD_REPLAY=1 AVA_JOURNAL=/tmp/j-images timeout 120 "$EXE" > /dev/null 2>&1
MAPS=$(node dist/src/cli/run-journal.js export --journal /tmp/j-images | node -e "
  const lines = require('fs').readFileSync(0, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  console.log(lines.filter((r) => /^clEnqueueMap/.test(r.fn)).map((r) => r.seq + 1).join(' '));")
LAST=$(node dist/src/cli/run-journal.js export --journal /tmp/j-images | tail -1 | node -e "console.log(JSON.parse(require('fs').readFileSync(0,'utf8')).seq)")
ok=0; total=0
for c in $MAPS 5 15 25 45 60 75 $((LAST - 2)); do
  rm -rf /tmp/j-m "$R/report.jsonl"
  t0=$(date +%s%N)
  icd env AVA_CHANNEL=UNIX AVA_JOURNAL=/tmp/j-m AVA_MIGRATION_CALL_ID=$c AVA_MIGRATION_REPORT="$R/report.jsonl" timeout 120 "$EXE" > "$R/m.out" 2> "$R/m.err"; rc=$?; t=$(ms $t0)
  total=$((total + 1)); moved=no; [ -f "$R/report.jsonl" ] && moved=yes
  s=no; cmp -s "$R/native.out" "$R/m.out" && s=yes
  [ $rc = 0 ] && [ $s = yes ] && [ $moved = yes ] && ok=$((ok + 1))
  echo "migrated before call $c: exit $rc, ${t} ms, migrated: $moved, same stdout: $s $(grep -o 'in [0-9.]* ms of downtime' "$R/m.err" | head -1)" >> "$S"
  [ $s = yes ] || tail -2 "$R/m.err" >> "$S"
done
echo "migrations with identical stdout: $ok of $total (calls after the maps: $MAPS; last call $LAST)" >> "$S"

for mode in --native ""; do
  timeout 300 node dist/fixtures/opencl/cli.js image-filter $mode --platform nvidia --json > "$R/tsw.json" 2> "$R/tsw.err"; rc=$?
  echo "TS image-filter ${mode:-guestlib}: exit $rc $(node -e "const r=JSON.parse(require('fs').readFileSync('$R/tsw.json','utf8')); const w=r.workloads[0]; console.log(JSON.stringify({ok:w.ok, device:w.deviceName, summary:w.summary, ms:w.openclMs}))" 2>&1 | cut -c1-400)" >> "$S"
done
cat "$S"
