#!/usr/bin/env bash
# Sweeps the Vulkan GEMV's tuning knobs on a GPU in one go and prints, per
# setting, each scheme's GEMV and Q8 ratio to the copy bandwidth, and in
# brackets the GEMV's fraction of a same-size read (by hand, on the machine
# with the GPU; not part of the tests). "L": the GEMV ran the limb kernel.
# usage: [R=ROWS] [PART=1|2|table] scripts/vk-tune.sh [BENCH [GPU_MIB]]
#   BENCH: default build/squish-bench; PART=1: the full table of every codec at
#   the defaults and the single-knob lines; PART=2: the WG x TPR x NR grid;
#   unset: both (each part fits a 10-minute run on an H100);
#   PART=table: issue 22's table, every codec at the five shapes of SHAPES
#   (default below), each shape's bench run with its own copy figure, then one
#   summary: GEMV GB/s, share of that run's copy GB/s, OF_READ. QuIP# encodes on
#   the CPU (XᵀX = I): it runs separately per shape, within QUIP_TIMEOUT seconds
#   (default 90; QUIP_TIMEOUT=0 leaves it out); SHAPE_TIMEOUT=S bounds each
#   shape's run of the other codecs (default 0: none) so that one device call
#   ends inside its limit with the shapes done so far.
set -u
BENCH=${1:-build/squish-bench} MIB=${2:-2048}
if [ "${PART:-}" = table ]; then
  SHAPES=${SHAPES:-4096x14336 14336x4096 8192x8192 28672x8192 16384x16384}
  CODECS=${CODECS:-f16,bf16,int8:pc:sym,int4:g128:sym,int4:g128:asym,nf4:g64,fp4_e2m1:g32,mxfp4,fp6_e3m2:g128,fp8_e4m3,mxfp6_e3m2,mxfp8_e4m3,int3,int2,aqlm,spqr:w3,mix:4}
  "$BENCH" --backend vulkan --list-devices
  log=$(mktemp)
  for sh in $SHAPES; do
    r=${sh%x*} c=${sh#*x}
    echo "== $sh"
    timeout "${SHAPE_TIMEOUT:-0}" stdbuf -oL "$BENCH" --backend vulkan -R "$r" -C "$c" --gpu-mib "$MIB" --min-time ${MIN_TIME:-0.1} -q -c "$CODECS" 2>&1 |
      grep -v '^# [GckQRKaof]' | sed "s/^/$sh /" | tee -a "$log"
    [ "${QUIP_TIMEOUT:-90}" = 0 ] ||
      timeout "${QUIP_TIMEOUT:-90}" "$BENCH" --backend vulkan -R "$r" -C "$c" --gpu-mib "$MIB" --min-time ${MIN_TIME:-0.1} -q \
        -c quip:2,quip:3,quip:4 2>&1 | grep -v '^#\|^SCHEME' | sed "s/^/$sh /" | tee -a "$log"
  done
  # summary: one line per scheme, per shape "GB/s share (OF_READ)"
  echo "== summary: GEMV GB/s, share of the same run's copy GB/s (OF_READ); copy GB/s per shape first"
  awk -v shapes="$SHAPES" 'BEGIN { n = split(shapes, S, " ") }
    / copy shader over / { for (i = 1; i <= NF; i++) if ($i == "GB/s") copy[$1] = $(i - 1) }
    $2 ~ /^[a-z]/ && $2 != "SCHEME" && NF >= 14 { if (!($2 in seen)) { seen[$2] = 1; order[++m] = $2 }
      v[$2, $1] = sprintf("%.0f %s (%s)", $7, $8, $13) }
    END { printf "%-16s", "copy"; for (j = 1; j <= n; j++) printf " | %-22s", S[j] ": " copy[S[j]]; print ""
      for (k = 1; k <= m; k++) { printf "%-16s", order[k]
        for (j = 1; j <= n; j++) printf " | %-22s", ((order[k], S[j]) in v ? v[order[k], S[j]] : "-"); print "" } }' "$log"
  rm -f "$log"
  exit 0
fi
SCHEMES=int4:g128:sym,int4:g128:asym,nf4:g64,mxfp4,fp4_e2m1:g32,int8:pc:sym
bench() { # env settings... -- extra bench options
  local envs=() opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  opts=("$@")
  printf '%-48s' "${envs[*]:-defaults} ${opts[*]}"
  env "${envs[@]}" "$BENCH" --backend vulkan -c "$SCHEMES" --gpu-mib "$MIB" --min-time 0.2 "${opts[@]}" 2>/dev/null |
    awk '/^[a-z]/ && !/^SCHEME/ { printf " %s %s/%s(%s)%s", $1, $7, ($10 == "-" ? "-" : $10), $12, ($NF == "limbs" ? "L" : "") } END { print "" }'
}
"$BENCH" --backend vulkan --list-devices
if [ "${PART:-1}" = 1 ]; then
"$BENCH" --backend vulkan -R ${R:-8192} -C ${R:-8192} --gpu-mib "$MIB" --min-time 0.2 2>/dev/null
bench -- -R ${R:-8192} -C ${R:-8192}
bench SQUISH_VULKAN_LIMBS=0 -- -R ${R:-8192} -C ${R:-8192}
bench SQUISH_VULKAN_PREFETCH=0 -- -R ${R:-8192} -C ${R:-8192}
bench SQUISH_VULKAN_PREFETCH=0 SQUISH_VULKAN_TPR=16 -- -R ${R:-8192} -C ${R:-8192}
bench SQUISH_VULKAN_ROWPAD=256 -- -R 28672 -C 8192   # rows 4096+256 bytes apart instead of 4096
bench SQUISH_VULKAN_SWIZZLE=1 -- -R 28672 -C 8192   # workgroups spread over the matrix instead of in row order
bench -- -R 14336 -C 4096
bench -- -R 16384 -C 16384   # a 4x larger matrix: how much is per-dispatch overhead
bench -- -R 28672 -C 8192    # a 70B-class MLP matrix
# the calibrated codecs (synthetic parts): AQLM's table GEMV (2x8, 4x8) against decoding codewords, 1x16, SpQR
"$BENCH" --backend vulkan -R ${R:-8192} -C ${R:-8192} --gpu-mib "$MIB" --min-time 0.2 -c aqlm,aqlm:4x8,aqlm:1x16,spqr:w3,spqr:w2,spqr:w4 2>/dev/null | grep -v '^#'
# QuIP# (encoded with a synthetic XᵀX at 4096x4096 to bound the encode time; the working set still
# spans --gpu-mib; the GEMV includes the Hadamard transforms of x and y)
"$BENCH" --backend vulkan -R 4096 -C 4096 --gpu-mib "$MIB" --min-time 0.2 -c quip:2,quip:3,quip:4,quip:4:rvq 2>/dev/null | grep -v '^#'
SQUISH_VULKAN_AQLM=direct "$BENCH" --backend vulkan -R ${R:-8192} -C ${R:-8192} --gpu-mib "$MIB" --min-time 0.2 -c aqlm,aqlm:4x8 2>/dev/null | grep -v '^#'
fi
[ "${PART:-2}" = 2 ] || exit 0
for wg in 128 256; do
  for tpr in 16 32 64 128; do
    for nr in 2 4; do
      bench SQUISH_VULKAN_WG=$wg SQUISH_VULKAN_TPR=$tpr SQUISH_VULKAN_NR=$nr -- -R ${R:-8192} -C ${R:-8192}
    done
  done
done
