#!/usr/bin/env bash
# squish-bench --rd (issue 20, item 5) on the tiny model: two targets and
# one scheme quantized and measured; the table's bpw within the allocator's
# 0.02 of each target and equal to what squish-inspect counts in the kept
# files; every KLD finite, positive and equal to squish-verify's on the
# same file (the same evaluation path); KLD falling from target 2.5 to 4 to
# int8; TSV and JSON agreeing; reference points from JSON files in
# llama.cpp's and ik_llama.cpp's layouts drawn and labelled (XML-escaped);
# the SVG rendered by rsvg-convert to a non-empty PNG and byte-identical
# at 1 and 2 threads; the temporary folder removed; bad input refused with
# its name in the message and no output left.
# usage: test_rd_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
C=$B/squish-calibrate BE=$B/squish-bench V=$B/squish-verify I=$B/squish-inspect
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

need_shared_models "the calibration text and tokenizer come from there"
if ! command -v rsvg-convert >/dev/null; then
  echo "FAIL: rsvg-convert is missing (librsvg2-bin; scripts/deps.sh installs it)" >&2
  exit 1
fi
expect 0 "calibrate tiny" -- "$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$SH/models/stories260K/tok512.model" -n 6 -L 64 -q -o "$T/cal.h5"
for i in $(seq 1 300); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
# reference points in the two peers' layouts: entries by name, or under "types"; null or missing figures skipped
cat >"$T/peer.json" <<'EOF'
{"F32": {"kld_mean": null, "bpw_repeating_matrices": 32.0},
 "Q4_K_M": {"kld_mean": 0.05, "bpw_repeating_matrices": 4.8, "bpw_computed_all_tensors": 4.99},
 "Q3_K<&>": {"kld_mean": 0.2, "bpw_repeating_matrices": 3.4},
 "Q2_K": {"kld_mean": 0.5, "bpw_repeating_matrices": 2.93}}
EOF
cat >"$T/ik.json" <<'EOF'
{"what": "figures", "cross_check": {"Q4_K_M": {"kld_mean": 0.02}},
 "types": {"IQ4_K": {"kld_mean": 0.04, "bpw_all": 4.8, "bpw_repeating_matrices": 4.54}, "IQ2_KT": {"kld_mean": 0.4}}}
EOF
CANDS=int2:g64:asym,int3:g64:asym,int4:g64:asym,int8
RD=(--rd "$TINY" --calib "$T/cal.h5" --target-bpw 2.5,4 --codecs int8 --candidates $CANDS --eval-ids "$T/ids.txt" --ctx 64
    --points "$T/peer.json" --points "$T/ik.json")
mkdir -p "$T/tmp"

# ---- the sweep at 1 thread, files kept; at 2 threads in a temporary folder ----
expect 0 "rd, 1 thread" -- "$BE" "${RD[@]}" --json "$T/r1.json" --tsv "$T/r1.tsv" --svg "$T/r1.svg" --keep "$T/keep" -T 1 -q
cp "$T/out" "$T/table1.txt"
# (the sanitizer run, SQUISH_TEST_QUICK, skips the repeat at 2 threads that the release run checks)
if [ -z "${SQUISH_TEST_QUICK:-}" ]; then
  TMPDIR=$T/tmp expect 0 "rd, 2 threads" -- "$BE" "${RD[@]}" --json "$T/r2.json" --tsv "$T/r2.tsv" --svg "$T/r2.svg" -T 2 -q
  cmp -s "$T/r1.svg" "$T/r2.svg" && ok || bad "the SVG differs between 1 and 2 threads"
  cmp -s "$T/r1.tsv" "$T/r2.tsv" && ok || bad "the TSV differs between 1 and 2 threads"
  [ -z "$(ls -A "$T/tmp")" ] && ok || bad "the temporary folder was left: $(ls -R "$T/tmp" | head -5)"
fi

# ---- the table: 3 rows, bpw within 0.02 of the targets and as inspect counts them ----
col() { awk -F'\t' -v r="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next } $1 == r { print $h[c] }' "$T/r1.tsv"; }
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
[ "$(wc -l <"$T/r1.tsv")" = 4 ] && ok || bad "TSV rows: $(cat "$T/r1.tsv")"
grep -q '^target=2.5 ' "$T/table1.txt" && grep -q '^int8:pc:sym ' "$T/table1.txt" && ok || bad "stdout table: $(cat "$T/table1.txt")"
MAT='layers\.[0-9]+\.(self_attn|mlp)\.'
for x in 2.5 4; do
  got=$(col target=$x bpw)
  within "$got" $x 0.02 && ok || bad "target $x: table bpw $got"
  f=$(ls "$T/keep"/rd-0?-target-$x.squizd 2>/dev/null | head -1)
  if [ -n "$f" ]; then
    ins=$("$I" --json "$f" | jq --arg re "$MAT" '[.tensors[] | select(.name | test($re))] | (map(.bytes) | add) * 8 / (map(.elements) | add)')
    within "$ins" "$got" 1e-5 && ok || bad "target $x: inspect counts $ins bpw, the table $got"
  else
    bad "target $x: no kept file in $T/keep: $(ls "$T/keep")"
  fi
done
jq -e 'all(.points[] | select(.kind == "target"); (.bpw - .allocator_achieved_bpw) | fabs < 1e-12)' "$T/r1.json" >/dev/null && ok ||
  bad "table bpw differs from the allocator's: $(jq -c '[.points[] | {label, bpw, allocator_achieved_bpw}]' "$T/r1.json")"

# ---- KLD: finite, positive, falling with bpw; the same as squish-verify on the same file (both
# read the reference's log-probabilities through a --ref-logits cache, stored as f16) ----
k25=$(col target=2.5 kld_mean) k4=$(col target=4 kld_mean) k8=$(col int8:pc:sym kld_mean)
awk -v a="$k25" -v b="$k4" -v c="$k8" 'BEGIN { exit !(a + 0 > b + 0 && b + 0 > c + 0 && c + 0 > 0 && a + 0 < 1e30) }' && ok ||
  bad "KLD does not fall with bpw: target 2.5 $k25, target 4 $k4, int8 $k8"
jq -e '[.points[] | .kld_mean, .kld_p99, .ppl] | all(type == "number" and . > 0)' "$T/r1.json" >/dev/null && ok || bad "non-finite figures in the JSON"
for f in "$T/keep"/rd-0?-*.squizd; do
  lab=$(basename "$f" .squizd | sed 's/^rd-0[0-9]-//; s/^target-/target=/')
  "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" --ref-logits "$T/v.cache" -j -q "$f" >"$T/v.json" 2>"$T/err" || bad "verify $f: $(head -c 300 "$T/err")"
  jq -e --arg l "$lab" --slurpfile r "$T/r1.json" '.eval.kld_mean == ($r[0].points[] | select(.label == $l) | .kld_mean)' "$T/v.json" \
    >/dev/null && ok || bad "$lab: squish-verify KLD $(jq .eval.kld_mean "$T/v.json"), the sweep's $(jq --arg l "$lab" '.points[] | select(.label == $l) | .kld_mean' "$T/r1.json")"
done
jq -e --rawfile t "$T/r1.tsv" '. as $r | ($t | split("\n") | .[1:] | map(select(length > 0) | split("\t"))) as $rows |
       ($rows | length) == ($r.points | length) and
       all(range(0; $rows | length); . as $i | $r.points[$i].label == $rows[$i][0] and
           (($r.points[$i].kld_mean - ($rows[$i][8] | tonumber)) | fabs) <= 1e-6 * $r.points[$i].kld_mean)' "$T/r1.json" >/dev/null && ok ||
  bad "the TSV and the JSON disagree"
jq -e '.reference_points == [{"file": $a, "name": "peer", "points": 3, "skipped": 1}, {"file": $b, "name": "ik", "points": 1, "skipped": 1}]' \
  --arg a "$T/peer.json" --arg b "$T/ik.json" "$T/r1.json" >/dev/null && ok || bad "reference points: $(jq -c .reference_points "$T/r1.json")"

# ---- the plot: rendered, every series and label there, escaped ----
rsvg-convert "$T/r1.svg" -o "$T/r1.png" 2>"$T/err" && ok || bad "rsvg-convert: $(head -c 300 "$T/err")"
[ -s "$T/r1.png" ] && [ "$(head -c 8 "$T/r1.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && ok || bad "no PNG from the SVG"
for s in '>squish --target-bpw<' '>squish schemes<' '>peer<' '>ik<' '>Q4_K_M<' '>Q3_K&lt;&amp;&gt;<' '>IQ4_K<' '>2.5<' '>int8:pc:sym<'; do
  grep -qF -- "$s" "$T/r1.svg" && ok || bad "the SVG lacks $s"
done
! grep -q '>F32<\|>IQ2_KT<' "$T/r1.svg" && ok || bad "entries without figures were drawn"
[ "$(grep -c '<polyline' "$T/r1.svg")" = 1 ] && ok || bad "the targets' line: $(grep -c '<polyline' "$T/r1.svg") polylines"

# ---- an earlier sweep's JSON as reference points; a bpw range that leaves int8 out ----
TMPDIR=$T/tmp expect 0 "rd, scheme only, earlier points" -- "$BE" --rd "$TINY" --codecs int4:g64:asym --eval-ids "$T/ids.txt" --ctx 64 \
  --points "$T/r1.json" --plot-bpw 2:5 --svg "$T/r3.svg" -q
grep -qF '>target=2.5<' "$T/r3.svg" && grep -qF '>r1<' "$T/r3.svg" && ! grep -qF '>int8:pc:sym<' "$T/r3.svg" && ok ||
  bad "earlier points or --plot-bpw: $(grep -o '>[^<]*<' "$T/r3.svg" | tr '\n' ' ' | head -c 400)"
rsvg-convert "$T/r3.svg" -o "$T/r3.png" && [ -s "$T/r3.png" ] && ok || bad "rsvg-convert r3"
[ -z "$(ls -A "$T/tmp")" ] && ok || bad "the temporary folder was left: $(ls -R "$T/tmp" | head -5)"

# ---- refusals: clear errors naming the cause, no output files, no temporary folder left ----
printf '{"Q4_K_M": {"kld_mean": 0.1,' >"$T/broken.json"
echo '{"a": 1, "b": {"kld_mean": "x"}}' >"$T/empty.json"
refuse() { # CODE WHAT PATTERN ARGS...
  local code=$1 what=$2 pat=$3; shift 3
  rm -f "$T/no.json" "$T/no.tsv" "$T/no.svg"
  TMPDIR=$T/tmp expect "$code" "$what" -- "$BE" "$@" --json "$T/no.json" --tsv "$T/no.tsv" --svg "$T/no.svg" -q
  grep -qF -- "$pat" "$T/err" && ok || bad "$what: stderr lacks '$pat': $(head -c 300 "$T/err")"
  [ ! -e "$T/no.json" ] && [ ! -e "$T/no.tsv" ] && [ ! -e "$T/no.svg" ] && ok || bad "$what left an output file"
  [ -z "$(ls -A "$T/tmp")" ] && ok || bad "$what left $(ls "$T/tmp")"
}
BASE=(--rd "$TINY" --eval-ids "$T/ids.txt" --ctx 64)
refuse 2 "bad JSON" "$T/broken.json: not valid JSON" "${BASE[@]}" --codecs int8 --points "$T/broken.json"
refuse 2 "no usable point" "$T/empty.json: no entry has a number" "${BASE[@]}" --codecs int8 --points "$T/empty.json"
refuse 3 "missing points file" "$T/none.json" "${BASE[@]}" --codecs int8 --points "$T/none.json"
refuse 2 "target below the cheapest mix" "below the cheapest mix" "${BASE[@]}" --calib "$T/cal.h5" --target-bpw 1.5 --candidates $CANDS
refuse 2 "no --eval-ids" "needs --eval-ids" --rd "$TINY" --codecs int8
refuse 2 "target without --calib" "needs --calib" "${BASE[@]}" --target-bpw 3
refuse 2 "nothing to run" "needs --target-bpw LIST or --codecs LIST" "${BASE[@]}"
refuse 2 "bad scheme" "int5" "${BASE[@]}" --codecs int5
refuse 2 "bad target list" "--target-bpw needs" "${BASE[@]}" --target-bpw 3,x --calib "$T/cal.h5"
refuse 2 "rd option without --rd" "go with --rd" --codecs int8 --svg "$T/x.svg"
refuse 2 "bad --plot-bpw" "--plot-bpw needs" "${BASE[@]}" --codecs int8 --plot-bpw 5:3

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
