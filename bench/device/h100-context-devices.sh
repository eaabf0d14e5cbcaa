#!/usr/bin/env bash
# A device met first in CL_CONTEXT_DEVICES on the GPU machine: fixtures/opencl-c/context_devices natively on NVIDIA's
# OpenCL, through the ICD, and migrated (unix workers) before every one of its calls; stdout compared each time.
# Run through the device tool with carry [".device", "dist"]; prints a summary (kept as bench/results/h100/context-devices.txt).
set -uo pipefail
R="${OUT:-/tmp/out}/h100-context-devices"
source bench/device/icd-setup.sh
EXE=$(prog context_devices)
echo "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
timeout 60 "$EXE" > "$R/native.out" 2>&1; echo "natively: exit $?"; cat "$R/native.out"
icd timeout 60 "$EXE" > "$R/icd.out" 2>&1; echo "through the ICD: exit $?, same stdout: $(cmp -s "$R/native.out" "$R/icd.out" && echo yes || echo no)"
ok=0; n=0
for c in $(seq 1 26); do
  rm -rf /tmp/j-cd "$R/rep.jsonl"
  icd env AVA_CHANNEL=UNIX AVA_JOURNAL=/tmp/j-cd AVA_MIGRATION_CALL_ID=$c AVA_MIGRATION_REPORT="$R/rep.jsonl" timeout 60 "$EXE" > "$R/m.out" 2> "$R/m.err"; rc=$?
  n=$((n + 1)); same=no; cmp -s "$R/native.out" "$R/m.out" && same=yes
  [ -f "$R/rep.jsonl" ] && [ $rc = 0 ] && [ $same = yes ] && ok=$((ok + 1))
  [ $same = yes ] || { echo "call $c: exit $rc"; tail -2 "$R/m.err"; }
done
echo "migrated before calls 1..26: $ok of $n with identical stdout and a migration report"
