#!/usr/bin/env bash
# Installs the Debian packages squish needs to build and test (only the
# missing ones; nothing when all are present). Sourced by the other scripts.
set -euo pipefail
SQUISH_PACKAGES="build-essential cmake pkg-config libzstd-dev libjson-c-dev check libsubunit-dev jq groff-base python3-numpy clang libclang-rt-14-dev libhdf5-dev hdf5-tools libopenblas-dev libarchive-dev parallel zstd zip time libvulkan-dev glslc mesa-vulkan-drivers librsvg2-bin"
squish_install_deps() {
  local missing=()
  for p in $SQUISH_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# squish_build DIR [cmake options...]: configure and build out of tree
squish_build() {
  local dir=$1; shift
  # line tables only (-g1): enough for sanitizer reports and backtraces, and the
  # two trees build about 15% faster than with full variable tracking (-g)
  cmake -S "$SQUISH_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DSQUISH_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" >/dev/null
}
SQUISH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
