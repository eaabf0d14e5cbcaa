#!/usr/bin/env bash
# The ICD bench on the GPU machine's PoCL (its CPU OpenCL, 16 cores): `npm run bench -- icd` with PoCL as the native
# platform, so that the launch-heavy target (issue 12: within 1.5x of native on PoCL) is also measured on a machine
# whose cores are not all taken by PoCL's own threads. Run through the device tool with carry [".device", "dist"];
# writes $OUT/pocl-icd/{icd.json,bench.txt,clinfo.txt}.
set -uo pipefail
OUT=${OUT:-/tmp/out}
R="$OUT/pocl-icd"
mkdir -p "$R"
source .device/env.sh
POCL=$(grep -h . /etc/OpenCL/vendors/*pocl*.icd 2>/dev/null | head -1)
[ -n "$POCL" ] || POCL=$(ls /usr/lib/x86_64-linux-gnu/libpocl.so* 2>/dev/null | head -1)
[ -n "$POCL" ] || { echo "no PoCL on this machine" | tee "$R/error.txt"; exit 1; }
export OCL_ICD_FILENAMES=$POCL AVA_CACHE_DIR=/tmp/ava-cache CPATH="$PWD/.device/include${CPATH:+:$CPATH}"
unset OCL_ICD_VENDORS
echo "PoCL: $POCL; cores: $(nproc)" | tee "$R/machine.txt"
clinfo -l > "$R/clinfo.txt" 2>&1
timeout 550 node dist/bench/run.js icd > "$R/bench.txt" 2>&1
cp bench/results/icd.json "$R/icd.json" 2>/dev/null
tail -32 "$R/bench.txt"
