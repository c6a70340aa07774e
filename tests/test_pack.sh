#!/usr/bin/env bash
# squish-pack and sharded jobs end to end: N shards run with GNU parallel
# merge into the unsharded file byte for byte (quantize and calibrate);
# split sets open as one file; recompress keeps every tensor; bundle ->
# export -> import gives the bundle back byte for byte; models read from
# tar/zip/tar.zst archives; hostile archives and shard sets are refused.
# usage: test_pack.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
P=$B/squish-pack Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect C=$B/squish-calibrate
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

# ---- sharded quantization: 3 shards with GNU parallel, merged == whole ----
for scheme in int4:g64:asym "nf4 --zstd 5"; do
  # shellcheck disable=SC2086
  "$Q" "$TINY" -o "$T/whole.squizd" -s $scheme -q || bad "whole run ($scheme)"
  # shellcheck disable=SC2086
  parallel --halt now,fail=1 "$Q" "$TINY" -o "$T/part{}.squizd" -s $scheme --shard {}/3 -q ::: 1 2 3 || bad "parallel shards ($scheme)"
  expect 0 "merge ($scheme)" -- "$P" merge "$T/part3.squizd" "$T/part1.squizd" "$T/part2.squizd" -o "$T/merged.squizd"
  cmp -s "$T/whole.squizd" "$T/merged.squizd" && ok || bad "merged shards differ from the unsharded file ($scheme)"
done
expect 2 "merge with a shard missing" -- "$P" merge "$T/part1.squizd" "$T/part2.squizd" -o "$T/x.squizd"
expect 2 "merge a shard twice" -- "$P" merge "$T/part1.squizd" "$T/part1.squizd" "$T/part2.squizd" -o "$T/x.squizd"
expect 2 "merge a whole file" -- "$P" merge "$T/whole.squizd" -o "$T/x.squizd"
"$Q" "$TINY" -o "$T/other2.squizd" -s int8 --shard 2/3 -q
expect 2 "merge shards of different runs" -- "$P" merge "$T/part1.squizd" "$T/other2.squizd" "$T/part3.squizd" -o "$T/x.squizd"
grep -q "disagree" "$T/err" && ok || bad "different-run message: $(cat "$T/err")"
[ ! -e "$T/x.squizd" ] && ok || bad "a refused merge left an output"

# ---- split sets ----
"$Q" "$TINY" -o "$T/w.squizd" -s int8 -q
expect 0 "split" -- "$P" split --max-size 256K "$T/w.squizd" -o "$T/sp.squizd"
n=$(ls "$T" | grep -c '^sp-0000[0-9]-of-0000[0-9].squizd$')
[ "$n" -gt 1 ] && ok || bad "split made $n pieces"
first=$(ls "$T"/sp-00001-of-*.squizd)
expect 0 "verify the split set as one file" -- "$V" --reference "$TINY" --min-cosine 0.999 "$first"
cmp -s <(cat "$T"/sp-*.squizd) "$T/w.squizd" && ok || bad "pieces do not concatenate to the file"
"$I" --json "$first" | jq -e '.header.n_tensors == 21' >/dev/null && ok || bad "inspect of the split set"
mv "$T/sp-00002-of-0000$n.squizd" "$T/hidden"
expect 3 "split set with a piece missing" -- "$I" "$first"
grep -q "piece 2 of $n" "$T/err" && ok || bad "missing-piece message: $(cat "$T/err")"
mv "$T/hidden" "$T/sp-00002-of-0000$n.squizd"
truncate -s 1000 "$T/sp-00002-of-0000$n.squizd"
expect 4 "split set with a short piece" -- "$I" "$first"
expect 2 "split below 64 KiB" -- "$P" split --max-size 1000 "$T/w.squizd" -o "$T/sp2.squizd"

# ---- recompress ----
expect 0 "recompress zstd" -- "$P" recompress --zstd 12 "$T/w.squizd" -o "$T/z.squizd"
expect 0 "verify recompressed" -- "$V" "$T/z.squizd"
"$I" --json "$T/z.squizd" | jq -e '.header.flag_names | index("ZSTD")' >/dev/null && ok || bad "no ZSTD flag after recompress"
[ "$(stat -c %s "$T/z.squizd")" -lt "$(stat -c %s "$T/w.squizd")" ] && ok || bad "recompressed file is not smaller"
expect 0 "recompress none" -- "$P" recompress --none "$T/z.squizd" -o "$T/raw.squizd"
"$V" -q --reference "$TINY" --min-cosine 0.999 "$T/raw.squizd" && ok || bad "recompress round trip changed tensors"
expect 2 "recompress without a mode" -- "$P" recompress "$T/w.squizd" -o "$T/x.squizd"

# ---- an option that does not apply to the subcommand is refused, naming both (each command
# line is otherwise valid: the option used to be ignored silently) ----
"$P" export --to tar "$T/w.squizd" -o "$T/w.tar" -q || bad "export for the option tests"
while read -r cmd opt args; do
  # shellcheck disable=SC2086
  expect 2 "$cmd $opt" -- "$P" $cmd $opt $args -o "$T/x.squizd"
  grep -q -- "${opt%%=*} does not apply to $cmd" "$T/err" && ok || bad "$cmd $opt: $(cat "$T/err")"
  [ ! -e "$T/x.squizd" ] && ok || bad "$cmd $opt left an output"
done <<EOF
merge --zstd=3 $T/part1.squizd $T/part2.squizd $T/part3.squizd
split --from=$TINY --max-size 256K $T/w.squizd
recompress --max-size=1M --zstd 3 $T/w.squizd
bundle --to=tar --add $TINY/config.json $T/w.squizd
export --add=$TINY/config.json --to tar $T/w.squizd
import --none $T/w.tar
EOF
expect 2 "an unknown option" -- "$P" merge -n 3 "$T/w.squizd" -o "$T/x.squizd"
grep -q "merge: unknown option '-n'" "$T/err" && ok || bad "unknown option message: $(cat "$T/err")"

# ---- models from archives ----
tar -C "$S/testdata" -cf "$T/tiny.tar" tiny-llama
tar -C "$S/testdata" -c tiny-llama | zstd -q >"$T/tiny.tar.zst"
(cd "$TINY" && zip -q -r "$T/tiny.zip" .)
for a in tiny.tar tiny.tar.zst tiny.zip; do
  "$Q" "$T/$a" -o "$T/a.squizd" -s int8 -q && cmp -s <("$I" --json "$T/a.squizd" | jq -c '.tensors') <("$I" --json "$T/w.squizd" | jq -c '.tensors') &&
    ok || bad "quantizing from $a differs from the directory"
done
head -c 20000 "$T/tiny.tar" >"$T/cut.tar"
expect 4 "truncated archive" -- "$Q" "$T/cut.tar" -o "$T/x.squizd" -s int8 -q
mkdir -p "$T/evil"; echo '{}' >"$T/evil/config.json"
tar -C "$T/evil" -cf "$T/evil.tar" --transform 's,^,../,' config.json 2>/dev/null
expect 4 "archive member leaving the directory" -- "$Q" "$T/evil.tar" -o "$T/x.squizd" -s int8 -q
echo "not an archive" >"$T/junk.tar"
expect 4 "not an archive" -- "$Q" "$T/junk.tar" -o "$T/x.squizd" -s int8 -q

# ---- on the real models: bundle -> export -> import, split -> open, recompress -> verify, sharded calibration ----
if [ -n "${SQUISH_TEST_QUICK:-}" ]; then
  echo "skipped: real-model round trips (SQUISH_TEST_QUICK is set)" >&2
  skip=$((skip + 1))
elif [ -d "$SH/models" ]; then
  M=$SH/models/squish-lm-34m
  "$Q" "$M" -o "$T/m.squizd" -s int4:g128:asym -q || bad "quantize 34M"
  expect 0 "bundle" -- "$P" bundle --from "$M" "$T/m.squizd" -o "$T/mb.squizd"
  "$I" --json "$T/mb.squizd" | jq -e '.header.n_appendix == 4' >/dev/null && ok || bad "bundle does not hold 4 files"
  for to in tar tar.zst zip; do
    "$P" export --to $to "$T/mb.squizd" -o "$T/mb.$to" && "$P" import "$T/mb.$to" -o "$T/back.squizd" &&
      cmp -s "$T/mb.squizd" "$T/back.squizd" && ok || bad "bundle -> export $to -> import is not the bundle"
  done
  # the bundle's embedded tokenizer serves --eval and --prompt away from the model directory, as --tokenizer does
  mkdir -p "$T/away" && cp "$T/mb.squizd" "$T/away/"
  TXT=$SH/data/wikitext-2-raw-test.head.txt
  a=$("$V" -q -j --eval "$TXT" --windows 1 "$T/away/mb.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
  b=$("$V" -q -j --tokenizer "$M/tokenizer.json" --eval "$TXT" --windows 1 "$T/away/mb.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
  [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "embedded tokenizer.json: --eval gives '$a', with --tokenizer '$b'"
  a=$("$V" -q --prompt "Once upon a time" --max-tokens 8 "$T/away/mb.squizd")
  b=$("$V" -q --tokenizer "$M/tokenizer.json" --prompt "Once upon a time" --max-tokens 8 "$T/away/mb.squizd")
  [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "embedded tokenizer.json: --prompt gives '$a', with --tokenizer '$b'"
  # SentencePiece tokenizer.model and llama2.c tokenizer.bin (stories260K), embedded and given with --tokenizer
  S2=$SH/models/stories260K
  "$Q" "$S2/hf" -o "$T/s.squizd" -s int8 -q || bad "quantize stories260K"
  cp "$S2/tok512.bin" "$T/tokenizer.bin"
  "$P" bundle --from "$S2/hf" "$T/s.squizd" -o "$T/away/s-model.squizd" -q || bad "bundle stories260K tokenizer.model"
  "$P" bundle --add "$T/tokenizer.bin" "$T/s.squizd" -o "$T/away/s-bin.squizd" -q || bad "bundle stories260K tokenizer.bin"
  TXT=$SH/data/tinystories-valid-excerpt.txt
  for kind in model bin; do
    a=$("$V" -q -j --eval "$TXT" --ctx 256 --windows 8 "$T/away/s-$kind.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
    b=$("$V" -q -j --tokenizer "$S2/tok512.$kind" --eval "$TXT" --ctx 256 --windows 8 "$T/away/s-$kind.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "embedded tokenizer.$kind: --eval gives '$a', with --tokenizer tok512.$kind '$b'"
    a=$("$V" -q --prompt "Once upon a time" --max-tokens 8 "$T/away/s-$kind.squizd")
    b=$("$V" -q --tokenizer "$S2/tok512.$kind" --prompt "Once upon a time" --max-tokens 8 "$T/away/s-$kind.squizd")
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "embedded tokenizer.$kind: --prompt gives '$a', with --tokenizer '$b'"
  done
  # the two SentencePiece forms tokenize alike
  a=$("$V" -q -j --tokenizer "$S2/tok512.model" --eval "$TXT" --ctx 256 --windows 8 "$T/s.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
  b=$("$V" -q -j --tokenizer "$S2/tok512.bin" --eval "$TXT" --ctx 256 --windows 8 "$T/s.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
  [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "tok512.model gives '$a', tok512.bin '$b'"
  tar -tf "$T/mb.tar" | sort | tr '\n' ' ' | grep -q '^config.json generation_config.json model.squizd tokenizer.json tokenizer_config.json $' &&
    ok || bad "exported archive members: $(tar -tf "$T/mb.tar" | tr '\n' ' ')"
  (cd "$SH/models" && tar -cf - squish-lm-34m | zstd -q -1 >"$T/m34.tar.zst")
  expect 0 "import a packed model directory" -- "$P" import "$T/m34.tar.zst" -o "$T/imp.squizd"
  expect 0 "imported model equals the source" -- "$V" --reference "$M" --max-abs 0 "$T/imp.squizd"
  expect 0 "split 34M" -- "$P" split --max-size 8M "$T/mb.squizd" -o "$T/msp.squizd"
  expect 0 "verify the 34M split set" -- "$V" --reference "$M" --min-cosine 0.99 "$(ls "$T"/msp-00001-of-*.squizd)"
  expect 0 "recompress 34M" -- "$P" recompress --zstd 3 "$T/mb.squizd" -o "$T/mz.squizd"
  expect 0 "verify recompressed 34M" -- "$V" --reference "$M" --min-cosine 0.99 "$T/mz.squizd"
  # sharded calibration with GNU parallel merges to the unsharded file
  CAL=(-t "$SH/data/calib-books.txt" -n 4 -L 128 -q)
  "$C" "$M" "${CAL[@]}" -o "$T/cw.h5" -T 2 || bad "calibrate 34M"
  parallel --halt now,fail=1 "$C" "$M" -t "$SH/data/calib-books.txt" -n 4 -L 128 -q --shard {}/3 -o "$T/c{}.h5" -T 1 ::: 1 2 3 ||
    bad "parallel calibration shards"
  "$C" --merge "$T/c1.h5" "$T/c2.h5" "$T/c3.h5" -o "$T/cm.h5" && cmp -s "$T/cw.h5" "$T/cm.h5" && ok ||
    bad "merged calibration shards differ from the unsharded file"
  # sharded GPTQ merges to the unsharded GPTQ file
  "$Q" "$M" -o "$T/gw.squizd" -s int4:g128:asym --method gptq --calib "$T/cw.h5" -q || bad "gptq whole"
  parallel --halt now,fail=1 "$Q" "$M" -o "$T/g{}.squizd" -s int4:g128:asym --method gptq --calib "$T/cw.h5" --shard {}/3 -q -T 1 ::: 1 2 3 ||
    bad "gptq shards"
  "$P" merge "$T/g1.squizd" "$T/g2.squizd" "$T/g3.squizd" -o "$T/gm.squizd" && cmp -s "$T/gw.squizd" "$T/gm.squizd" && ok ||
    bad "merged GPTQ shards differ from the unsharded file"
else
  echo "skipped: $SH/models is absent" >&2
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
