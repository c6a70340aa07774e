#!/usr/bin/env bash
# The mix codec end to end on the tiny model: squish-quantize -s mix:X
# --calib writes a file that squish-verify accepts (integrity, decode against
# the source, --eval), the same bytes at 1 and 3 threads, each linear
# matrix at or below its target bpw; squish-inspect shows the scheme and
# counts the bytes; damaged widths or row offsets (checksums made valid, so
# the codec's check must catch them) exit 4 naming the part; the allocator
# (--target-bpw) takes mix:X candidates and lands on its target; bad schemes
# and no --calib exit 2; mix on the embeddings and lm_head with /vocab's row
# weights (and without /vocab, refused for the embeddings).
# usage: test_mix_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
C=$B/squish-calibrate Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect MK=$B/make-testdata
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

need_shared_models
TOK=$SH/models/stories260K/tok512.model
"$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$TOK" -n 6 -L 64 -q -o "$T/a.h5" -T 2 || bad "calibrate tiny"
MAT='layers\.[0-9]+\.(self_attn|mlp)\.'

# ---- quantize, reproducibly ----
expect 0 "quantize mix:4.5" -- "$Q" "$TINY" -s mix:4.5 --calib "$T/a.h5" -o "$T/m.squizd" -T 1 -q
expect 0 "quantize mix:4.5, 3 threads" -- "$Q" "$TINY" -s mix:4.5 --calib "$T/a.h5" -o "$T/m3.squizd" -T 3 -q
cmp -s "$T/m.squizd" "$T/m3.squizd" && ok || bad "mix:4.5 output differs between 1 and 3 threads"
expect 0 "quantize mix:g64:3.5:w1248:noao" -- "$Q" "$TINY" -s mix:g64:3.5:w1248:noao --calib "$T/a.h5" -o "$T/n.squizd" -T 2 -q

# ---- integrity, decode against the source, evaluation ----
expect 0 "verify" -- "$V" "$T/m.squizd"
expect 0 "verify noao" -- "$V" "$T/n.squizd"
expect 0 "verify against the source" -- "$V" --reference "$TINY" --min-cosine 0.9 "$T/m.squizd"
for i in $(seq 1 300); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
expect 0 "eval" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" -j "$T/m.squizd"
jq -e '.eval.windows == 4 and .eval.kld_mean > 0 and .eval.kld_mean < 0.5' "$T/out" >/dev/null &&
  ok || bad "eval json: $(jq -c .eval "$T/out")"

# ---- inspect: scheme, parts, every matrix within its budget ----
"$I" -j "$T/m.squizd" >"$T/m.json" || bad "inspect --json"
jq -e --arg re "$MAT" '[.tensors[] | select(.name | test($re))] | length == 14 and all(.scheme == "mix:g128:4.5+perm")' \
  "$T/m.json" >/dev/null && ok || bad "inspect: not 14 mix:g128:4.5+perm matrices: $(jq -c '[.tensors[].scheme] | unique' "$T/m.json")"
jq -e '[.tensors[] | select(.codec == "mix") | .parts | map(.name) | join(",")] | unique == ["widths,scales,mins,row_ptr,codes,perm"]' \
  "$T/m.json" >/dev/null && ok || bad "mix parts not as spec/codecs.md §14.2 lists them"
# every matrix with 128 rows or more fits 4.5 bpw (the 64-row k/v: the perm alone is 0.5 bpw, so they may not)
jq -e '[.tensors[] | select(.codec == "mix" and .shape[0] >= 128) | .bytes * 8 / .elements] | all(. <= 4.5)' \
  "$T/m.json" >/dev/null && ok || bad "a mix matrix over its 4.5 bpw target"
grep -q 'MIXED' <("$I" "$T/m.squizd") && ok || bad "inspect: no MIXED flag"

# ---- damaged parts, checksums fixed: the codec's check refuses them (exit 4, naming the part) ----
N=model.layers.0.mlp.down_proj.weight
part() { jq -r --arg n "$N" --arg p "$1" '.tensors[] | select(.name == $n) | .parts[] | select(.name == $p) | .offset' "$T/m.json"; }
rp=$(part row_ptr) wd=$(part widths)
damage() { # NAME OFFSET HEX PART
  cp "$T/m.squizd" "$T/d.squizd" && "$MK" patch "$T/d.squizd" "$2" "$3" || bad "patch $1"
  expect 4 "verify, $1" -- "$V" "$T/d.squizd"
  grep -q "$N" "$T/out" "$T/err" && grep -q "$4" "$T/out" "$T/err" && ok || bad "$1: message does not name $N / $4: $(cat "$T/out" "$T/err" | head -c 400)"
  expect 4 "eval, $1" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 "$T/d.squizd"
}
damage "row offset past the codes" $((rp + 4)) ffffff7f row_ptr
damage "row offsets not adding up" $((rp + 8)) 00000000 row_ptr
damage "a width code changed" "$wd" 55 row_ptr
expect 0 "the undamaged file still verifies" -- "$V" "$T/m.squizd"

# ---- the allocator takes mix candidates ----
expect 0 "target 4.0 over mix candidates" -- "$Q" "$TINY" --calib "$T/a.h5" --target-bpw 4.0 --over matrices \
  --candidates mix:3.5,mix:4.5,mix:6,int4:g64:asym -o "$T/t.squizd" -T 2 -q
bpw=$("$I" --json "$T/t.squizd" | jq --arg re "$MAT" '[.tensors[] | select(.name | test($re))] | (map(.bytes) | add) * 8 / (map(.elements) | add)')
awk -v a="$bpw" 'BEGIN { d = a - 4.0; if (d < 0) d = -d; exit !(d <= 0.02) }' && ok || bad "allocation at $bpw bpw, not 4.0 +- 0.02"
"$I" --json "$T/t.squizd" | jq -e '[.tensors[] | select(.codec == "mix")] | length > 0' >/dev/null && ok || bad "the allocator chose no mix scheme"

# ---- bad usage ----
expect 2 "mix without --calib" -- "$Q" "$TINY" -s mix:3.5 -o "$T/x.squizd" -q
grep -q -- "--calib" "$T/err" && ok || bad "no --calib: message: $(cat "$T/err")"
expect 2 "bad mix target" -- "$Q" "$TINY" -s mix:0.5 --calib "$T/a.h5" -o "$T/x.squizd" -q
grep -q "target bits per weight" "$T/err" && ok || bad "mix:0.5 message: $(cat "$T/err")"
expect 2 "bad width set" -- "$Q" "$TINY" -s mix:3:w3322 --calib "$T/a.h5" -o "$T/x.squizd" -q
[ ! -e "$T/x.squizd" ] && ok || bad "a refused quantize left an output"

# ---- the embeddings and lm_head by mix with the calibration file's row weights (/vocab) ----
expect 0 "embeddings and lm_head by mix:3, row-weighted" -- "$Q" "$TINY" -s int8 -r 'embed_tokens=mix:3' --output-scheme mix:3 \
  --calib "$T/a.h5" -o "$T/v.squizd" -T 2 -q
expect 0 "verify the row-weighted file" -- "$V" "$T/v.squizd"
"$MK" asym-calib "$T/a.h5" "$T/a0.h5" 0 || bad "old-style calibration file"
expect 2 "embeddings by mix without /vocab" -- "$Q" "$TINY" -s int8 -r 'embed_tokens=mix:3' --calib "$T/a0.h5" -o "$T/x.squizd" -q
grep -q "needs the layer's calibration statistics" "$T/err" && [ ! -e "$T/x.squizd" ] && ok || bad "no /vocab: $(cat "$T/err")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
