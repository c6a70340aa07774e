#!/usr/bin/env bash
# Issue 22's second device run (by hand, on the machine with the GPU, after
# scripts/vk-device.sh's unpacking; BIN: the unpacked bundle, default
# /tmp/vkb): a synthetic 1B-class Llama (TinyLlama-1.1B's shape, made there
# by make-testdata) quantized int4:g32:sym and decoded on the CPU and on the
# Vulkan device with subgroup sums on and off (twice each, alternating), then
# the GEMV with subgroup sums on and off at 28672x8192, then mix at 4096x4096
# (left out of the table run by its time bounds: its encoder takes minutes
# at the table's shapes). Every step has a time bound so the whole fits one
# 10-minute call; the log says how long each took.
set -u
BIN=${BIN:-/tmp/vkb} D=${WORK:-/tmp/m1b}
B=$BIN/squish-bench
t0=$(date +%s)
step() { echo "== +$(($(date +%s) - t0))s: $*"; }
step "make-testdata bigmodel 1b"
rm -rf "$D" && "$BIN/make-testdata" bigmodel "$D" 1b || exit 1
du -sh "$D"
step "squish-quantize int4:g32:sym"
timeout 150 "$BIN/squish-quantize" -s int4:g32:sym "$D" -o "$D.squizd" | tail -3
ls "$D.squizd" >/dev/null || exit 1
ls -l "$D.squizd"
# a tiny codec table (-c bf16 at 256x256, a 1 MiB cache flush: the default
# 1 GiB flush before each of its CPU GEMVs alone outlasts the call) so that
# the run is the model's
M="-m $D.squizd --ctx ${CTX:-256} -c bf16 -R 256 -C 256 --min-time 0.01 --flush-mib 1"
step "cpu"
timeout 200 stdbuf -oL "$B" $M
for sg in 1 0 1 0; do
  step "vulkan SQUISH_VULKAN_SUBGROUP=$sg"
  SQUISH_VULKAN_SUBGROUP=$sg timeout 60 stdbuf -oL "$B" $M --backend vulkan --gpu-mib 2048
done
G="--backend vulkan --gpu-mib 2048 --min-time 0.1 -q"
for sg in 1 0 1 0; do
  step "gemv 28672x8192 SQUISH_VULKAN_SUBGROUP=$sg"
  SQUISH_VULKAN_SUBGROUP=$sg timeout 50 stdbuf -oL "$B" $G -R 28672 -C 8192 -c f16,int4:g128:sym,nf4:g64,int3 | grep -v '^# [GckQRKaof]'
done
step "mix:4 at 4096x4096"
timeout 90 stdbuf -oL "$B" $G -R 4096 -C 4096 -c mix:4 | grep -v '^#'
step done
