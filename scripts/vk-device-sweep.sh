#!/usr/bin/env bash
# One device call timing the Vulkan GEMV's kernel settings (by hand, on the
# lent GPU machine; not part of the tests): per shape, the old build's
# defaults, then the new build's defaults and each setting of SETTINGS over
# the same encoded and uploaded matrices (SQUISH_BENCH_VK_SETTINGS: each
# line checked against the CPU and timed; named SCHEME@KEY=VALUE,...), and
# once per shape with WG=256 workgroups where WG256 names the shapes. DIR
# holds gl/*.deb (the loader packages), new.tar.xz and old.tar.xz packed as
# scripts/vk-device-compare.sh describes. Prints everything; the caller tees.
# usage: DIR=build-vk9 [SHAPES=..] [CODECS=..] [SETTINGS=..] bash scripts/vk-device-sweep.sh
set -u
DIR=${DIR:-build-vk9}
SHAPES=${SHAPES:-4096x14336 8192x8192 28672x8192}
CODECS=${CODECS:-int4:g128:sym,int4:g128:asym,nf4:g64,fp4_e2m1:g32,mxfp4,int3,int2,fp8_e4m3,mxfp6_e3m2}
SETTINGS=${SETTINGS:-NR=2;NR=8;NR=16 PREFETCH=0;PREFETCH=2;NR=2 PREFETCH=2;NR=8 PREFETCH=2;NR=8 PREFETCH=0;TPR=32;TPR=128;NR=8 TPR=128;NR=2 TPR=32;LIMBS=0;PREFETCH=1;NR=8 PREFETCH=1}
MT=${MT:-0.05}
. "$(dirname "$0")/vk-device-two-builds.sh"
G="--backend vulkan --gpu-mib 2048 --min-time $MT -q"
for sh in $SHAPES; do
    r=${sh%x*} c=${sh#*x}
    step "old $sh"
    timeout 100 stdbuf -oL /tmp/old/squish-bench $G -R $r -C $c -c "$CODECS" 2>&1 | grep -v '^# [GckQRKaof]' | sed "s/^/old $sh /"
    step "new $sh with settings"
    SQUISH_BENCH_VK_SETTINGS="$SETTINGS" timeout 200 stdbuf -oL /tmp/new/squish-bench $G -R $r -C $c -c "$CODECS" 2>&1 |
        grep -v '^# [GckQRKaof]' | sed "s/^/new $sh /"
done
for sh in ${WG256:-}; do
    step "new $sh WG=256"
    SQUISH_VULKAN_WG=256 SQUISH_BENCH_VK_SETTINGS="${SETTINGS256:-NR=8;TPR=256;NR=8 TPR=256}" timeout 120 stdbuf -oL \
        /tmp/new/squish-bench $G -R ${sh%x*} -C ${sh#*x} -c "$CODECS" 2>&1 | grep -v '^# [GckQRKaof]' | sed "s/^/w256 $sh /"
done
step done
