#!/usr/bin/env bash
# Hugging Face GPTQ/AWQ layouts end to end: squish-pack export --to
# hf-gptq|hf-gptq-v2|hf-awq decoded by an independent numpy reader
# (tests/hf_layout_decode.py, written from the public layout descriptions)
# gives exactly squish's own decode of the source file (squish-verify
# --reference DECODED --max-abs 0); import gives the source's codec bytes
# back (part checksums), re-export the same safetensors bytes; GPTQ
# act-order (g_idx) and mixed schemes (GPTQModel "dynamic"); what the
# layouts cannot hold is refused by name, or re-quantized when asked;
# damaged or foreign checkpoints are refused on import.
# usage: test_hf_layout.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
P=$B/squish-pack Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect C=$B/squish-calibrate
TINY=$S/testdata/tiny-llama
DEC=$S/tests/hf_layout_decode.py
. "$(dirname "$0")/testlib.sh"

PY=""
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || echo "note: no python3 with numpy: the independent decoder's checks are skipped"

# codec bytes of every tensor: name, params, source dtype, parts (dtype, shape, xxh64)
parts() { "$I" --json "$1" | jq -c '[.tensors[] | {name, params, source_dtype, parts: [.parts[] | {name, dtype, shape, checksum_xxh64}]}]'; }
# the numpy decode of DIR equals squish's decode of FILE, tensor for tensor
exact_numpy() { # FILE DIR WHAT
  [ -n "$PY" ] || { skip=$((skip + 1)); return; }
  rm -rf "$T/dec"
  if ! "$PY" "$DEC" "$2" "$T/dec" >"$T/py.out" 2>&1; then bad "$3: numpy decoder failed: $(tail -3 "$T/py.out")"; return; fi
  "$V" -q --reference "$T/dec" --max-abs 0 "$1" >"$T/v.out" 2>&1 && ok || bad "$3: numpy decode differs from squish's: $(grep -v ' ok$' "$T/v.out" | head -5)"
}
# export, independent decode, import (same codec bytes), the directory as a model, re-export (same bytes)
round_trip() { # FILE LAYOUT WHAT [same-bytes: 1|0]
  local f=$1 to=$2 what=$3 same=${4:-1}
  rm -rf "$T/x" "$T/x2"
  expect 0 "$what: export" -- "$P" export --to "$to" "$f" -o "$T/x"
  exact_numpy "$f" "$T/x" "$what"
  expect 0 "$what: import" -- "$P" import "$T/x" -o "$T/back.squizd"
  if [ "$same" = 1 ]; then
    [ "$(parts "$f")" = "$(parts "$T/back.squizd")" ] && ok || bad "$what: imported codec bytes differ from the source's"
  fi
  "$V" -q --reference "$T/x" --max-abs 0 "$f" && ok || bad "$what: the exported directory read as a model differs from the source"
  expect 0 "$what: re-export" -- "$P" export --to "$to" "$T/back.squizd" -o "$T/x2"
  cmp -s "$T/x/model.safetensors" "$T/x2/model.safetensors" && ok || bad "$what: re-export of the import is not byte-identical"
}

# ---- RTN schemes ----
"$Q" "$TINY" -o "$T/a64.squizd" -s int4:g64:asym -q || bad "quantize int4:g64:asym"
expect 5 "v1 refuses a zero point of 0" -- "$P" export --to hf-gptq "$T/a64.squizd" -o "$T/v1"
grep -q "down_proj.weight: zero point 0 (row [0-9]*, group [0-9]*).*hf-gptq-v2" "$T/err" && ok || bad "v1 zero message: $(cat "$T/err")"
[ ! -e "$T/v1" ] && ok || bad "a refused export left a directory"
round_trip "$T/a64.squizd" hf-gptq-v2 "int4:g64:asym v2"
jq -e '.quantization_config | .quant_method == "gptq" and .checkpoint_format == "gptq_v2" and .bits == 4 and .group_size == 64
  and .sym == false and .desc_act == false' "$T/x/config.json" >/dev/null && ok || bad "v2 quantization_config: $(jq -c .quantization_config "$T/x/config.json")"
tar -C "$T" -cf "$T/x.tar" x
expect 0 "import the checkpoint from a tar" -- "$P" import "$T/x.tar" -o "$T/t.squizd"
[ "$(parts "$T/a64.squizd")" = "$(parts "$T/t.squizd")" ] && ok || bad "import from a tar changed the codec bytes"

"$Q" "$TINY" -o "$T/s32.squizd" -s int4:g32:sym -q || bad "quantize int4:g32:sym"
round_trip "$T/s32.squizd" hf-gptq "int4:g32:sym v1"
jq -e '.quant_method == "gptq" and .checkpoint_format == "gptq" and .sym == true and .group_size == 32' "$T/x/quantize_config.json" \
  >/dev/null && ok || bad "quantize_config.json: $(cat "$T/x/quantize_config.json")"

# mixed: int3 attention, int8 per-channel MLP, int2 o_proj, one layer kept, int8 lm_head
"$Q" "$TINY" -o "$T/mix.squizd" -s int3:g32:sym -r 'mlp=int8:pc:asym' -r 'o_proj=int2:g64:sym' \
  -r 'layers\.1\.self_attn\.k_proj=keep' --output-scheme int8 -q || bad "quantize mixed"
round_trip "$T/mix.squizd" hf-gptq-v2 "mixed schemes"
jq -e '.quantization_config | .bits == 8 and .group_size == -1 and .lm_head == true
  and .dynamic["-:^model\\.layers\\.1\\.self_attn\\.k_proj$"] == {}
  and .dynamic["+:^model\\.layers\\.0\\.self_attn\\.o_proj$"] == {"bits": 2, "group_size": 64, "sym": true}' \
  "$T/x/config.json" >/dev/null && ok || bad "dynamic overrides: $(jq -c .quantization_config.dynamic "$T/x/config.json")"

# AWQ: one group size, no short last group: down_proj (520 inputs) kept in bf16
"$Q" "$TINY" -o "$T/awq.squizd" -s int4:g64:asym -r 'down_proj=keep' -q || bad "quantize for awq"
round_trip "$T/awq.squizd" hf-awq "AWQ layout"
jq -e '.quantization_config | .quant_method == "awq" and .version == "gemm" and .zero_point == true and .group_size == 64
  and .modules_to_not_convert == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]' "$T/x/config.json" >/dev/null &&
  ok || bad "AWQ quantization_config: $(jq -c .quantization_config "$T/x/config.json")"
# symmetric codes travel as zeros at the midpoint: the same weights, imported as asym
"$Q" "$TINY" -o "$T/awqs.squizd" -s int4:g64:sym -r 'down_proj=keep' -q || bad "quantize sym for awq"
round_trip "$T/awqs.squizd" hf-awq "AWQ from symmetric codes" 0
"$V" -q --reference "$T/awqs.squizd" --max-abs 0 "$T/back.squizd" && ok || bad "AWQ import of symmetric codes changed the weights"

# ---- the independent decoder can fail: one flipped code bit is seen ----
if [ -n "$PY" ]; then
  rm -rf "$T/x" "$T/dec" && "$P" export --to hf-gptq "$T/s32.squizd" -o "$T/x" -q
  "$PY" - "$T/x/model.safetensors" <<'EOF'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read()); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); off = h['model.layers.1.mlp.up_proj.qweight']['data_offsets'][0]
b[8 + n + off + 1000] ^= 0x10
open(sys.argv[1], 'wb').write(b)
EOF
  "$PY" "$DEC" "$T/x" "$T/dec" >/dev/null
  "$V" -q --reference "$T/dec" --max-abs 0 "$T/s32.squizd" >/dev/null 2>&1
  [ $? = 1 ] && ok || bad "a flipped code bit went unnoticed"
fi

# ---- refusals and --requantize ----
"$Q" "$TINY" -o "$T/nf4.squizd" -s nf4 -q
expect 5 "nf4 has no GPTQ form" -- "$P" export --to hf-gptq "$T/nf4.squizd" -o "$T/n"
grep -q "codec nf4 has no hf-gptq form.*--requantize" "$T/err" && ok || bad "nf4 message: $(cat "$T/err")"
expect 0 "nf4 with --requantize" -- "$P" export --to hf-gptq --requantize "$T/nf4.squizd" -o "$T/n"
n=$(grep -c "re-quantized from nf4:g64 to int4:g128:sym with RTN: relative RMSE [0-9.e+-]*, max |error|" "$T/err")
[ "$n" = 14 ] && ok || bad "requantize notes: $n of 14: $(head -3 "$T/err")"
if [ -n "$PY" ]; then "$PY" "$DEC" "$T/n" "$T/decn" >/dev/null && ok || bad "numpy cannot read the re-quantized export"; fi
expect 2 "--requantize with a tar export" -- "$P" export --to tar --requantize "$T/nf4.squizd" -o "$T/n.tar"
expect 2 "export into a non-empty directory" -- "$P" export --to hf-gptq-v2 "$T/a64.squizd" -o "$T/n"
expect 2 "unknown layout" -- "$P" export --to hf-exl2 "$T/a64.squizd" -o "$T/e"
"$Q" "$TINY" -o "$T/part1.squizd" -s int4:g32:sym --shard 1/2 -q
expect 2 "a partial file" -- "$P" export --to hf-gptq "$T/part1.squizd" -o "$T/p"
grep -q "partial file.*squish-pack merge" "$T/err" && ok || bad "partial-file message: $(cat "$T/err")"
mkdir "$T/empty" && expect 0 "export into an empty directory" -- "$P" export --to hf-gptq-v2 "$T/a64.squizd" -o "$T/empty"

# ---- damaged or foreign checkpoints on import ----
rm -rf "$T/x" && "$P" export --to hf-gptq "$T/s32.squizd" -o "$T/x" -q
cp -r "$T/x" "$T/bad"
if [ -n "$PY" ]; then
  # a v1 zero of 15 (a zero of 0 written minus one) means 16: outside the 4-bit codes
  "$PY" - "$T/bad/model.safetensors" <<'EOF'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read()); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); off = h['model.layers.0.self_attn.q_proj.qzeros']['data_offsets'][0]
b[8 + n + off] |= 0x0F
open(sys.argv[1], 'wb').write(b)
EOF
  expect 5 "v1 zero of 16" -- "$P" import "$T/bad" -o "$T/b.squizd"
  grep -q "q_proj: zero point 16 (output 0, group 0) lies outside the 4-bit codes" "$T/err" && ok || bad "zero 16 message: $(cat "$T/err")"
  rm -rf "$T/bad" && cp -r "$T/x" "$T/bad"
  # g_idx with 33 columns in group 0
  "$PY" - "$T/bad/model.safetensors" <<'EOF'
import json, struct, sys
b = bytearray(open(sys.argv[1], 'rb').read()); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); off = h['model.layers.0.mlp.up_proj.g_idx']['data_offsets'][0]
b[8 + n + off + 4 * 40:8 + n + off + 4 * 41] = struct.pack('<i', 0)
open(sys.argv[1], 'wb').write(b)
EOF
  expect 5 "g_idx with an uneven group" -- "$P" import "$T/bad" -o "$T/b.squizd"
  grep -q "up_proj.g_idx puts 33 columns in group 0, not 32" "$T/err" && ok || bad "g_idx message: $(cat "$T/err")"
fi
rm -rf "$T/bad" && cp -r "$T/x" "$T/bad"
jq '.quantization_config.quant_method = "bitsandbytes"' "$T/x/config.json" >"$T/bad/config.json"
expect 5 "another quantization method" -- "$P" import "$T/bad" -o "$T/b.squizd"
grep -q 'quantization method "bitsandbytes": squish imports gptq and awq' "$T/err" && ok || bad "method message: $(cat "$T/err")"
expect 5 "squish-quantize on it" -- "$Q" "$T/bad" -o "$T/b.squizd" -s int8
jq '.quantization_config.group_size = 16' "$T/x/config.json" >"$T/bad/config.json"
expect 4 "group_size that does not match the scales" -- "$P" import "$T/bad" -o "$T/b.squizd"
[ ! -e "$T/b.squizd" ] && ok || bad "a refused import left an output"

# ---- GPTQ act-order and AWQ's in_scale, with calibration (tokenizer and text from the shared folder) ----
if [ -d "$SH/models" ]; then
  "$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$SH/models/stories260K/tok512.model" -n 6 -L 64 -q -o "$T/cal.h5" ||
    bad "calibrate"
  "$Q" "$TINY" -o "$T/ao.squizd" -s int4:g64:sym --method gptq --act-order --calib "$T/cal.h5" -q || bad "gptq act-order"
  round_trip "$T/ao.squizd" hf-gptq "GPTQ act-order" 0
  jq -e '.quantization_config.desc_act == true' "$T/x/config.json" >/dev/null && ok || bad "desc_act is not true"
  "$P" import "$T/x" -o "$T/back2.squizd" 2>&1 | grep -q "14 modules as int4:g64:sym (14 with act-order)" && ok ||
    bad "import did not read the act-order g_idx"
  "$V" -q --reference "$T/ao.squizd" --max-abs 0 "$T/back.squizd" && ok || bad "act-order import changed the weights"
  "$Q" "$TINY" -o "$T/aw.squizd" -s int4:g64:asym -r 'down_proj=keep' --method awq --calib "$T/cal.h5" -q || bad "awq"
  expect 5 "AWQ's in_scale has no place in the AWQ layout" -- "$P" export --to hf-awq "$T/aw.squizd" -o "$T/w"
  grep -q "o_proj.weight: its in_scale link" "$T/err" && ok || bad "in_scale message: $(cat "$T/err")"
  expect 0 "AWQ with --requantize" -- "$P" export --to hf-awq --requantize "$T/aw.squizd" -o "$T/w"
  n=$(grep -c "o_proj.weight: its in_scale link .*re-quantized from int4:g64:asym+in_scale to int4:g64:asym with RTN" "$T/err")
  [ "$n" = 2 ] && ok || bad "in_scale requantize notes: $n of 2"
else
  echo "note: $SH/models is absent: the calibrated (act-order, AWQ) cases are skipped"
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
