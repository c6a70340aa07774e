#!/usr/bin/env bash
# The Vulkan backend through the tools (lavapipe in CI): perplexity and
# greedy text equal to the CPU's within the stated tolerance for several
# codec families, the kernel benchmark's cross-check, device selection, and
# a clear error (exit 5) with the CPU path still working when no Vulkan
# driver can be found.
# usage: test_vulkan_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize V=$B/squish-verify BE=$B/squish-bench
. "$(dirname "$0")/testlib.sh"

# ---- devices, options documented ----
expect 0 "list devices" -- "$V" --list-devices
grep -qE '^0	' "$T/out" && ok || bad "no Vulkan device listed (install mesa-vulkan-drivers)"
for tool in verify bench; do
  for opt in backend device list-devices; do
    "$B/squish-$tool" --help | grep -q -- "--$opt" && sed 's/\\-/-/g' "$S/man/squish-$tool.1" | grep -q -- "--$opt" && ok ||
      bad "$tool --$opt missing from help or man page"
  done
done

if [ ! -d "$SH/models" ]; then
  echo "$pass passed, $fail failed, 1 skipped ($SH/models is absent)"
  [ $fail -eq 0 ]; exit
fi
M=$SH/models/stories260K/hf IDS=$SH/reference/ids/ids-260K-tinystories-valid-excerpt.ids

# ---- perplexity on Vulkan = CPU's, |delta| <= 1e-5 relative (observed: ~1e-7) ----
ppl_close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * a) }'; }
for s in int4:g32:asym int3:g64:asym int8:pc nf4:dq mxfp4 fp8_e4m3 fp6_e2m3:g32 bf16; do
  "$Q" "$M" -o "$T/s.squizd" -s "$s" -q
  c=$("$V" -q -j --eval-ids "$IDS" --ctx 128 --windows 4 "$T/s.squizd" | jq .eval.ppl)
  g=$("$V" -q -j --eval-ids "$IDS" --ctx 128 --windows 4 --backend vulkan "$T/s.squizd" | jq .eval.ppl)
  ppl_close "$c" "$g" && ok || bad "stories260K $s: vulkan ppl $g vs cpu $c"
done
"$V" -j --eval-ids "$IDS" --ctx 128 --windows 1 --backend vulkan "$T/s.squizd" 2>"$T/err" | jq -e '.eval.backend == "vulkan" and (.eval.device | length > 0)' >/dev/null && ok ||
  bad "eval JSON does not name the backend and device"
grep -q "vulkan device:" "$T/err" && ok || bad "the chosen device is not named on stderr"
# ---- greedy text with the whole decode step on the device (the default), and with the host step
# (SQUISH_VULKAN_DECODE=0), equal to the CPU's ----
"$Q" "$M" -o "$T/d.squizd" -s int4:g32:asym -q
GEN=(-q --tokenizer "$SH/models/stories260K/tok512.model" --prompt "Once upon a time" --max-tokens 32 "$T/d.squizd")
"$V" "${GEN[@]}" >"$T/dc"
"$V" "${GEN[@]}" --backend vulkan >"$T/dg"
SQUISH_VULKAN_DECODE=0 "$V" "${GEN[@]}" --backend vulkan >"$T/dh"
[ -s "$T/dc" ] && cmp -s "$T/dc" "$T/dg" && ok || bad "device decode step: greedy text '$(cat "$T/dg")' vs cpu '$(cat "$T/dc")'"
cmp -s "$T/dc" "$T/dh" && ok || bad "host step on vulkan: greedy text '$(cat "$T/dh")' vs cpu '$(cat "$T/dc")'"
# the 34M model: real layer widths (512, 1536) and a bf16 output layer
M34=$SH/models/squish-lm-34m
"$Q" "$M34" -o "$T/m.squizd" -s int4:g128:asym -q
c=$("$V" -q -j --eval-ids "$SH/reference/ids/ids-34m-books-heldout.ids" --ctx 128 --windows 1 "$T/m.squizd" | jq .eval.ppl)
g=$("$V" -q -j --eval-ids "$SH/reference/ids/ids-34m-books-heldout.ids" --ctx 128 --windows 1 --backend vulkan "$T/m.squizd" | jq .eval.ppl)
ppl_close "$c" "$g" && ok || bad "34M int4: vulkan ppl $g vs cpu $c"

# ---- QuIP# (lattice codes; the Hadamard links run on the device): a calibrated quantization of the
# tiny model (widths 192 = 12*16 and 520: blocks of 104) evaluates and decodes as on the CPU ----
TINY=$S/testdata/tiny-llama TOK=$SH/models/stories260K/tok512.model
"$B/squish-calibrate" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$TOK" -n 6 -L 64 -q -o "$T/cal.h5"
# 2 bits; 3 and 4 bits in the nested form (E8R stages, the defaults) and in the residual form (:rvq).
# The sanitizer run (SQUISH_TEST_QUICK; quantizing is slow under ASan) quantizes one file instead:
# quip:2 with layer 0's MLP in quip:4 and layer 1's attention in quip:3 (both nested).
QS="quip:2 quip:3 quip:4 quip:3:rvq quip:4:rvq" GS="quip:2 quip:4"
[ -z "${SQUISH_TEST_QUICK:-}" ] || QS=mix GS=mix
EV=(-q -j --reference "$TINY" --tokenizer "$TOK" --eval "$SH/data/tinystories-valid-excerpt.txt" --ctx 128 --windows 2)
for s in $QS; do
  f=$T/q${s//:/_}.squizd A=(-s "$s")
  [ "$s" = mix ] && A=(-s quip:2 -r 'layers\.0\.mlp=quip:4' -r 'layers\.1\.self_attn=quip:3')
  "$Q" "$TINY" "${A[@]}" --calib "$T/cal.h5" -o "$f" -q
  if [ "$s" = mix ]; then
    n=$("$B/squish-inspect" "$f" | grep -cE ' quip:(3|4)\+rht_in')
    [ "$n" = 7 ] && ok || bad "mixed quip file: $n tensors in quip:3 or quip:4, not 7"
  fi
  c=$("$V" "${EV[@]}" "$f" | jq .eval.ppl)
  g=$("$V" "${EV[@]}" --backend vulkan "$f" | jq .eval.ppl)
  ppl_close "$c" "$g" && ok || bad "tiny $s: vulkan ppl $g vs cpu $c"
done
for s in $GS; do
  f=$T/q${s//:/_}.squizd
  "$V" -q --tokenizer "$TOK" --prompt "Once upon a time" --max-tokens 16 "$f" >"$T/qc"
  "$V" -q --tokenizer "$TOK" --prompt "Once upon a time" --max-tokens 16 --backend vulkan "$f" >"$T/qg"
  [ -s "$T/qc" ] && cmp -s "$T/qc" "$T/qg" && ok || bad "$s greedy text differs: cpu '$(cat "$T/qc")' vulkan '$(cat "$T/qg")'"
done

# the calibrated families on real quantized tensors: spqr:w3 everywhere but three aqlm:2x8 layers (tiny model)
"$Q" "$TINY" -s spqr:w3 -r 'layers\.0\.(self_attn\.[qk]|mlp\.up)_proj=aqlm:2x8' --calib "$T/cal.h5" -o "$T/c.squizd" -q
for i in $(seq 1 300); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
c=$("$V" -q -j --eval-ids "$T/ids.txt" --ctx 64 "$T/c.squizd" | jq .eval.ppl)
g=$("$V" -q -j --eval-ids "$T/ids.txt" --ctx 64 --backend vulkan "$T/c.squizd" | jq .eval.ppl)
ppl_close "$c" "$g" && ok || bad "tiny spqr:w3 + aqlm:2x8: vulkan ppl $g vs cpu $c"

# ---- greedy decoding (KV-cache steps, GEMV kernels) gives the CPU's text ----
"$Q" "$M" -o "$T/s.squizd" -s int4:g32:asym -q
"$V" -q --tokenizer "$M/tokenizer.model" --prompt "Once upon a time" --max-tokens 24 "$T/s.squizd" >"$T/gc"
"$V" -q --tokenizer "$M/tokenizer.model" --prompt "Once upon a time" --max-tokens 24 --backend vulkan "$T/s.squizd" >"$T/gg"
[ -s "$T/gc" ] && cmp -s "$T/gc" "$T/gg" && ok || bad "greedy text differs: cpu '$(cat "$T/gc")' vulkan '$(cat "$T/gg")'"
# the decode steps' GEMVs on the exact-activation integer-dot kernel
SQUISH_VULKAN_LIMBS=1 "$V" -q --tokenizer "$M/tokenizer.model" --prompt "Once upon a time" --max-tokens 24 --backend vulkan "$T/s.squizd" >"$T/gl"
[ -s "$T/gc" ] && cmp -s "$T/gc" "$T/gl" && ok || bad "greedy text differs (limbs): cpu '$(cat "$T/gc")' vulkan '$(cat "$T/gl")'"

# ---- kernel benchmark: every scheme's Vulkan GEMV checked against the CPU ----
expect 0 "bench" -- "$BE" --backend vulkan -R 96 -C 320 --gpu-mib 1 --min-time 0.01 -c int4:g32:asym,nf4,mxfp6_e3m2,int2,f16,quip:2,quip:3,quip:4,quip:4:rvq
# (times, not GB/s: a slow sanitizer build prints tiny matrices' GB/s as 0.0)
n=$(awk '/^(int4|nf4|mxfp6|int2|f16|quip)/ && $5 > 0 && $8 + 0 <= 1e-5 && $11 > 0 { n++ } END { print n + 0 }' "$T/out")
[ "$n" = 9 ] && ok || bad "bench: $n of 9 schemes with a GEMV time, CHECK <= 1e-5 and a read baseline: $(cat "$T/out")"
grep -q "copy shader" "$T/out" && ok || bad "bench prints no copy baseline"
# aqlm and spqr on synthetic parts (both AQLM GEMV kernels: 2x8 by table, 1x16 decoding codewords)
expect 0 "bench, calibrated codecs" -- "$BE" --backend vulkan -R 300 -C 320 --gpu-mib 1 --min-time 0.01 -c aqlm,aqlm:1x16,spqr,spqr:w2:b5
n=$(awk '/^(aqlm|spqr)/ && $5 > 0 && $8 + 0 <= 1e-5 && $11 > 0 { n++ } END { print n + 0 }' "$T/out")
[ "$n" = 4 ] && ok || bad "bench, calibrated codecs: $n of 4 schemes with a GEMV time, CHECK <= 1e-5 and a read baseline: $(cat "$T/out")"
# the exact-activation integer-dot GEMV (off by default on a CPU device such as lavapipe)
expect 0 "bench, limbs" -- env SQUISH_VULKAN_LIMBS=1 "$BE" --backend vulkan -R 96 -C 320 --gpu-mib 1 --min-time 0.01 -c int4:g128:asym,int8
n=$(awk '/^(int4|int8)/ && $5 > 0 && $8 + 0 <= 1e-5 && $NF == "limbs" { n++ } END { print n + 0 }' "$T/out")
[ "$n" = 2 ] && ok || bad "bench, limbs: $n of 2 schemes on the limb kernel with CHECK <= 1e-5: $(cat "$T/out")"

# ---- device selection and errors ----
expect 2 "device index out of range" -- "$V" --eval-ids "$IDS" --backend vulkan --device 99 "$T/s.squizd"
grep -q "device 99 does not exist" "$T/err" && ok || bad "unclear message for --device 99: $(cat "$T/err")"
expect 2 "device by unknown name" -- "$V" --eval-ids "$IDS" --backend vulkan --device no-such-gpu "$T/s.squizd"
expect 2 "--device without --backend vulkan" -- "$V" --eval-ids "$IDS" --device 0 "$T/s.squizd"
expect 2 "--backend without an evaluation" -- "$V" --backend vulkan "$T/s.squizd"
expect 2 "bad backend" -- "$V" --eval-ids "$IDS" --backend cuda "$T/s.squizd"
expect 0 "device by name" -- "$V" -q --eval-ids "$IDS" --ctx 64 --windows 1 --backend vulkan --device "$(cut -f2 <<<"$("$V" --list-devices | head -1)" | cut -c1-6)" "$T/s.squizd"
# no Vulkan driver: exit 5 with a message that says so; the CPU path still works
NODRV=(env VK_DRIVER_FILES=/nonexistent/icd.json VK_ICD_FILENAMES=/nonexistent/icd.json)
expect 5 "no driver" -- "${NODRV[@]}" "$V" --eval-ids "$IDS" --ctx 64 --windows 1 --backend vulkan "$T/s.squizd"
grep -q "no Vulkan driver found" "$T/err" && ok || bad "no-driver message: $(cat "$T/err")"
expect 5 "no driver, bench" -- "${NODRV[@]}" "$BE" --backend vulkan -R 32 -C 64 -c int4
expect 0 "no driver, CPU backend" -- "${NODRV[@]}" "$V" -q --eval-ids "$IDS" --ctx 64 --windows 1 "$T/s.squizd"

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
