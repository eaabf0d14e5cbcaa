#!/usr/bin/env bash
# Installs an OpenCL 1.2+ CPU implementation for ava-migrate's OpenCL spec, tests and workloads on Debian/Ubuntu:
# PoCL (pocl-opencl-icd), the ICD loader (libOpenCL.so.1, with ocl-icd-opencl-dev's libOpenCL.so), the Khronos
# headers (/usr/include/CL/cl.h) and clinfo. Idempotent: does nothing when a device, the header and the loader
# are already there. Uses sudo only when not root; runs `apt-get update` only if the install fails without it.
set -euo pipefail

PACKAGES=(pocl-opencl-icd ocl-icd-opencl-dev opencl-headers clinfo g++)
HEADER=/usr/include/CL/cl.h
# The C++ fixture program (fixtures/opencl-c/cpp_wrapper.cpp) uses the Khronos C++ bindings and a C++ compiler.
CXX_HEADER=/usr/include/CL/opencl.hpp

have_cxx() {
  command -v "${CXX:-c++}" >/dev/null 2>&1 && [ -f "$CXX_HEADER" ]
}

have_loader() {
  ldconfig -p 2>/dev/null | grep -q 'libOpenCL\.so\.1 ' ||
    ls /usr/lib/*/libOpenCL.so.1 /usr/lib/libOpenCL.so.1 /usr/local/lib/libOpenCL.so.1 >/dev/null 2>&1
}

have_device() {
  command -v clinfo >/dev/null 2>&1 && clinfo -l 2>/dev/null | grep -q 'Device #'
}

if have_device && [ -f "$HEADER" ] && have_loader && have_cxx; then
  echo "OpenCL is already installed (device, $HEADER, $CXX_HEADER, a C++ compiler and libOpenCL.so.1 present)."
  clinfo -l
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-opencl.sh: apt-get not found; install PoCL, the OpenCL ICD loader, headers and clinfo by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-opencl.sh: not root and sudo is not available" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

# ${SUDO[@]+...}: an empty array under `set -u` is an error before bash 4.4.
as_root() {
  ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive "$@"
}

install() {
  as_root apt-get install -y "${PACKAGES[@]}"
}

if ! install; then
  echo "install-opencl.sh: install failed, updating the package lists and retrying" >&2
  as_root apt-get update
  install
fi

for check in have_loader have_device have_cxx; do
  if ! "$check"; then
    echo "install-opencl.sh: installed ${PACKAGES[*]} but $check still fails" >&2
    clinfo -l || true
    exit 1
  fi
done
if [ ! -f "$HEADER" ]; then
  echo "install-opencl.sh: $HEADER is missing after the install" >&2
  exit 1
fi

clinfo -l
