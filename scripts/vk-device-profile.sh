#!/usr/bin/env bash
# One device call (by hand, on the lent GPU machine; not part of the tests):
# decode tokens/s of the device step for the 34M file ($DIR/lm34.squizd) and
# the 1B-class model (TinyLlama-1.1B's shape, int4:g32:sym, made there), the
# new, old and (where packed) base builds alternating (ROUNDS times each,
# profile off; base: a third build, say the profiler alone), then the
# per-dispatch profile (SQUISH_VULKAN_PROFILE=1) of new and base, then both
# decodes of new under each of SETTINGS (';'-separated lines of VAR=VALUE
# assignments), profile off then on. DIR as for scripts/vk-device-compare.sh (gl/*.deb,
# new.tar.xz, old.tar.xz; base.tar.xz optional: its squish-bench alone);
# this file and vk-device-two-builds.sh may sit in DIR itself.
# usage: DIR=.vkb/x [SETTINGS=..] [ROUNDS=2] bash vk-device-profile.sh
set -u
DIR=${DIR:-.vkb/w11}
. "$(dirname "$0")/vk-device-two-builds.sh"
have_base=0
if [ -f "$DIR/base.tar.xz" ]; then mkdir -p /tmp/base && tar -C /tmp/base -xJf "$DIR/base.tar.xz" && have_base=1; fi
M="--ctx ${CTX:-256} -c bf16 -R 256 -C 256 --min-time 0.01 --flush-mib 1 --backend vulkan --gpu-mib 2048"
# bench BUILD FILE [VAR=VALUE..]: the model row and what follows it (dispatches, profile)
bench() {
    local b=$1 f=$2
    shift 2
    LD_LIBRARY_PATH=/tmp/new/lib timeout 90 stdbuf -oL env "$@" /tmp/$b/squish-bench -m "$f" $M 2>&1 |
        grep -A60 '^FILE' | grep -v '^FILE' | sed "s/^/$b /"
}
step "make-testdata bigmodel 1b"
/tmp/new/make-testdata bigmodel /tmp/m1b 1b >/dev/null &&
    timeout 150 /tmp/new/squish-quantize -s int4:g32:sym /tmp/m1b -o /tmp/m1b.squizd | tail -1
for f in "$DIR/lm34.squizd" /tmp/m1b.squizd; do
    for r in $(seq "${ROUNDS:-2}"); do
        for b in new old base; do
            [ $b = base ] && [ $have_base = 0 ] && continue
            step "$b $f round $r"
            bench $b "$f"
        done
    done
    for b in new base; do
        [ $b = base ] && [ $have_base = 0 ] && continue
        step "$b $f profile"
        bench $b "$f" SQUISH_VULKAN_PROFILE=1
    done
done
IFS=';'
for s in ${SETTINGS:-}; do
    IFS=' '
    for f in "$DIR/lm34.squizd" /tmp/m1b.squizd; do
        step "new $f $s"
        # shellcheck disable=SC2086 # s: several assignments
        bench new "$f" $s
        # shellcheck disable=SC2086
        bench new "$f" SQUISH_VULKAN_PROFILE=1 $s
    done
    IFS=';'
done
IFS=' '
step done
