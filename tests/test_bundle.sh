#!/usr/bin/env bash
# Self-contained .squizd files: squish-quantize embeds the model's config and
# tokenizer files by default (--no-bundle skips it, and the canonical command
# line says so); the embedded files come back byte for byte; inspect lists
# them with their SHA-256; shards carry them and merge refuses shards that
# disagree; re-quantizing a .squizd keeps them; --zstd compresses them.
# And squish-pack export --to gguf on the command line: usage errors, a
# missing tokenizer, a refused tensor named with nothing written,
# --requantize, --from.
# usage: test_bundle.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize P=$B/squish-pack V=$B/squish-verify I=$B/squish-inspect
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"
sha() { sha256sum "$1" | cut -c1-64; }

# ---- the tiny model: config.json is its only side file ----
expect 0 "quantize tiny" -- "$Q" "$TINY" -o "$T/a.squizd" -s int4 -q
"$I" --json "$T/a.squizd" | jq -e --arg h "$(sha "$TINY/config.json")" \
  '.bundled == [{"name": "config.json", "bytes": 385, "sha256": $h, "tokenizer": false}]' >/dev/null && ok ||
  bad "tiny bundle: $("$I" --json "$T/a.squizd" | jq -c .bundled)"
"$I" "$T/a.squizd" | grep -q '^bundled:       config.json (385 B)$' && ok || bad "inspect's bundled line: $("$I" "$T/a.squizd" | grep bundled)"
"$P" export --to tar "$T/a.squizd" -o "$T/a.tar" -q && mkdir -p "$T/xa" && tar -C "$T/xa" -xf "$T/a.tar" &&
  cmp -s "$T/xa/config.json" "$TINY/config.json" && ok || bad "the embedded config.json does not come back byte for byte"
expect 0 "quantize tiny --no-bundle" -- "$Q" "$TINY" -o "$T/nb.squizd" -s int4 --no-bundle -q
"$I" --json "$T/nb.squizd" | jq -e '.header.n_appendix == 0 and .bundled == []' >/dev/null && ok || bad "--no-bundle still embeds"
"$I" --json "$T/nb.squizd" | jq -e '.metadata.provenance.command_line[-1] == "--no-bundle"' >/dev/null &&
  "$I" --json "$T/a.squizd" | jq -e '.metadata.provenance.command_line | index("--no-bundle") == null' >/dev/null && ok ||
  bad "the canonical command line does not record --no-bundle"
"$I" "$T/nb.squizd" | grep -q '^bundled:       nothing' && ok || bad "inspect of a file without a bundle"
# the tensors are the same with and without the bundle
cmp -s <("$I" --json "$T/a.squizd" | jq -c '.tensors | map(del(.parts))') <("$I" --json "$T/nb.squizd" | jq -c '.tensors | map(del(.parts))') &&
  ok || bad "--no-bundle changed the tensors"
# --zstd compresses the embedded files too; they still come back byte for byte
"$Q" "$TINY" -o "$T/z.squizd" -s int4 --zstd 5 -q
"$I" --json "$T/z.squizd" | jq -e '[.appendix[] | select(.file == "config.json") | .stored_size < .raw_size] == [true]' >/dev/null &&
  ok || bad "--zstd left the embedded config.json raw"
"$P" export --to tar "$T/z.squizd" -o "$T/z.tar" -q && mkdir -p "$T/xz" && tar -C "$T/xz" -xf "$T/z.tar" &&
  cmp -s "$T/xz/config.json" "$TINY/config.json" && ok || bad "the zstd-embedded config.json does not come back byte for byte"
expect 0 "verify the zstd file" -- "$V" "$T/z.squizd"
# re-quantizing a .squizd keeps its bundle
"$Q" "$T/a.squizd" -o "$T/re.squizd" -s int8 -q
cmp -s <("$I" --json "$T/a.squizd" | jq -c .bundled) <("$I" --json "$T/re.squizd" | jq -c .bundled) && ok ||
  bad "re-quantizing dropped the bundle"
# shards carry the bundle; merge refuses shards whose bundles differ
for k in 1 2 3; do "$Q" "$TINY" -o "$T/p$k.squizd" -s int4 --shard $k/3 -q; done
"$I" --json "$T/p2.squizd" | jq -e '.bundled | length == 1' >/dev/null && ok || bad "a shard does not carry the bundle"
echo "notes" >"$T/NOTES"
"$P" bundle --add "$T/NOTES" "$T/p2.squizd" -o "$T/p2b.squizd" -q
expect 2 "merge shards with different bundles" -- "$P" merge "$T/p1.squizd" "$T/p2b.squizd" "$T/p3.squizd" -o "$T/m.squizd"
grep -q "embed different files" "$T/err" && ok || bad "merge message: $(cat "$T/err")"
[ ! -e "$T/m.squizd" ] && ok || bad "a refused merge left an output"

# ---- GGUF export on the command line ----
expect 2 "export --to gguf without a tokenizer" -- "$P" export --to gguf "$T/a.squizd" -o "$T/a.gguf"
grep -q "embeds no tokenizer" "$T/err" && ok || bad "no-tokenizer message: $(cat "$T/err")"
expect 2 "--requantize with --to tar" -- "$P" export --to tar --requantize Q8_0 "$T/a.squizd" -o "$T/x.tar"
expect 2 "--requantize of an unknown type" -- "$P" export --to gguf --requantize Q5_K "$T/a.squizd" -o "$T/x.gguf"
grep -q "Q8_0, Q4_0, Q4_1, F16, BF16 or F32" "$T/err" && ok || bad "--requantize message: $(cat "$T/err")"
expect 2 "--requantize given to merge" -- "$P" merge --requantize Q8_0 "$T/p1.squizd" -o "$T/x.squizd"
mkdir -p "$T/tok"
cat >"$T/tok/tokenizer.json" <<'EOF'
{"added_tokens":[{"id":0,"content":"<|endoftext|>","special":true}],"normalizer":null,
 "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
 "model":{"type":"BPE","vocab":{"<|endoftext|>":0,"a":1,"b":2,"ab":3},"merges":["a b"]}}
EOF
# int4:g128:sym: 192-wide rows are whole blocks (groups of 128 and 64) -> Q4_0; down_proj's 520 columns are not
expect 5 "export a 520-wide int4 row" -- "$P" export --to gguf --from "$T/tok" "$T/a.squizd" -o "$T/a.gguf"
grep -q "tensor model.layers.0.mlp.down_proj.weight (int4:g128:sym) has no exact GGUF form: 520 columns" "$T/err" && ok ||
  bad "refusal message: $(cat "$T/err")"
[ ! -e "$T/a.gguf" ] && ! ls "$T" | grep -q squish-tmp && ok || bad "a refused export left a file"
expect 5 "--requantize Q8_0 of 520 columns" -- "$P" export --to gguf --from "$T/tok" --requantize Q8_0 "$T/a.squizd" -o "$T/a.gguf"
grep -q "use --requantize F32" "$T/err" && ok || bad "Q8_0 message: $(cat "$T/err")"
expect 0 "--requantize F32" -- "$P" export --to gguf --from "$T/tok" --requantize F32 "$T/a.squizd" -o "$T/a.gguf"
grep -q "^blk.0.ffn_down.weight .* -> F32   exact (decoded to F32)" "$T/err" && grep -q "^blk.0.ffn_up.weight .* -> Q4_0  exact (codes repacked)" "$T/err" &&
  ok || bad "export lines: $(head -12 "$T/err")"
head -c 4 "$T/a.gguf" | grep -q GGUF && ok || bad "not a GGUF file"
# F16 re-encodes (the error is printed); the same command writes the same bytes
expect 0 "--requantize F16" -- "$P" export --to gguf --from "$T/tok" --requantize F16 "$T/a.squizd" -o "$T/h.gguf"
grep -q "^blk.1.ffn_down.weight .* -> F16   re-encoded: rmse [0-9.e+-]*, max abs [0-9.e+-]*, relative rmse [0-9.e+-]*$" "$T/err" &&
  grep -q "2 tensors re-encoded as F16; largest relative rmse" "$T/err" && ok || bad "re-encoding report: $(grep -i re-encoded "$T/err" | head -3)"
"$P" export --to gguf --from "$T/tok" --requantize F16 "$T/a.squizd" -o "$T/h2.gguf" -q && cmp -s "$T/h.gguf" "$T/h2.gguf" && ok ||
  bad "export is not deterministic"

# ---- the real model: every side file embedded, byte for byte ----
if [ -n "${SQUISH_TEST_QUICK:-}" ]; then
  echo "skipped: the 34M model (SQUISH_TEST_QUICK is set)" >&2
  skip=$((skip + 1))
elif [ -d "$SH/models/squish-lm-34m" ]; then
  M=$SH/models/squish-lm-34m
  "$Q" "$M" -o "$T/m34.squizd" -s int8:g32:sym --rule 'embed_tokens=int8:g32:sym' --output-scheme int8:g32:sym -q || bad "quantize 34M"
  "$I" --json "$T/m34.squizd" | jq -r '.bundled[] | .name' | tr '\n' ' ' |
    grep -qx 'config.json generation_config.json tokenizer.json tokenizer_config.json ' && ok || bad "34M bundle: $("$I" --json "$T/m34.squizd" | jq -c '[.bundled[].name]')"
  "$P" export --to tar "$T/m34.squizd" -o "$T/m34.tar" -q && mkdir -p "$T/x34" && tar -C "$T/x34" -xf "$T/m34.tar" || bad "export 34M"
  for f in config.json generation_config.json tokenizer.json tokenizer_config.json; do
    cmp -s "$T/x34/$f" "$M/$f" && ok || bad "embedded $f differs from the model's"
  done
  "$I" --json "$T/m34.squizd" | jq -e --arg h "$(sha "$M/tokenizer.json")" \
    '.metadata.tokenizer == {"file": "tokenizer.json", "sha256": $h, "embedded": true}' >/dev/null && ok ||
    bad "metadata tokenizer member: $("$I" --json "$T/m34.squizd" | jq -c .metadata.tokenizer)"
  # the embedded tokenizer makes the GGUF: the same vocabulary as --from the model directory
  "$P" export --to gguf "$T/m34.squizd" -o "$T/e.gguf" -q && "$P" export --to gguf --from "$M" "$T/m34.squizd" -o "$T/d.gguf" -q &&
    cmp -s "$T/e.gguf" "$T/d.gguf" && ok || bad "embedded and directory tokenizers give different GGUF files"
else
  echo "skipped: $SH/models is absent" >&2
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
