#!/usr/bin/env bash
# The ICD on the GPU machine (issue 12): the C programs of fixtures/opencl-c natively on NVIDIA's OpenCL and through
# the ICD (whose sidecar's worker loads NVIDIA's OpenCL), outputs compared, wall times measured; the launch-heavy
# program both ways; one migration of a native program with ava-migrate; then `npm run bench -- icd` when built.
# Run through the device tool with carry [".device", "dist"] (see ../shared/device/README.md); writes under $OUT
# (the files to keep, under $OUT/h100-icd/keep; everything in $OUT/h100-icd/all.tar.gz).
set -uo pipefail
OUT=${OUT:-/tmp/out}
R="$OUT/h100-icd"
mkdir -p "$R"
command -v cc >/dev/null || { echo "no C compiler on the device" | tee "$R/error.txt"; exit 1; }
source bench/device/icd-setup.sh
clinfo -l > "$R/clinfo-native.txt" 2>&1
icd clinfo -l > "$R/clinfo-icd.txt" 2>&1

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
echo '{"programs":[' > "$R/summary.json"
first=1
# PROGRAMS (space-separated) narrows the list; PROGRAMS_ONLY=1 stops after it (no launches, migration or bench).
for p in ${PROGRAMS:-info vector_add host_memory errors callbacks binaries threads no_release rect cpp_wrapper images cpp_default big_transfers context_devices zero_copy deferred_reads finish_callbacks}; do
  exe=$(prog $p)
  t0=$(date +%s%N); timeout 120 "$exe" > "$R/$p.native" 2> "$R/$p.native.err"; rn=$?; tn=$(ms $t0)
  t0=$(date +%s%N); icd timeout 120 "$exe" > "$R/$p.icd" 2> "$R/$p.icd.err"; ri=$?; ti=$(ms $t0)
  same=false; cmp -s "$R/$p.native" "$R/$p.icd" && same=true
  [ $first = 1 ] || echo ',' >> "$R/summary.json"; first=0
  echo "{\"program\":\"$p\",\"nativeExit\":$rn,\"icdExit\":$ri,\"nativeMs\":$tn,\"icdMs\":$ti,\"sameStdout\":$same}" >> "$R/summary.json"
  echo "$p: native exit $rn ${tn} ms, icd exit $ri ${ti} ms, same stdout: $same"
done
if [ "${PROGRAMS_ONLY:-0}" = 1 ]; then echo ']}' >> "$R/summary.json"; mkdir -p "$R/keep" && cp "$R/summary.json" "$R/keep/"; exit 0; fi
echo '],"launches":[' >> "$R/summary.json"
exe=$(prog launches)
for mode in native icd-local icd-shm; do
  case $mode in
    native) envs=(OCL_ICD_FILENAMES=$NV) ;;
    icd-local) envs=(OCL_ICD_VENDORS=$ICD OCL_ICD_FILENAMES=$LIB AVA_OCL_ICD_FILENAMES=$NV AVA_CHANNEL=LOCAL) ;;
    icd-shm) envs=(OCL_ICD_VENDORS=$ICD OCL_ICD_FILENAMES=$LIB AVA_OCL_ICD_FILENAMES=$NV AVA_CHANNEL=SHM) ;;
  esac
  t0=$(date +%s%N); env "${envs[@]}" timeout 300 "$exe" 100000 > "$R/launches-$mode.out" 2> "$R/launches-$mode.err"; rc=$?; t=$(ms $t0)
  [ $mode = native ] || echo ',' >> "$R/summary.json"
  echo "{\"mode\":\"$mode\",\"exit\":$rc,\"wallMs\":$t,\"program\":$(node -e "console.log(JSON.stringify(require('fs').readFileSync('$R/launches-$mode.err','utf8').trim()))")}" >> "$R/summary.json"
  echo "launches 100000 $mode: exit $rc, ${t} ms wall; $(cat "$R/launches-$mode.err" | tail -1)"
done
echo '],"more":[' >> "$R/summary.json"
# An event per launch, and 64 MiB transfers: natively and through the ICD (LOCAL); the programs' own figures.
first=1
for what in "launches 20000 --events" "transfers 64 8"; do
  set -- $what
  exe=$(prog $1); shift
  for mode in native icd-local; do
    if [ $mode = native ]; then env OCL_ICD_FILENAMES=$NV timeout 300 "$exe" "$@" > "$R/more.out" 2> "$R/more.err"; rc=$?
    else icd env AVA_CHANNEL=LOCAL timeout 300 "$exe" "$@" > "$R/more.out" 2> "$R/more.err"; rc=$?; fi
    [ $first = 1 ] || echo ',' >> "$R/summary.json"; first=0
    echo "{\"what\":\"$what\",\"mode\":\"$mode\",\"exit\":$rc,\"program\":$(node -e "console.log(JSON.stringify(require('fs').readFileSync('$R/more.err','utf8').trim()))")}" >> "$R/summary.json"
    echo "$what $mode: exit $rc; $(tail -1 "$R/more.err")"
  done
done
echo ']}' >> "$R/summary.json"

timeout 120 node bin/ava-migrate.js --call r30 --seed 5 --journal /tmp/ava-journal --json -- "$(prog host_memory)" > "$R/migrate.json" 2> "$R/migrate.err"
echo "migration: $(tail -1 "$R/migrate.json" | cut -c1-300)"
if [ -f dist/bench/icd.js ]; then
  timeout 400 node dist/bench/run.js icd > "$R/bench.txt" 2>&1
  cp bench/results/icd.json "$R/icd.json" 2>/dev/null
  tail -30 "$R/bench.txt"
fi
mkdir -p "$R/keep" && cp "$R/summary.json" "$R/migrate.json" "$R/clinfo-icd.txt" "$R/clinfo-native.txt" "$R/keep/" 2>/dev/null
[ -f "$R/bench.txt" ] && cp "$R/bench.txt" "$R/keep/icd-bench.txt"; [ -f "$R/icd.json" ] && cp "$R/icd.json" "$R/keep/"
(cd "$R" && tar czf all.tar.gz --exclude=all.tar.gz --exclude=keep . )
