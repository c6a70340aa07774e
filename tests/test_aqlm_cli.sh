#!/usr/bin/env bash
# The aqlm codec end to end on the tiny model: squish-quantize -s aqlm:2x8
# --calib (byte-identical for 1 and 2 threads), squish-verify (integrity,
# --eval through the runtime, cosine against the source), squish-inspect
# (scheme, parts and their shapes); bad input: no --calib, a bad MxB, a
# damaged codebooks part.
# usage: test_aqlm_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
C=$B/squish-calibrate Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

need_shared_models
TOK=$SH/models/stories260K/tok512.model
expect 0 "calibrate tiny" -- "$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$TOK" -n 6 -L 64 -q -o "$T/cal.h5"

# ---- quantize: deterministic across thread counts ----
expect 0 "quantize aqlm:2x8, 1 thread" -- "$Q" "$TINY" -s aqlm:2x8 --calib "$T/cal.h5" -T 1 -q -o "$T/a1.squizd"
# (the sanitizer run, SQUISH_TEST_QUICK, leaves the repeat to the release run: minutes under ASan)
if [ -z "${SQUISH_TEST_QUICK:-}" ]; then
  expect 0 "quantize aqlm (default 2x8), 2 threads" -- "$Q" "$TINY" -s aqlm --calib "$T/cal.h5" -T 2 -q -o "$T/a2.squizd"
  cmp -s "$T/a1.squizd" "$T/a2.squizd" && ok || bad "aqlm output differs between 1 and 2 threads"
fi

# ---- verify: integrity, evaluation through the runtime, closeness to the source ----
expect 0 "verify integrity" -- "$V" "$T/a1.squizd"
expect 0 "verify --eval" -- "$V" -q -j --reference "$TINY" --tokenizer "$TOK" \
  --eval "$SH/data/tinystories-valid-excerpt.txt" --ctx 128 --windows 4 "$T/a1.squizd"
jq -e '[.. | numbers] | length > 0' "$T/out" >/dev/null && ok || bad "verify --eval printed no figures: $(head -c 300 "$T/out")"
# 2 bits a weight on a 64-wide model: outputs still point the same way as the source's
expect 0 "verify --min-cosine 0.8" -- "$V" -q --reference "$TINY" --min-cosine 0.8 "$T/a1.squizd"

# ---- inspect: scheme, parts and shapes ----
expect 0 "inspect" -- "$I" "$T/a1.squizd"
grep -q 'model.layers.0.mlp.down_proj.weight .*aqlm:2x8' "$T/out" && ok || bad "inspect does not show aqlm:2x8: $(head -c 400 "$T/out")"
expect 0 "inspect --json" -- "$I" --json "$T/a1.squizd"
cp "$T/out" "$T/a1.json"
jq -e '.tensors[] | select(.name == "model.layers.0.mlp.down_proj.weight") |
  .codec == "aqlm" and .codec_id == 80 and .params[4] == 2 and .params[5] == 8 and
  ([.parts[].name] == ["codes", "codebooks", "scales"]) and .parts[1].shape == [2, 256, 8] and
  .parts[0].shape == [(192 * 520 / 8 * 2)]' "$T/out" >/dev/null && ok || bad "inspect --json: parts or params not as spec/codecs.md §12"

# ---- bad input ----
expect 2 "aqlm without --calib" -- "$Q" "$TINY" -s aqlm:2x8 -q -o "$T/x.squizd"
grep -q -- '--calib' "$T/err" && ok || bad "no --calib message: $(cat "$T/err")"
[ ! -e "$T/x.squizd" ] && ok || bad "a refused run left an output"
expect 2 "aqlm:2x17" -- "$Q" "$TINY" -s aqlm:2x17 --calib "$T/cal.h5" -q -o "$T/x.squizd"
grep -q '2x17' "$T/err" && ok || bad "bad MxB message: $(cat "$T/err")"
expect 2 "aqlm with a group option" -- "$Q" "$TINY" -s aqlm:g64 --calib "$T/cal.h5" -q -o "$T/x.squizd"
off=$(jq '.tensors[] | select(.name == "model.layers.1.self_attn.o_proj.weight") | .parts[] | select(.name == "codebooks") | .offset' "$T/a1.json")
cp "$T/a1.squizd" "$T/cb.squizd"
printf '\xff\x7f' | dd of="$T/cb.squizd" bs=1 seek=$((off + 100)) conv=notrunc status=none # a NaN codebook entry
expect 4 "damaged codebooks part" -- "$V" "$T/cb.squizd"
grep -q 'model.layers.1.self_attn.o_proj.weight part codebooks' "$T/err" && ok || bad "verify does not name the damaged part: $(cat "$T/err")"
expect 4 "runtime refuses the damaged file" -- "$V" -q --reference "$TINY" --tokenizer "$TOK" \
  --eval "$SH/data/tinystories-valid-excerpt.txt" --ctx 128 --windows 1 "$T/cb.squizd"

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
