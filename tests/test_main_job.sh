#!/usr/bin/env bash
# The main job (scripts/main-job.sh) on the shipped stories260K, with the
# tools of this build: it quantizes, prints size and bits per weight that
# match the file, verifies, measures perplexity and KL-divergence against
# the source within sane bounds, and continues a prompt. The .squizd is
# self-contained: away from testdata it evaluates with its embedded
# tokenizer exactly as with the tokenizer file given, and the embedded file
# comes back byte for byte through squish-pack export. Same inputs, same
# bytes. A model without a tokenizer (tiny-llama) gets the job without the
# text steps.
# usage: test_main_job.sh BUILD_DIR SOURCE_DIR
set -u
B=$1 S=$2
V=$B/squish-verify I=$B/squish-inspect P=$B/squish-pack
. "$(dirname "$0")/testlib.sh"
D=$S/testdata/stories260K
export SQUISH_MAIN_JOB_BUILD=$B

expect 0 "main job" -- "$S/scripts/main-job.sh" "" "" "$T/mj.squizd"
cat "$T/out" "$T/err" >"$T/log"
bpw=$("$I" --json "$T/mj.squizd" | jq '.header.avg_bpw * 1000 | round / 1000')
size=$(stat -c %s "$T/mj.squizd")
grep -q "$T/mj.squizd: $size bytes for 260032 weights: $bpw bits per weight" "$T/log" && ok ||
  bad "size line does not match the file ($size bytes, $bpw bpw): $(grep 'bits per weight' "$T/log")"
awk -v b="$bpw" 'BEGIN { exit !(b > 5 && b < 6) }' && ok || bad "int4:g32:asym + int8 embeddings: $bpw bits per weight"
grep -q "bundled: tok512.bin (6227 B)" "$T/log" && ok || bad "the tokenizer is not listed as bundled"
grep -q "mj.squizd: ok, 47 tensors; lowest cosine similarity 0.99" "$T/log" && ok || bad "verify line: $(grep 'cosine' "$T/log")"
# quality: the 4-bit file is worse than the source, but not by much (measured: 5.9997 vs 5.5335, KLD 0.0996)
line=$(grep '^reference ppl' "$T/log")
ppl=$(grep '^ppl' "$T/log" | awk '{print $2}')
ref=$(echo "$line" | awk '{print $3}' | tr -d ,)
kld=$(echo "$line" | sed 's/.*KLD mean \([0-9.e-]*\).*/\1/')
awk -v p="$ppl" -v r="$ref" -v k="$kld" 'BEGIN { exit !(r > 5 && r < 6.5 && p > r && p < r * 1.15 && k > 0.01 && k < 0.2) }' && ok ||
  bad "ppl '$ppl', reference '$ref', KLD '$kld' outside the expected ranges"
cont=$(grep '^Once upon a time' "$T/log")
[ "$(echo "$cont" | wc -w)" -gt 15 ] && ok || bad "no greedy continuation: '$cont'"

# self-contained: away from testdata, the embedded tokenizer serves --eval as the file does
mkdir -p "$T/away" && cp "$T/mj.squizd" "$T/away/"
a=$("$V" -q -j --eval "$D/tinystories-valid-excerpt.txt" --ctx 256 "$T/away/mj.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
b=$("$V" -q -j --tokenizer "$D/tok512.bin" --eval "$D/tinystories-valid-excerpt.txt" --ctx 256 "$T/away/mj.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "embedded tokenizer gives '$a', the file '$b'"
"$P" export --to tar "$T/mj.squizd" -o "$T/mj.tar" -q && mkdir -p "$T/x" && tar -C "$T/x" -xf "$T/mj.tar" &&
  cmp -s "$T/x/tok512.bin" "$D/tok512.bin" && ok || bad "the embedded tok512.bin does not come back byte for byte"
"$I" --json "$T/mj.squizd" | jq -r '.bundled[0].sha256' | grep -qx "$(sha256sum "$D/tok512.bin" | cut -c1-64)" && ok ||
  bad "inspect's sha256 of the bundled tokenizer is not the file's"
# deterministic: the job's quantization again, on one thread, writes the same bytes
"$B/squish-quantize" "$D/stories260K.bin" -o "$T/mj2.squizd" --scheme int4:g32:asym --rule embed_tokens=int8:g32:sym -T 1 -q &&
  cmp -s "$T/mj.squizd" "$T/mj2.squizd" && ok || bad "the job's quantization with one thread wrote other bytes"
# a model without a tokenizer: the job runs, the text steps are skipped with a note
expect 0 "main job on tiny-llama" -- "$S/scripts/main-job.sh" "$S/testdata/tiny-llama" int4:g64:asym "$T/tiny.squizd"
grep -q "no tokenizer bundled" "$T/err" && ok || bad "tiny-llama: $(tail -3 "$T/err")"

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
