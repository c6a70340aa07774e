#!/usr/bin/env bash
# Static instruction counts of a squish shader on an AMD GPU ISA, without a
# GPU: Mesa's RADV compiles for a null device (RADV_FORCE_FAMILY, default
# gfx1100 = RDNA3). Prints the driver's statistics and the largest loop's
# instruction count (s_waitcnt not counted): the GEMV's per-chunk work.
# usage: scripts/vk-isa.sh SHADER|PATH.comp "GLSLC DEFINES" SPEC0 SPEC1 ...
#   e.g. scripts/vk-isa.sh gemv_codes "-DTT=1 -DNR=4" 128 4 1 1 0 2
#   (spec: WG BITS SCALE ZERO LUTN RPW, see runtime/vulkan/vk_internal.h)
set -eu
here=$(cd "$(dirname "$0")" && pwd) tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=$1 defs=$2; shift 2
cc -O1 -o "$tmp/vk-isa" "$here/vk-isa.c" -lvulkan
# shellcheck disable=SC2086
src=$here/../runtime/vulkan/shaders/$name.comp
[ -f "$name" ] && src=$name # or a path to a .comp
glslc --target-env=vulkan1.1 -O $defs "$src" -o "$tmp/s.spv"
export RADV_FORCE_FAMILY=${RADV_FORCE_FAMILY:-gfx1100} VK_DRIVER_FILES=/usr/share/vulkan/icd.d/radeon_icd.x86_64.json
"$tmp/vk-isa" "$tmp/s.spv" ir "$@" >"$tmp/out" 2>/dev/null
head -1 "$tmp/out"
awk '/^BB[0-9]+:/ { sub(":", "", $1); at[$1] = NR; n[NR] = 0 }
     /^\t/ && $1 != "s_waitcnt" { cnt[NR] = 1 }
     $1 ~ /^s_(c)?branch/ { t = $2; if (t in at && at[t] < NR) { c = 0; for (i = at[t]; i <= NR; i++) c += cnt[i]; if (c > best) best = c } }
     END { print "largest loop: " best + 0 " instructions (s_waitcnt not counted)" }' "$tmp/out"
