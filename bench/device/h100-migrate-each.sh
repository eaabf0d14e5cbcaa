#!/usr/bin/env bash
# Fixture programs on the GPU machine: each of $PROGRAMS (default zero_copy deferred_reads) natively on NVIDIA's
# OpenCL, through the ICD, and migrated (unix workers) before every call index 1..$CALLS (default 60) that it reaches;
# each migrated run's stdout compared with the run through the ICD without a migration (and that one with native). Run through the device tool with carry [".device", "dist"]; prints a summary.
set -uo pipefail
R="${OUT:-/tmp/out}/h100-migrate-each"
source bench/device/icd-setup.sh
echo "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
for p in ${PROGRAMS:-zero_copy deferred_reads}; do
  EXE=$(prog "$p")
  timeout 60 "$EXE" > "$R/$p.native" 2>&1; echo "$p natively: exit $?, $(tail -1 "$R/$p.native")"
  icd timeout 60 "$EXE" > "$R/$p.icd" 2>&1; echo "$p through the ICD: exit $?, same stdout as natively: $(cmp -s "$R/$p.native" "$R/$p.icd" && echo yes || echo no)"
  ok=0; moved=0; n=0
  for c in $(seq 1 "${CALLS:-60}"); do
    rm -rf /tmp/j-me "$R/rep.jsonl"
    icd env AVA_CHANNEL=UNIX AVA_JOURNAL=/tmp/j-me AVA_MIGRATION_CALL_ID=$c AVA_MIGRATION_REPORT="$R/rep.jsonl" timeout 60 "$EXE" > "$R/m.out" 2> "$R/m.err"; rc=$?
    n=$((n + 1)); same=no; cmp -s "$R/$p.icd" "$R/m.out" && same=yes
    [ -f "$R/rep.jsonl" ] && moved=$((moved + 1))
    [ $rc = 0 ] && [ $same = yes ] && ok=$((ok + 1))
    [ $same = yes ] || { echo "$p call $c: exit $rc"; tail -2 "$R/m.err"; }
  done
  echo "$p: $ok of $n runs armed at calls 1..$n identical to the run without a migration; $moved of them migrated (the rest armed past the program's last call)"
done
