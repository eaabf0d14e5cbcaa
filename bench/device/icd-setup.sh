# Sourced by the device scripts with R set to their results folder: NVIDIA's OpenCL as the native platform, the
# fixture programs and the ICD built (into $R/build.json), and `icd <cmd>` running a command through the ICD, whose
# sidecar's worker gets the NVIDIA-only loader variables back; `prog <name>` prints a fixture program's path.
# NVIDIA's platform first: programs link the CUDA toolkit's Khronos loader, which lists OCL_ICD_FILENAMES (set
# machine-wide to PoCL then NVIDIA) before /etc/OpenCL/vendors, and the C programs take the first platform.
source .device/env.sh
mkdir -p "$R"
NV=libnvidia-opencl.so.1
export OCL_ICD_FILENAMES=$NV AVA_CACHE_DIR=/tmp/ava-cache CPATH="$PWD/.device/include${CPATH:+:$CPATH}"
unset OCL_ICD_VENDORS
node --input-type=module -e "
  const { buildOpenclPrograms } = await import('./dist/fixtures/opencl-c/build.js');
  const { icdEnvironment } = await import('./dist/src/cfront/icd-env.js');
  console.log(JSON.stringify({ programs: await buildOpenclPrograms(), env: await icdEnvironment() }));
" > "$R/build.json" 2> "$R/build.err" || { cat "$R/build.err"; exit 1; }
ICD=$(node -e "console.log(require('$R/build.json').env.OCL_ICD_VENDORS)")
LIB=$(node -e "console.log(require('$R/build.json').env.OCL_ICD_FILENAMES)")
prog() { node -e "console.log(require('$R/build.json').programs['$1'])"; }
icd() { OCL_ICD_VENDORS=$ICD OCL_ICD_FILENAMES=$LIB AVA_OCL_ICD_FILENAMES=$NV AVA_OCL_ICD_VENDORS= "$@"; }
