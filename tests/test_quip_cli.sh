#!/usr/bin/env bash
# The quip codec (QuIP#) end to end on the tiny model: calibrate, quantize
# with quip:2/3/4, verify (integrity and --eval through the transform chain),
# inspect the stored parts; bad input: no --calib, a bad scheme, corrupted
# parts.
# usage: test_quip_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
C=$B/squish-calibrate Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

need_shared_models
TOK=$SH/models/stories260K/tok512.model
EVAL=(--reference "$TINY" --tokenizer "$TOK" --eval "$SH/data/tinystories-valid-excerpt.txt" --ctx 128 -j -q)
# the tiny model's widths (192, 520) are whole groups of 8, as quip needs
jq -e '.hidden_size % 8 == 0 and .intermediate_size % 8 == 0' "$TINY/config.json" >/dev/null && ok || bad "tiny widths not multiples of 8"
expect 0 "calibrate tiny" -- "$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$TOK" -n 6 -L 64 -q -o "$T/cal.h5"

# ---- quip:2: deterministic, verifies, evaluates better than RTN at more bits ----
expect 0 "quantize quip:2" -- "$Q" "$TINY" -s quip:2 --calib "$T/cal.h5" -o "$T/q2.squizd" -T 1 -q
# (the sanitizer run, SQUISH_TEST_QUICK, leaves the repeated encodes of this file to the release run:
# each is a minute or more under ASan on 2 cores)
if [ -z "${SQUISH_TEST_QUICK:-}" ]; then
  expect 0 "quantize quip:2, 3 threads" -- "$Q" "$TINY" -s quip:2 --calib "$T/cal.h5" -o "$T/q2b.squizd" -T 3 -q
  cmp -s "$T/q2.squizd" "$T/q2b.squizd" && ok || bad "quip:2 output differs between 1 and 3 threads"
fi
expect 0 "verify quip:2" -- "$V" "$T/q2.squizd"
expect 0 "inspect quip:2" -- "$I" --json "$T/q2.squizd"
jq -e '[.tensors[] | select(.name | test("layers\\.[0-9]+\\.(self_attn|mlp)\\."))] | length == 14 and
       all(.[]; .codec == "quip" and .codec_id == 96 and .scheme == "quip:2+rht_in+rht_out" and .params[4] == 2 and
           ([.parts[].name] == ["codes", "scales", "rht_in", "rht_out"]) and .parts[0].dtype == "u16" and
           .parts[0].shape == [.shape[0], .shape[1] / 8] and .parts[1].shape == [1, .shape[0]] and .bpw < 2.11)' \
  "$T/out" >/dev/null && ok || bad "quip:2 parts as inspected: $(jq -c '.tensors[2]' "$T/out" | head -c 600)"
jq -e '(.header.flags / 32768 | floor) % 2 == 1' "$T/out" >/dev/null && ok || bad "header flags lack QUIPSHARP: $(jq -c .header.flags "$T/out")"
expect 0 "eval quip:2" -- "$V" "${EVAL[@]}" "$T/q2.squizd"
cp "$T/out" "$T/q2.eval"
expect 0 "quantize int2:g64 rtn" -- "$Q" "$TINY" -s int2:g64:asym --method rtn -o "$T/rtn.squizd" -q
expect 0 "eval int2:g64 rtn" -- "$V" "${EVAL[@]}" "$T/rtn.squizd"
k2=$(jq .eval.kld_mean "$T/q2.eval") kr=$(jq .eval.kld_mean "$T/out")
awk -v a="$k2" -v b="$kr" 'BEGIN { exit !(a > 0 && a < b) }' && ok || bad "quip:2 KLD $k2 is not below int2:g64 RTN's $kr"

# ---- quip:3 / quip:4: nested E8R stages (codes2, and codes3 at 4 bits, u8), KLD falls with the bits ----
prev=$k2
# (the sanitizer run, SQUISH_TEST_QUICK, keeps to 2 bits: each width is minutes under ASan on 2 cores)
for b in $([ -n "${SQUISH_TEST_QUICK:-}" ] || echo 3 4); do
  expect 0 "quantize quip:$b" -- "$Q" "$TINY" -s quip:$b --calib "$T/cal.h5" -o "$T/q$b.squizd" -q
  expect 0 "inspect quip:$b" -- "$I" --json "$T/q$b.squizd"
  names=$([ $b = 3 ] && echo '["codes", "codes2", "scales", "rht_in", "rht_out"]' ||
          echo '["codes", "codes2", "codes3", "scales", "rht_in", "rht_out"]')
  jq -e --argjson names "$names" --argjson b "$b" '[.tensors[] | select(.codec == "quip")] | length == 14 and
         all(.[]; ([.parts[].name] == $names) and .parts[1].dtype == "u8" and .parts[$b - 2].dtype == "u8" and
             .parts[$b - 2].shape == [.shape[0], .shape[1] / 8] and
             .parts[$b - 1].shape == [$b - 1, .shape[0]] and .params[4] == $b and .params[5] == 1 and .bpw < $b + 0.3 and
             .scheme == "quip:\($b)+rht_in+rht_out")' "$T/out" >/dev/null && ok ||
    bad "quip:$b parts: $(jq -c '[.tensors[] | select(.codec == "quip")][0]' "$T/out" | head -c 600)"
  expect 0 "eval quip:$b" -- "$V" "${EVAL[@]}" "$T/q$b.squizd"
  k=$(jq .eval.kld_mean "$T/out")
  awk -v a="$k" -v b="$prev" 'BEGIN { exit !(a > 0 && a < b) }' && ok || bad "quip:$b KLD $k is not below the previous width's $prev"
  prev=$k
done

# ---- quip:4:rvq (quip-sharp's residual stage: codes2 u16, two scales) and the ablation options ----
if [ -z "${SQUISH_TEST_QUICK:-}" ]; then
  expect 0 "quantize quip:4:rvq" -- "$Q" "$TINY" -s quip:4:rvq --calib "$T/cal.h5" -o "$T/q4r.squizd" -q
  expect 0 "inspect quip:4:rvq" -- "$I" --json "$T/q4r.squizd"
  jq -e '[.tensors[] | select(.codec == "quip")] | length == 14 and
         all(.[]; ([.parts[].name] == ["codes", "codes2", "scales", "rht_in", "rht_out"]) and .parts[1].dtype == "u16" and
             .parts[2].shape == [2, .shape[0]] and .params[5] == 0 and .scheme == "quip:4:rvq+rht_in+rht_out")' \
    "$T/out" >/dev/null && ok || bad "quip:4:rvq parts: $(jq -c '[.tensors[] | select(.codec == "quip")][0]' "$T/out" | head -c 600)"
  expect 0 "verify quip:4:rvq" -- "$V" "$T/q4r.squizd"
fi
expect 0 "quantize quip:2 --quip-no-rht" -- "$Q" "$TINY" -s quip:2 --quip-no-rht --calib "$T/cal.h5" -o "$T/nr.squizd" -q
expect 0 "inspect --quip-no-rht" -- "$I" --json "$T/nr.squizd"
jq -e '[.tensors[] | select(.codec == "quip")] | length == 14 and
       all(.[]; ([.parts[].name] == ["codes", "scales"]) and .scheme == "quip:2")' "$T/out" >/dev/null && ok ||
  bad "--quip-no-rht left links: $(jq -c '[.tensors[] | select(.codec == "quip")][0]' "$T/out" | head -c 400)"
expect 0 "verify --quip-no-rht" -- "$V" "$T/nr.squizd"
# the tensors' stored parts (the metadata records the command line, so whole files always differ)
parts_of() { "$I" --json "$1" | jq -c '[.tensors[] | select(.codec == "quip") | .parts[].checksum_xxh64]'; }
p2=$(parts_of "$T/q2.squizd")
for opt in "--method rtn" $([ -n "${SQUISH_TEST_QUICK:-}" ] || echo "--quip-no-refit --hessian-diag"); do
  opt=${opt/--hessian-diag/--hessian diag}
  expect 0 "quantize quip:2 $opt" -- "$Q" "$TINY" -s quip:2 $opt --calib "$T/cal.h5" -o "$T/abl.squizd" -q
  [ "$(parts_of "$T/abl.squizd")" != "$p2" ] && ok || bad "quip:2 $opt stored the default's parts"
done
if [ -z "${SQUISH_TEST_QUICK:-}" ]; then
  expect 0 "quantize quip:2 --method gptq" -- "$Q" "$TINY" -s quip:2 --method gptq --calib "$T/cal.h5" -o "$T/g.squizd" -T 1 -q
  [ "$(parts_of "$T/g.squizd")" = "$p2" ] && ok || bad "quip:2 --method gptq differs from the default (BlockLDLQ either way)"
fi
expect 2 "--quip-no-refit without quip" -- "$Q" "$TINY" -s int4 --quip-no-refit --calib "$T/cal.h5" -o "$T/x.squizd"
grep -q "quip" "$T/err" && ok || bad "--quip-no-refit without quip: $(cat "$T/err")"
expect 2 "--hessian diag without --calib" -- "$Q" "$TINY" -s int4 --hessian diag -o "$T/x.squizd"
expect 2 "--hessian other" -- "$Q" "$TINY" -s quip:2 --hessian half --calib "$T/cal.h5" -o "$T/x.squizd"
expect 2 "quip:2:rvq" -- "$Q" "$TINY" -s quip:2:rvq --calib "$T/cal.h5" -o "$T/x.squizd"
grep -q "3 or 4" "$T/err" && ok || bad "quip:2:rvq message: $(cat "$T/err")"

# ---- bad input ----
expect 2 "quip without --calib" -- "$Q" "$TINY" -s quip:2 -o "$T/x.squizd"
grep -q -- "--calib" "$T/err" && ok || bad "no --calib message: $(cat "$T/err")"
[ ! -e "$T/x.squizd" ] && ok || bad "a refused quantize left an output"
expect 2 "quip:5" -- "$Q" "$TINY" -s quip:5 --calib "$T/cal.h5" -o "$T/x.squizd"
grep -q "2, 3 or 4" "$T/err" && ok || bad "quip:5 message: $(cat "$T/err")"
expect 2 "quip:g64" -- "$Q" "$TINY" -s quip:g64 --calib "$T/cal.h5" -o "$T/x.squizd"
"$I" --json "$T/q2.squizd" >"$T/j"
for part in codes scales rht_in; do
  off=$(jq '[.tensors[] | select(.name == "model.layers.1.mlp.up_proj.weight")][0].parts[] | select(.name == "'$part'") | .offset' "$T/j")
  cp "$T/q2.squizd" "$T/bad.squizd"
  printf '\xff\x7c' | dd of="$T/bad.squizd" bs=1 seek="$off" conv=notrunc status=none
  expect 4 "corrupted part $part" -- "$V" "$T/bad.squizd"
  grep -q "part $part" "$T/out" "$T/err" && ok || bad "corrupted $part: the message does not name it: $(cat "$T/out" "$T/err" | head -c 400)"
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
