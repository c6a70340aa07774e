#!/usr/bin/env bash
# The model check and the inputs squish-quantize reads: models that do not
# match their configuration (a tensor missing, transposed, 3-D, sharing
# bytes, the wrong vocabulary or layer count) are refused with exit 4 naming
# the tensor and both shapes, by squish-quantize on the source and by
# squish-verify on a .squizd; a shard given twice is named; a .squizd is
# re-quantized like any source; another model's tokenizer is named.
# usage: test_model_check.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect P=$B/squish-pack C=$B/squish-calibrate MK=$B/make-testdata
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

# has WHAT TEXT: the last command's stderr contains TEXT
has() { grep -qF -- "$2" "$T/err" && ok || bad "$1: stderr lacks '$2': $(head -c 400 "$T/err")"; }

# ---- damaged models: refused before any output, the tensor and both shapes named ----
while IFS='|' read -r damage says; do
  "$MK" model "$T/$damage" "$damage" || bad "make-testdata model $damage"
  expect 4 "quantize a model with damage '$damage'" -- "$Q" "$T/$damage" -o "$T/$damage.squizd" -s int4 -q
  has "quantize $damage" "$says"
  [ ! -e "$T/$damage.squizd" ] && ok || bad "$damage: output written"
  # the same model packed as a .squizd (import keeps every tensor as it is): verify refuses it
  if [ "$damage" != shared ]; then # import copies the bytes: the container has no shared data
    tar -C "$T" -cf "$T/$damage.tar" "$damage" && "$P" import "$T/$damage.tar" -o "$T/$damage-imp.squizd" -q || bad "import $damage"
    expect 4 "verify a .squizd with damage '$damage'" -- "$V" "$T/$damage-imp.squizd"
    has "verify $damage" "${says%% (transposed?)}"
    expect 4 "verify --json, damage '$damage'" -- "$V" --json "$T/$damage-imp.squizd"
    jq -e --arg s "${says%% (transposed?)}" '.status != "ok" and any(.problems[]; contains($s))' "$T/out" >/dev/null && ok ||
      bad "verify --json $damage: $(jq -c .problems "$T/out")"
  fi
done <<'EOF'
missing|tensor model.layers.1.mlp.up_proj.weight is missing; the configuration (intermediate_size 520, hidden_size 192) needs it as [520, 192]
transposed|tensor model.layers.0.mlp.down_proj.weight is [520, 192] but the configuration (intermediate_size 520, hidden_size 192) needs [192, 520] (transposed?)
3d|tensor model.layers.0.self_attn.q_proj.weight is [6, 32, 192] but the configuration (num_attention_heads 6 x head_dim 32, hidden_size 192) needs [192, 192]
shared|tensors model.layers.0.self_attn.k_proj.weight [64, 192] and model.layers.0.self_attn.v_proj.weight [64, 192] share bytes
vocab|tensor model.embed_tokens.weight is [512, 192] but the configuration (vocab_size 500, hidden_size 192) needs [500, 192]
layers|tensor model.layers.1.input_layernorm.weight belongs to layer 1 but the configuration has num_hidden_layers 1
EOF
# the intact model passes both
"$MK" model "$T/intact" && tar -C "$T" -cf "$T/intact.tar" intact && "$P" import "$T/intact.tar" -o "$T/intact.squizd" -q
expect 0 "verify an intact import" -- "$V" "$T/intact.squizd"
# partial files of a sharded run hold only their tensors: still OK
"$Q" "$TINY" -o "$T/part2.squizd" -s int4 --shard 2/3 -q
expect 0 "verify a partial file" -- "$V" "$T/part2.squizd"

# ---- a shard given twice: the message says so ----
cp -r "$TINY" "$T/twice"
cp "$TINY/model-00001-of-00002.safetensors" "$T/twice/model-00002-of-00002.safetensors"
expect 4 "a shard given twice" -- "$Q" "$T/twice" -o "$T/x.squizd" -s int4 -q
has "shard given twice" "model-00002-of-00002.safetensors have the same bytes: one shard given twice"

# ---- a .squizd as input: decoded and quantized like any source ----
expect 0 "re-quantize a bf16 import" -- "$Q" "$T/intact.squizd" -o "$T/re.squizd" -s int4:g64:asym -q
"$Q" "$TINY" -o "$T/direct.squizd" -s int4:g64:asym -q
tensors() { "$I" --json "$1" | jq -c '[.tensors[] | {name, shape, source_dtype, scheme, parts: [.parts[].checksum_xxh64]}]'; }
[ "$(tensors "$T/re.squizd")" = "$(tensors "$T/direct.squizd")" ] && ok || bad "re-quantized lossless import differs from quantizing the source"
"$I" --json "$T/re.squizd" | jq -e '.metadata.provenance.source_format == "squizd"' >/dev/null && ok || bad "source_format of a .squizd source"
expect 0 "re-quantize a quantized file" -- "$Q" "$T/direct.squizd" -o "$T/re8.squizd" -s int8 -q
expect 0 "verify the re-quantized file" -- "$V" --reference "$TINY" --min-cosine 0.99 "$T/re8.squizd"
expect 2 "a partial file as input" -- "$Q" "$T/part2.squizd" -o "$T/x.squizd" -s int8 -q
has "partial input" "is a partial file (squish-quantize --shard)"
cp "$T/direct.squizd" "$T/noext" # found by its magic, not only by its name
expect 0 "a .squizd without the extension" -- "$Q" "$T/noext" -o "$T/re2.squizd" -s int8 -q
printf 'SQZD and then nothing' >"$T/junk.squizd"
expect 4 "a damaged .squizd input" -- "$Q" "$T/junk.squizd" -o "$T/x.squizd" -s int8 -q
has "damaged .squizd" "junk.squizd"
[ ! -e "$T/x.squizd" ] && ok || bad "output left after a refused input"

# ---- another model's tokenizer ----
if [ -d "$SH/models" ]; then
  expect 2 "calibrate with another model's tokenizer.json" -- "$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$SH/models/squish-lm-34m/tokenizer.json" -n 1 -L 8 -o "$T/x.h5" -q
  has "tokenizer.json of another model" "tokenizer.json has 8192 tokens but the model's vocabulary has 512: a tokenizer of another model"
  expect 2 "calibrate with another model's tokenizer.bin" -- "$C" "$SH/models/squish-lm-34m" -t "$SH/data/calib-books.txt" --tokenizer "$SH/models/stories260K/tok512.bin" -n 1 -L 8 -o "$T/x.h5" -q
  has "tokenizer.bin of another model" "tok512.bin holds 512 tokens but the model's vocabulary has 8192: a tokenizer of another model"
  expect 2 "verify --eval with another model's tokenizer" -- "$V" -q --tokenizer "$SH/models/squish-lm-34m/tokenizer.json" --eval "$SH/data/tinystories-valid-excerpt.txt" "$T/direct.squizd"
  has "verify --eval, tokenizer of another model" "has 8192 tokens but the model's vocabulary has 512: a tokenizer of another model"
else
  echo "skipped: tokenizer checks ($SH/models is absent)" >&2
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
