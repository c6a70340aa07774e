#!/usr/bin/env bash
# The .squizd conformance vectors (testdata/squizd-vectors): make-vectors
# regenerates them byte for byte; squish-verify and squish-inspect give each
# the exit status its MANIFEST line states (and verify names what is wrong);
# every valid file loads and runs in the runtime; the zstd, TCA-TBE, bundle
# and split examples are what squish-pack recompress, bundle and split write.
# usage: test_vectors.sh BUILD_DIR SOURCE_DIR
set -u
B=$1 S=$2
V=$B/squish-verify I=$B/squish-inspect P=$B/squish-pack
D=$S/testdata/squizd-vectors
. "$(dirname "$0")/testlib.sh"

# ---- the committed files are the generator's output ----
"$B/make-vectors" "$S/testdata/tiny-llama" "$T/gen" && diff -r "$D" "$T/gen" >"$T/diff" && ok ||
  bad "testdata/squizd-vectors differs from make-vectors' output (rerun: make-vectors testdata/tiny-llama testdata/squizd-vectors): $(head -c 300 "$T/diff")"

# ---- every file gives its exit status, for the rule it names ----
for i in $(seq 1 100); do echo $(( (i * 7 + 3) % 16 )); done >"$T/ids.txt"
n=0
while IFS=$'\t' read -r file verify inspect rule match what; do
  case $file in '#'*|'') continue ;; esac
  n=$((n + 1))
  expect "$verify" "verify $file ($rule: $what)" -- "$V" "$D/$file"
  if [ "$match" != - ]; then
    grep -qF -- "$match" "$T/err" && ok || bad "verify $file: message lacks '$match': $(head -c 300 "$T/err")"
    grep -qF -- "$D/$file" "$T/err" && ok || bad "verify $file: message does not name the file"
    grep -q 1844674407370955 "$T/err" && bad "verify $file prints a zstd error code as a size: $(cat "$T/err")" || ok
  fi
  expect "$inspect" "inspect $file ($rule: $what)" -- "$I" "$D/$file"
  if [ "$verify" = 0 ]; then # valid: every tensor decodes and the model runs
    expect 0 "run $file" -- "$V" -q -j --eval-ids "$T/ids.txt" --ctx 16 "$D/$file"
    jq -e '.status == "ok" and (.eval.ppl | isfinite)' "$T/out" >/dev/null && ok || bad "eval of $file: $(head -c 200 "$T/out")"
  fi
done <"$D/MANIFEST"
[ "$n" -ge 50 ] && ok || bad "MANIFEST lists only $n files"

# ---- the examples are what squish-pack writes ----
expect 0 "recompress" -- "$P" recompress --zstd 3 "$D/valid-mixed.squizd" -o "$T/z.squizd"
cmp -s "$T/z.squizd" "$D/valid-zstd.squizd" && ok || bad "recompress --zstd 3 of valid-mixed is not valid-zstd"
expect 0 "recompress --tca-tbe" -- "$P" recompress --tca-tbe "$D/valid-mixed.squizd" -o "$T/t.squizd"
cmp -s "$T/t.squizd" "$D/valid-tca-tbe.squizd" && ok || bad "recompress --tca-tbe of valid-mixed is not valid-tca-tbe"
expect 0 "recompress --none of the TCA-TBE file" -- "$P" recompress --none "$D/valid-tca-tbe.squizd" -o "$T/n.squizd"
cmp -s "$T/n.squizd" "$D/valid-mixed.squizd" && ok || bad "recompress --none of valid-tca-tbe is not valid-mixed (lossless)"
mkdir "$T/files"
"$P" export --to tar "$D/valid-bundle.squizd" -o "$T/b.tar" -q && tar -C "$T/files" -xf "$T/b.tar" && ok || bad "export the bundle"
expect 0 "bundle" -- "$P" bundle --add "$T/files/config.json" --add "$T/files/README.md" "$D/valid-mixed.squizd" -o "$T/b.squizd"
cmp -s "$T/b.squizd" "$D/valid-bundle.squizd" && ok || bad "bundle of valid-mixed is not valid-bundle"
cat "$D"/valid-split-0000[12]-of-00002.squizd >"$T/joined.squizd"
expect 0 "the split set joined verifies" -- "$V" "$T/joined.squizd"
expect 0 "split" -- "$P" split --max-size 64K "$T/joined.squizd" -o "$T/valid-split.squizd"
for k in 1 2; do
  cmp -s "$T/valid-split-0000$k-of-00002.squizd" "$D/valid-split-0000$k-of-00002.squizd" && ok || bad "split piece $k differs"
done
# a file smaller than the pieces: a set of one piece, the file itself (spec §10: N >= 1)
expect 0 "split into one piece" -- "$P" split --max-size 64K "$D/valid-mixed.squizd" -o "$T/valid-single.squizd"
[ "$(ls "$T" | grep -c '^valid-single-')" = 1 ] && cmp -s "$T/valid-single-00001-of-00001.squizd" "$D/valid-single-00001-of-00001.squizd" &&
  ok || bad "split of a small file is not one piece named -00001-of-00001"

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
