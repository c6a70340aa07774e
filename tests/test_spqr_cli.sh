#!/usr/bin/env bash
# The spqr codec end to end on the tiny model: squish-quantize -s spqr:...
# --calib writes a file that squish-verify accepts (integrity, decode
# against the source, --eval with KLD), reproducibly across thread counts,
# also with :rht (the rht_in link in place of perm);
# squish-inspect shows the scheme; damaged CSR parts (checksums made valid,
# so the codec's own check must catch them) exit 4 naming the part; no
# --calib exits 2.
# usage: test_spqr_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
C=$B/squish-calibrate Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect MK=$B/make-testdata
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

need_shared_models
TOK=$SH/models/stories260K/tok512.model
"$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$TOK" -n 6 -L 64 -q -o "$T/a.h5" -T 2 || bad "calibrate tiny"

# ---- quantize, reproducibly ----
expect 0 "quantize spqr:w3" -- "$Q" "$TINY" -s spqr:w3 --calib "$T/a.h5" -o "$T/w3.squizd" -T 1 -q
expect 0 "quantize spqr:w3, 3 threads" -- "$Q" "$TINY" -s spqr:w3 --calib "$T/a.h5" -o "$T/w3b.squizd" -T 3 -q
cmp -s "$T/w3.squizd" "$T/w3b.squizd" && ok || bad "spqr:w3 output differs between 1 and 3 threads"
expect 0 "quantize spqr:w4:b64:t0" -- "$Q" "$TINY" -s spqr:w4:b64:t0 --calib "$T/a.h5" -o "$T/w4.squizd" -T 2 -q
expect 0 "quantize spqr:w2:o1" -- "$Q" "$TINY" -s spqr:w2:o1 --calib "$T/a.h5" -o "$T/w2.squizd" -T 2 -q
expect 0 "quantize spqr:w3:rht:t0" -- "$Q" "$TINY" -s spqr:w3:rht:t0 --calib "$T/a.h5" -o "$T/rht.squizd" -T 1 -q
expect 0 "quantize spqr:w3:rht:t0, 3 threads" -- "$Q" "$TINY" -s spqr:w3:rht:t0 --calib "$T/a.h5" -o "$T/rhtb.squizd" -T 3 -q
cmp -s "$T/rht.squizd" "$T/rhtb.squizd" && ok || bad "spqr:w3:rht:t0 output differs between 1 and 3 threads"

# ---- integrity, decode against the source, evaluation ----
for f in w3 w4 w2 rht; do
  expect 0 "verify $f" -- "$V" "$T/$f.squizd"
done
expect 0 "verify rht against the source (through the rht_in link)" -- "$V" --reference "$TINY" --min-cosine 0.95 "$T/rht.squizd"
expect 0 "verify w3 against the source" -- "$V" --reference "$TINY" --min-cosine 0.95 "$T/w3.squizd"
for i in $(seq 1 300); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
expect 0 "eval w3" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" -j "$T/w3.squizd"
jq -e '.eval.windows == 4 and .eval.kld_mean > 0 and .eval.kld_mean < 0.5 and .eval.top1_agreement > 0.5' "$T/out" >/dev/null &&
  ok || bad "eval w3 json: $(jq -c .eval "$T/out")"
kw3=$(jq .eval.kld_mean "$T/out")
expect 0 "eval w2" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" -j "$T/w2.squizd"
kw2=$(jq .eval.kld_mean "$T/out")
awk -v a="$kw3" -v b="$kw2" 'BEGIN { exit !(a < b) }' && ok || bad "spqr:w3 KLD $kw3 is not below spqr:w2's $kw2"
expect 0 "eval rht" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" -j "$T/rht.squizd"
jq -e '.eval.kld_mean > 0 and .eval.kld_mean < 0.5 and .eval.top1_agreement > 0.5' "$T/out" >/dev/null &&
  ok || bad "eval rht json: $(jq -c .eval "$T/out")"
"$I" -j "$T/rht.squizd" >"$T/rht.json" || bad "inspect --json rht"
jq -e '[.tensors[] | select(.codec == "spqr")] | length == 14 and all(.scheme == "spqr:w3:rht:t0+rht_in")' "$T/rht.json" \
  >/dev/null && ok || bad "inspect --json: not 14 spqr:w3:rht:t0+rht_in tensors"
jq -e '[.tensors[] | select(.codec == "spqr") | .parts | map(.name) | join(",")] | unique ==
  ["codes,scale_codes,zero_codes,stats2,row_ptr,outlier_cols,outlier_vals,rht_in"]' "$T/rht.json" >/dev/null &&
  ok || bad "spqr:w3:rht parts: not the codec's 7 and rht_in"

# ---- inspect: scheme, the perm link, the data-sized parts ----
expect 0 "inspect" -- "$I" "$T/w3.squizd"
grep -q 'model.layers.0.mlp.down_proj.weight .* spqr:w3+perm ' "$T/out" && ok || bad "inspect does not show spqr:w3+perm"
grep -q 'flags: .*SPQR' "$T/out" && ok || bad "inspect: no SPQR flag"
"$I" -j "$T/w4.squizd" >"$T/w4.json" || bad "inspect --json w4"
jq -e '[.tensors[] | select(.codec == "spqr")] | length == 14 and all(.scheme == "spqr:w4:b64:t0+perm")' "$T/w4.json" \
  >/dev/null && ok || bad "inspect --json: not 14 spqr:w4:b64:t0+perm tensors"
jq -e '[.tensors[] | select(.codec == "spqr") | .parts[] | select(.name == "outlier_cols") | .shape[0]] | all(. == 0)' \
  "$T/w4.json" >/dev/null && ok || bad "t0 wrote outliers"
"$I" -j "$T/w3.squizd" >"$T/w3.json" || bad "inspect --json w3"
jq -e '[.tensors[] | select(.codec == "spqr") | .parts | map(.name) | join(",")] | unique ==
  ["codes,scale_codes,zero_codes,stats2,row_ptr,outlier_cols,outlier_vals,perm"]' "$T/w3.json" >/dev/null &&
  ok || bad "spqr parts not as spec/codecs.md §13 lists them"
jq -e '[.tensors[] | select(.codec == "spqr") | .parts[] | select(.name == "outlier_cols") | .shape[0]] | add > 0' \
  "$T/w3.json" >/dev/null && ok || bad "spqr:w3 wrote no outliers"

# ---- damaged CSR parts, checksums fixed: the codec's check refuses them (exit 4, naming the part) ----
N=model.layers.0.mlp.down_proj.weight
part() { jq -r --arg n "$N" --arg p "$1" '.tensors[] | select(.name == $n) | .parts[] | select(.name == $p) | .offset' "$T/w3.json"; }
rp=$(part row_ptr) oc=$(part outlier_cols) ov=$(part outlier_vals)
nnz=$(jq -r --arg n "$N" '.tensors[] | select(.name == $n) | .parts[] | select(.name == "outlier_cols") | .shape[0]' "$T/w3.json")
damage() { # NAME OFFSET HEX PART: the file with HEX at OFFSET must be refused, the message naming PART
  cp "$T/w3.squizd" "$T/d.squizd" && "$MK" patch "$T/d.squizd" "$2" "$3" || bad "patch $1"
  expect 4 "verify, $1" -- "$V" "$T/d.squizd"
  grep -q "$N" "$T/out" "$T/err" && grep -q "$4" "$T/out" "$T/err" && ok || bad "$1: message does not name $N / $4: $(cat "$T/out" "$T/err" | head -c 400)"
  expect 4 "eval, $1" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 "$T/d.squizd"
}
[ "$nnz" -gt 2 ] && ok || bad "the damaged tensor has only $nnz outliers"
damage "row offset past nnz" $((rp + 4)) ffffff7f row_ptr
damage "row offsets not adding up" $((rp + 192 * 4)) 00000000 row_ptr
damage "outlier column out of range" "$oc" ffff outlier_cols
damage "NaN outlier" "$ov" 00fe outlier_vals
expect 0 "the undamaged file still verifies" -- "$V" "$T/w3.squizd"

# ---- bad usage ----
expect 2 "spqr without --calib" -- "$Q" "$TINY" -s spqr:w3 -o "$T/x.squizd" -q
grep -q -- "--calib" "$T/err" && ok || bad "no --calib: message: $(cat "$T/err")"
[ ! -e "$T/x.squizd" ] && ok || bad "failed quantize left an output"
# AWQ's scale search runs before quant/method.c's refusal of a calibrated codec, and fails on spqr there
# (exit 4, "no finite error"): refused either way, but not yet with the usage message (reported to the lead)
"$Q" "$TINY" -s spqr:w3 --calib "$T/a.h5" --method awq -o "$T/x.squizd" -q 2>"$T/err" && bad "spqr with --method awq accepted" || ok
[ ! -e "$T/x.squizd" ] && ok || bad "spqr with --method awq left an output"
expect 2 "bad spqr option" -- "$Q" "$TINY" -s spqr:w9 --calib "$T/a.h5" -o "$T/x.squizd" -q
grep -q "w2 .. w8" "$T/err" && ok || bad "spqr:w9 message: $(cat "$T/err")"
expect 0 "--list-schemes" -- "$Q" --list-schemes
grep -q '^spqr .* 112 .*spqr:w3 .*outliers' "$T/out" && ok || bad "--list-schemes: $(grep spqr "$T/out")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
