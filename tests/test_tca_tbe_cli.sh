#!/usr/bin/env bash
# TCA-TBE from the command line on the tiny model (bf16 weights):
# squish-quantize --tca-tbe codes the bf16 parts (small ones stay raw),
# records the option, and the file verifies and evaluates to the same
# figures as the uncoded one; squish-pack recompress --tca-tbe and back
# with --none is the identity, merge joins coded shards into the unsharded
# file; options that do not apply are usage errors;
# a damaged coded part exits 4 naming the part and the rule wherever it is
# read; squish-bench --tca-tbe prints its table.
# usage: test_tca_tbe_cli.sh BUILD_DIR SOURCE_DIR
set -u
B=$1 S=$2
Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect P=$B/squish-pack BE=$B/squish-bench
TINY=$S/testdata/tiny-llama D=$S/testdata/squizd-vectors
. "$(dirname "$0")/testlib.sh"

# ---- squish-quantize ----
expect 0 "quantize bf16" -- "$Q" "$TINY" -s bf16 -o "$T/plain.squizd" -q -T 2
expect 0 "quantize bf16 --tca-tbe" -- "$Q" "$TINY" -s bf16 --tca-tbe -o "$T/tbe.squizd" -q -T 2
expect 0 "quantize bf16 --tca-tbe, 1 thread" -- "$Q" "$TINY" -s bf16 --tca-tbe -o "$T/tbe1.squizd" -q -T 1
cmp -s "$T/tbe.squizd" "$T/tbe1.squizd" && ok || bad "--tca-tbe output differs between 1 and 2 threads"
p=$(stat -c %s "$T/plain.squizd") t=$(stat -c %s "$T/tbe.squizd")
[ $((t * 100)) -lt $((p * 80)) ] && ok || bad "--tca-tbe file is $t bytes, the bf16 one $p (want < 80%)"
"$I" --json "$T/tbe.squizd" >"$T/tbe.json" || bad "inspect --json"
jq -e '[.tensors[].parts[] | select(.dtype == "bf16") | if .raw_size > 1024 then .compression == "tca-tbe"
       else .compression == "none" end] | all' "$T/tbe.json" >/dev/null && ok ||
  bad "bf16 parts not coded as expected: $(jq -c '[.tensors[].parts[] | [.raw_size, .compression]]' "$T/tbe.json" | head -c 300)"
jq -e '.header.flag_names | index("TCA_TBE") != null' "$T/tbe.json" >/dev/null && ok || bad "flag TCA_TBE: $(jq -c .header.flag_names "$T/tbe.json")"
jq -e '.metadata.provenance.command_line[-1] == "--tca-tbe"' "$T/tbe.json" >/dev/null && ok ||
  bad "command_line: $(jq -c .metadata.provenance.command_line "$T/tbe.json")"
"$I" "$T/tbe.squizd" | grep -q 'model.embed_tokens.weight .* tca-tbe ' && ok || bad "inspect does not show tca-tbe"
# with --zstd the other parts are zstd: int4 codes zstd, the kept bf16 tensors TCA-TBE
expect 0 "quantize int4 --zstd 3 --tca-tbe" -- "$Q" "$TINY" -s int4:g128:asym --zstd 3 --tca-tbe -o "$T/mix.squizd" -q -T 2
"$I" --json "$T/mix.squizd" >"$T/mix.json"
jq -e '([.tensors[] | select(.name == "model.embed_tokens.weight") | .parts[0].compression] == ["tca-tbe"]) and
       ([.tensors[] | select(.name == "model.layers.0.mlp.up_proj.weight") | .parts[] | select(.name == "codes") | .compression] == ["zstd"]) and
       (.header.flag_names | index("ZSTD") != null and index("TCA_TBE") != null) and
       (.metadata.provenance.command_line[-3:] == ["--zstd", "3", "--tca-tbe"])' "$T/mix.json" >/dev/null && ok ||
  bad "int4 --zstd 3 --tca-tbe: $(jq -c '[.header.flag_names, .metadata.provenance.command_line[-3:]]' "$T/mix.json")"

# ---- lossless: verify, and the same evaluation figures ----
for f in plain tbe mix; do expect 0 "verify $f" -- "$V" "$T/$f.squizd"; done
for i in $(seq 1 64); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
"$V" -q -j --eval-ids "$T/ids.txt" --ctx 32 "$T/plain.squizd" | jq -c '.eval | [.nll_sum, .ppl, .scored_tokens]' >"$T/e1" && ok || bad "eval plain"
"$V" -q -j --eval-ids "$T/ids.txt" --ctx 32 "$T/tbe.squizd" | jq -c '.eval | [.nll_sum, .ppl, .scored_tokens]' >"$T/e2" && ok || bad "eval tbe"
[ -s "$T/e1" ] && cmp -s "$T/e1" "$T/e2" && ok || bad "evaluation differs: $(cat "$T/e1") vs $(cat "$T/e2")"

# ---- squish-pack recompress ----
expect 0 "recompress --none" -- "$P" recompress --none "$T/plain.squizd" -o "$T/n0.squizd" -q
expect 0 "recompress --tca-tbe" -- "$P" recompress --tca-tbe "$T/plain.squizd" -o "$T/r.squizd" -q
expect 0 "recompress --none of it" -- "$P" recompress --none "$T/r.squizd" -o "$T/n1.squizd" -q
cmp -s "$T/n0.squizd" "$T/n1.squizd" && ok || bad "recompress --tca-tbe then --none is not the identity"
expect 0 "recompress --tca-tbe --zstd 5" -- "$P" recompress --tca-tbe --zstd 5 "$T/plain.squizd" -o "$T/rz.squizd" -q
"$I" --json "$T/rz.squizd" | jq -e '(.header.flag_names | index("TCA_TBE") != null and index("ZSTD") != null) and
  ([.tensors[].parts[] | select(.raw_size > 1024) | .compression] | all(. == "tca-tbe"))' >/dev/null && ok ||
  bad "recompress --tca-tbe --zstd 5: $("$I" --json "$T/rz.squizd" | jq -c .header.flag_names)"
expect 0 "verify the recompressed file" -- "$V" "$T/rz.squizd"
expect 0 "recompress --zstd 3 of a TCA-TBE file" -- "$P" recompress --zstd 3 "$T/tbe.squizd" -o "$T/z.squizd" -q
"$I" --json "$T/z.squizd" | jq -e '[.tensors[].parts[].compression] | all(. != "tca-tbe")' >/dev/null && ok ||
  bad "recompress --zstd left TCA-TBE parts"
expect 2 "split --tca-tbe" -- "$P" split --tca-tbe --max-size 1M "$T/tbe.squizd" -o "$T/s.squizd"
grep -q -- "--tca-tbe does not apply to split" "$T/err" && ok || bad "split --tca-tbe: $(cat "$T/err")"
expect 2 "recompress without a choice" -- "$P" recompress "$T/tbe.squizd" -o "$T/x.squizd"
grep -q -- "--tca-tbe" "$T/err" && ok || bad "recompress usage error does not name --tca-tbe: $(cat "$T/err")"
# shards copy coded parts as stored: merging them gives the unsharded file
expect 0 "quantize shard 1/2" -- "$Q" "$TINY" -s bf16 --tca-tbe --shard 1/2 -o "$T/s1.squizd" -q -T 2
expect 0 "quantize shard 2/2" -- "$Q" "$TINY" -s bf16 --tca-tbe --shard 2/2 -o "$T/s2.squizd" -q -T 2
expect 0 "merge the shards" -- "$P" merge "$T/s2.squizd" "$T/s1.squizd" -o "$T/m.squizd" -q
cmp -s "$T/m.squizd" "$T/tbe.squizd" && ok || bad "merged shards differ from the unsharded --tca-tbe file"

# ---- damaged coded parts: exit 4 wherever the part is read ----
bad_file=$D/reject-tca-tbe-base.squizd
expect 4 "verify a damaged window base" -- "$V" "$bad_file"
grep -q "part data: TCA-TBE data at .*window base 250 is above 249 (T3)" "$T/err" && ok || bad "verify message: $(head -c 300 "$T/err")"
expect 4 "recompress a damaged part" -- "$P" recompress --none "$bad_file" -o "$T/y.squizd"
grep -q "tensor model.embed_tokens.weight part data" "$T/err" && ok || bad "recompress message: $(head -c 300 "$T/err")"
expect 4 "evaluate a damaged part" -- "$V" -q --eval-ids "$T/ids.txt" --ctx 8 "$bad_file"
expect 4 "quantize from a damaged part" -- "$Q" "$bad_file" -s int8 -o "$T/q.squizd" -q
expect 4 "verify a window escape" -- "$V" "$D/reject-tca-tbe-window.squizd"
grep -q "(T5)" "$T/err" && ok || bad "T5 message: $(head -c 300 "$T/err")"

# ---- squish-bench --tca-tbe ----
expect 0 "bench --tca-tbe" -- "$BE" --tca-tbe "$TINY" -c bf16 -R 64 -C 256 --min-time 0.01 --flush-mib 1 -q -T 2
grep -q '^bf16+tca-tbe ' "$T/out" && grep -q 'GEMV.*x the bf16 GEMV' "$T/out" && ok || bad "bench: no bf16+tca-tbe row: $(head -c 600 "$T/out")"
grep -q '^TOTAL  *21 ' "$T/out" && grep -q '^self_attn.q_proj  *2 ' "$T/out" && ok || bad "bench: model table: $(cat "$T/out")"
expect 0 "bench --tca-tbe alone (no codec table)" -- "$BE" --tca-tbe "$TINY" --min-time 0.01 --flush-mib 1 -q
grep -q '^SCHEME' "$T/out" && bad "bench --tca-tbe alone printed the codec table" || ok
expect 2 "bench --tca-tbe with --gptq" -- "$BE" --tca-tbe "$TINY" --gptq 128
expect 2 "bench --tca-tbe with --trials" -- "$BE" --tca-tbe "$TINY" --trials 2 -m "$T/tbe.squizd"
expect 3 "bench --tca-tbe on a missing model" -- "$BE" --tca-tbe "$T/none" --min-time 0.01 --flush-mib 1 -q

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
