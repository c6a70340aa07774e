#!/usr/bin/env bash
# squish-quantize --sequential on stories260K (5 blocks): the same bytes at
# 1 and 3 threads; with =block the first block's tensors (and the
# embedding, norms, output layer) byte-identical to the non-sequential
# run's (its inputs are the full-precision model's), the later blocks' not;
# and, as an independent check of the whole pass, the statistics it
# gathered (--sequential-stats) equal those squish-calibrate computes on the
# quantized output itself, every layer and site: a site's input depends
# only on the tensors quantized before it, which the output holds decoded.
# Bad input: wrong text, missing options, awq, --shard.
# usage: test_sequential.sh BUILD_DIR SOURCE_DIR
set -u
B=$1 S=$2
C=$B/squish-calibrate Q=$B/squish-quantize I=$B/squish-inspect
D=$S/testdata/stories260K
M=$D/stories260K.bin TXT=$D/tinystories-valid-excerpt.txt TOK=$D/tok512.bin
. "$(dirname "$0")/testlib.sh"

CAL=(-t "$TXT" --tokenizer "$TOK" -n 8 -L 64 -q)
expect 0 "calibrate" -- "$C" "$M" "${CAL[@]}" -o "$T/c.h5" -T 2

# part checksums of every tensor, one "name checksum..." line each
sums() { "$I" -j "$1" | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tensors"]:
    print(t["name"], *[p["checksum_xxh64"] for p in t["parts"]])'; }

# the calibration file's layers equal another file's (h5diff: exact)
same_layers() { h5diff -q "$1" "$2" /layers /layers >/dev/null 2>&1; }

check_scheme() { # label, scheme options...
  local n=$1; shift
  expect 0 "$n sequential, 1 thread" -- "$Q" "$M" "$@" --calib "$T/c.h5" --sequential --calib-text "$TXT" \
    --sequential-stats "$T/$n-s1.h5" -o "$T/$n-s1.squizd" -T 1 -q
  expect 0 "$n sequential, 3 threads" -- "$Q" "$M" "$@" --calib "$T/c.h5" --sequential --calib-text "$TXT" \
    --sequential-stats "$T/$n-s3.h5" -o "$T/$n-s3.squizd" -T 3 -q
  cmp -s "$T/$n-s1.squizd" "$T/$n-s3.squizd" && ok || bad "$n: output differs between 1 and 3 threads"
  cmp -s "$T/$n-s1.h5" "$T/$n-s3.h5" && ok || bad "$n: sequential statistics differ between 1 and 3 threads"
  expect 0 "$n sequential=block" -- "$Q" "$M" "$@" --calib "$T/c.h5" --sequential=block --calib-text "$TXT" \
    --sequential-stats "$T/$n-b.h5" -o "$T/$n-b.squizd" -T 3 -q
  expect 0 "$n non-sequential" -- "$Q" "$M" "$@" --calib "$T/c.h5" -o "$T/$n-ns.squizd" -T 2 -q
  sums "$T/$n-s1.squizd" >"$T/$n-s.sum"
  sums "$T/$n-b.squizd" >"$T/$n-b.sum"
  sums "$T/$n-ns.squizd" >"$T/$n-ns.sum"
  # block mode: block 0 sees the full-precision model's inputs, as does
  # everything outside the blocks: the same bytes as without --sequential
  diff <(grep -v 'layers\.[1-9]' "$T/$n-b.sum") <(grep -v 'layers\.[1-9]' "$T/$n-ns.sum") >/dev/null && ok ||
    bad "$n: block mode: block 0 or a tensor outside the blocks differs from the non-sequential run"
  [ "$(grep -c 'layers\.0\.' "$T/$n-b.sum")" = 9 ] && ok || bad "$n: block 0 does not have 9 tensors"
  # true sequential: only q/k/v of block 0 read the model's own inputs
  diff <(grep -v 'layers\.[1-9]\|layers\.0\.\(mlp\|self_attn\.o\)' "$T/$n-s.sum") \
    <(grep -v 'layers\.[1-9]\|layers\.0\.\(mlp\|self_attn\.o\)' "$T/$n-ns.sum") >/dev/null && ok ||
    bad "$n: q/k/v of block 0 or a tensor outside the blocks differs from the non-sequential run"
  for f in s b; do # the later blocks' linear layers see other inputs
    ndiff=$(diff <(grep 'layers\.[1-9].*proj' "$T/$n-$f.sum") <(grep 'layers\.[1-9].*proj' "$T/$n-ns.sum") | grep -c '^<')
    [ "$ndiff" -ge 20 ] && ok || bad "$n ($f): only $ndiff of the 28 later linear layers changed"
  done
  # layer 0's attn_in is the calibration file's; later layers' not
  h5diff -q "$T/c.h5" "$T/$n-s1.h5" /layers/0/attn_in /layers/0/attn_in >/dev/null 2>&1 && ok ||
    bad "$n: layer 0 attn_in differs from the calibration file"
  h5diff -q "$T/c.h5" "$T/$n-s1.h5" /layers/1/attn_in /layers/1/attn_in >/dev/null 2>&1 &&
    bad "$n: layer 1 attn_in equals the full-precision statistics" || ok
  # the independent check: squish-calibrate on the quantized output gives
  # every site of the true-sequential pass, and each block's input of the block pass
  expect 0 "$n calibrate the output" -- "$C" "$T/$n-s1.squizd" "${CAL[@]}" -o "$T/$n-q.h5" -T 2
  same_layers "$T/$n-q.h5" "$T/$n-s1.h5" && ok ||
    bad "$n: the sequential statistics differ from squish-calibrate's on the quantized model: $(h5diff -r "$T/$n-q.h5" "$T/$n-s1.h5" /layers /layers 2>&1 | grep -v '^0 diff' | head -c 300)"
  expect 0 "$n calibrate the block-mode output" -- "$C" "$T/$n-b.squizd" "${CAL[@]}" -o "$T/$n-qb.h5" -T 2
  for l in 0 1 2 3 4; do
    h5diff -q "$T/$n-qb.h5" "$T/$n-b.h5" /layers/$l/attn_in /layers/$l/attn_in >/dev/null 2>&1 && ok ||
      bad "$n: block mode: layer $l attn_in differs from squish-calibrate's on the quantized model"
  done
}

check_scheme gptq -s int4:g32:asym --method gptq --act-order
check_scheme spqr -s spqr:w3:b16:r64:t0

# RTN ignores the statistics: the same tensors as without --sequential
expect 0 "rtn sequential" -- "$Q" "$M" -s int4:g32 --calib "$T/c.h5" --sequential --calib-text "$TXT" -o "$T/r-s.squizd" -q
expect 0 "rtn" -- "$Q" "$M" -s int4:g32 --calib "$T/c.h5" -o "$T/r-ns.squizd" -q
diff <(sums "$T/r-s.squizd") <(sums "$T/r-ns.squizd") >/dev/null && ok || bad "rtn: --sequential changed a tensor"
"$I" -m "$T/r-s.squizd" | grep -q '"--sequential"' && ok || bad "the provenance does not record --sequential"

# --target-bpw: chosen on the file's statistics, encoded sequentially
expect 0 "target-bpw sequential" -- "$Q" "$M" --target-bpw 4.5 --candidates int3:g32:asym,int4:g32:asym,int8 \
  --calib "$T/c.h5" --sequential --calib-text "$TXT" -o "$T/a-s.squizd" -T 3 -q
expect 0 "target-bpw sequential, 1 thread" -- "$Q" "$M" --target-bpw 4.5 --candidates int3:g32:asym,int4:g32:asym,int8 \
  --calib "$T/c.h5" --sequential --calib-text "$TXT" -o "$T/a-s1.squizd" -T 1 -q
cmp -s "$T/a-s.squizd" "$T/a-s1.squizd" && ok || bad "target-bpw sequential differs between 1 and 3 threads"

# ---- bad input: clear errors, exit 2, no output ----
printf 'Once upon a time there was another text.\n%.0s' {1..40} >"$T/other.txt"
expect 2 "another text" -- "$Q" "$M" -s int4:g32 --method gptq --calib "$T/c.h5" --sequential --calib-text "$T/other.txt" -o "$T/x.squizd"
grep -q "not the text" "$T/err" && ok || bad "wrong text message: $(cat "$T/err")"
expect 2 "texts in another order" -- "$Q" "$M" -s int4:g32 --method gptq --calib "$T/c.h5" --sequential \
  --calib-text "$T/other.txt" --calib-text "$TXT" -o "$T/x.squizd"
expect 2 "no --calib-text" -- "$Q" "$M" -s int4:g32 --method gptq --calib "$T/c.h5" --sequential -o "$T/x.squizd"
grep -q "calib-text" "$T/err" && ok || bad "missing --calib-text message: $(cat "$T/err")"
expect 2 "no --calib" -- "$Q" "$M" -s int4:g32 --sequential --calib-text "$TXT" -o "$T/x.squizd"
expect 2 "--calib-text without --sequential" -- "$Q" "$M" -s int4:g32 --calib "$T/c.h5" --calib-text "$TXT" -o "$T/x.squizd"
expect 2 "awq" -- "$Q" "$M" -s int4:g32 --method awq --calib "$T/c.h5" --sequential --calib-text "$TXT" -o "$T/x.squizd"
grep -q "not awq" "$T/err" && ok || bad "awq message: $(cat "$T/err")"
expect 2 "--sequential=bad" -- "$Q" "$M" -s int4:g32 --calib "$T/c.h5" --sequential=bad --calib-text "$TXT" -o "$T/x.squizd"
expect 2 "--shard" -- "$Q" "$M" -s int4:g32 --method gptq --calib "$T/c.h5" --sequential --calib-text "$TXT" --shard 1/2 -o "$T/x.squizd"
[ ! -e "$T/x.squizd" ] && ok || bad "a failed run left an output"

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
