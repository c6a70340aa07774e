#!/usr/bin/env bash
# One device call comparing two builds of the Vulkan backend on the same GPU
# (by hand, on the lent GPU machine; not part of the tests). DIR holds
# gl/*.deb (the loader packages of the device README), new.tar.xz (packed
# as scripts/vk-device.sh bundle packs it: squish-bench, squish-quantize,
# make-testdata and lib/ with their libraries), old.tar.xz (the other build's
# squish-bench alone, run with new's libraries: the same set) and a model
# file lm34.squizd (squish-lm-34m quantized here; 25 MB). Prints, per build:
# the GEMV of CODECS at SHAPES (each run with its own copy figure), mix:4 at
# 4096x4096 (its encoder takes minutes at the larger shapes), the 34M
# model's decode tokens/s on the device (and once on the CPU), and the
# 1B-class decode (TinyLlama-1.1B's shape, int4:g32:sym, made there).
# GEMV_ONLY=1 stops after the codec GEMVs; MT sets --min-time (default 0.1).
# usage: DIR=build-vk8 [SHAPES=..] [CODECS=..] [GEMV_ONLY=1] bash scripts/vk-device-compare.sh
set -u
DIR=${DIR:-build-vk8}
SHAPES=${SHAPES:-4096x14336 14336x4096 8192x8192 28672x8192 16384x16384}
CODECS=${CODECS:-int3,int2,int4:g128:sym}
. "$(dirname "$0")/vk-device-two-builds.sh"
G="--backend vulkan --gpu-mib 2048 --min-time ${MT:-0.1} -q"
for sh in $SHAPES; do
    for b in new old; do
        step "$b gemv $sh"
        LD_LIBRARY_PATH=/tmp/new/lib timeout 60 stdbuf -oL /tmp/$b/squish-bench $G -R ${sh%x*} -C ${sh#*x} -c "$CODECS" 2>&1 |
            grep -v '^# [GckQRKaof]' | sed "s/^/$b $sh /"
    done
done
if [ "${GEMV_ONLY:-0}" = 1 ]; then
    step done
    exit 0
fi
for b in new old; do
    step "$b mix:4 4096x4096"
    LD_LIBRARY_PATH=/tmp/new/lib timeout 60 stdbuf -oL /tmp/$b/squish-bench $G -R 4096 -C 4096 -c mix:4 2>&1 | grep -v '^#' | sed "s/^/$b 4096x4096 /"
done
M="--ctx 256 -c bf16 -R 256 -C 256 --min-time 0.01 --flush-mib 1"
for b in new old new old; do
    step "$b 34M decode on the device"
    LD_LIBRARY_PATH=/tmp/new/lib timeout 40 stdbuf -oL /tmp/$b/squish-bench -m "$DIR/lm34.squizd" $M --backend vulkan --gpu-mib 2048 2>&1 | grep -A3 '^FILE'
done
step "34M decode on the CPU"
timeout 60 stdbuf -oL /tmp/new/squish-bench -m "$DIR/lm34.squizd" $M 2>&1 | grep -A2 '^FILE'
step "make-testdata bigmodel 1b"
/tmp/new/make-testdata bigmodel /tmp/m1b 1b >/dev/null && timeout 150 /tmp/new/squish-quantize -s int4:g32:sym /tmp/m1b -o /tmp/m1b.squizd | tail -1
for b in new old new old; do
    step "$b 1B decode on the device"
    LD_LIBRARY_PATH=/tmp/new/lib timeout 60 stdbuf -oL /tmp/$b/squish-bench -m /tmp/m1b.squizd $M --backend vulkan --gpu-mib 2048 2>&1 | grep -A3 '^FILE'
done
step done
