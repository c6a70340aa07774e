#!/usr/bin/env bash
# End-to-end tests of the command-line tools: the README's main job, exit
# codes on corrupt and crafted files, pipes, determinism across thread counts,
# no partial output on failure or SIGINT, quality gates, and every scheme on
# the real models in ../shared (skipped where ../shared is absent).
# usage: test_cli.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize I=$B/squish-inspect V=$B/squish-verify MK=$B/make-testdata
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

# ---- the main job: quantize, inspect, verify ----
expect 0 "quantize tiny" -- "$Q" "$TINY" -o "$T/t.squizd" --scheme int4:g128:asym --report "$T/r.json" -q
[ -s "$T/t.squizd" ] && ok || bad "no output file"
expect 0 "inspect text" -- "$I" "$T/t.squizd"
grep -q 'int4:g128:asym' "$T/out" && ok || bad "inspect does not show the scheme"
expect 0 "inspect json" -- "$I" --json "$T/t.squizd"
jq -e '.header.n_tensors == 21 and (.tensors | length) == 21 and .metadata.quantization.scheme == "int4:g128:asym"' "$T/out" >/dev/null && ok || bad "inspect --json content"
jq -e '[.tensors[].checksum] | all(. == "ok")' "$T/out" >/dev/null && ok || bad "checksums not all ok"
expect 0 "inspect one tensor" -- "$I" --tensor model.layers.0.mlp.down_proj.weight "$T/t.squizd"
grep -q '^zeros' "$T/out" && ok || bad "--tensor lacks the zeros part"
expect 2 "inspect unknown tensor" -- "$I" --tensor nope "$T/t.squizd"
expect 0 "verify" -- "$V" "$T/t.squizd"
expect 0 "verify with reference" -- "$V" --reference "$TINY" --min-cosine 0.98 "$T/t.squizd"
expect 1 "verify gate" -- "$V" --reference "$TINY" --min-cosine 0.9999 "$T/t.squizd"
expect 0 "verify json" -- "$V" --json --reference "$TINY" "$T/t.squizd"
jq -e '.status == "ok" and (.tensors | length) == 21' "$T/out" >/dev/null && ok || bad "verify --json content"
jq -e '(.tensors | length) == 21 and all(.tensors[]; .rmse >= 0)' "$T/r.json" >/dev/null && ok || bad "--report content"

# ---- perplexity and KLD over token ids (the tiny model against itself in bf16 = exact) ----
for i in $(seq 1 300); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
expect 0 "eval" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" -j "$T/t.squizd"
jq -e '.eval.windows == 4 and .eval.scored_tokens == 252 and .eval.kld_mean > 0 and .eval.top1_agreement > 0.5' "$T/out" >/dev/null && ok || bad "eval json: $(jq -c .eval "$T/out")"
# verification evaluates on the exact path unless --fast, and says which ran (perplexity within 1%)
cp "$T/out" "$T/exact-path.json"
expect 0 "eval --fast" -- "$V" --fast --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" -j "$T/t.squizd"
jq -e --slurpfile x "$T/exact-path.json" '$x[0].eval.path == "exact" and .eval.path == "fast" and
  (.eval.ppl / $x[0].eval.ppl - 1 | fabs) < 0.01' "$T/out" >/dev/null && ok || bad "eval path: $(jq -c .eval "$T/out")"
"$Q" "$TINY" -o "$T/exact.squizd" --scheme bf16 -q
expect 0 "eval exact" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" --max-kld 1e-9 -j "$T/exact.squizd"
jq -e '.eval.kld_mean < 1e-9 and .eval.top1_agreement == 1 and .eval.delta_ppl == 0' "$T/out" >/dev/null && ok || bad "bf16 file is not exact in eval"
expect 1 "ppl gate" -- "$V" -q --eval-ids "$T/ids.txt" --ctx 64 --max-ppl 1.5 "$T/t.squizd"
expect 2 "kld gate without reference" -- "$V" --eval-ids "$T/ids.txt" --max-kld 1 "$T/t.squizd"
# a threshold out of its range (or NaN) would make a gate that always or never fails: usage error
for g in "--min-cosine 2" "--min-cosine -1.5" "--min-cosine nan" "--max-rmse -1" "--max-abs -0.1" "--max-abs nan"; do
  # shellcheck disable=SC2086
  expect 2 "tensor gate $g" -- "$V" --reference "$TINY" $g "$T/t.squizd"
  grep -q -- "${g% *} needs" "$T/err" && ok || bad "tensor gate $g: message does not name the option: $(cat "$T/err")"
done
for g in "--max-kld -1" "--max-kld nan" "--max-ppl 0" "--max-ppl -3" "--max-ppl 0.5" "--max-ppl nan"; do
  # shellcheck disable=SC2086
  expect 2 "eval gate $g" -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" $g "$T/t.squizd"
  grep -q -- "${g% *} needs" "$T/err" && ok || bad "eval gate $g: message does not name the option: $(cat "$T/err")"
done
expect 2 "ctx too small" -- "$V" --eval-ids "$T/ids.txt" --ctx 1 "$T/t.squizd"
expect 2 "text shorter than a window" -- "$V" --eval-ids "$T/ids.txt" --ctx 400 "$T/t.squizd"
echo "1 2 99999" >"$T/badids.txt"
expect 4 "id outside the vocabulary" -- "$V" --eval-ids "$T/badids.txt" --ctx 2 "$T/t.squizd"

# ---- pipes: '-' for stdout and stdin; stdout stays clean ----
"$Q" "$TINY" -o - --scheme nf4 -q | "$I" - >"$T/out" 2>"$T/err" && grep -q nf4 "$T/out" && ok || bad "quantize | inspect -"
"$Q" "$TINY" -o - --scheme int8 -q | cmp -s - <("$Q" "$TINY" -o /dev/stdout --scheme int8 -q) && ok || bad "stdout output differs"
"$V" - <"$T/t.squizd" >/dev/null 2>&1 && ok || bad "verify from stdin"

# ---- determinism: byte-identical for 1, 2, 4 threads and across runs ----
for s in int4:g128:asym nf4:dq mxfp4 int3:g64:sym; do
  "$Q" "$TINY" -o "$T/d1.squizd" --scheme "$s" -T 1 -q && "$Q" "$TINY" -o "$T/d2.squizd" --scheme "$s" -T 2 -q &&
    "$Q" "$TINY" -o "$T/d4.squizd" --scheme "$s" --threads 4 -q && "$Q" "$TINY" -o "$T/d5.squizd" --scheme "$s" -T 4 -q
  cmp -s "$T/d1.squizd" "$T/d2.squizd" && cmp -s "$T/d1.squizd" "$T/d4.squizd" && cmp -s "$T/d4.squizd" "$T/d5.squizd" && ok ||
    bad "$s: output depends on thread count or run"
done

# ---- exit codes on bad files ----
size=$(stat -c %s "$T/t.squizd")
head -c $((size - 1)) "$T/t.squizd" >"$T/trunc.squizd"
expect 4 "truncated file" -- "$V" "$T/trunc.squizd"
grep -q 'trunc.squizd' "$T/err" && ok || bad "error does not name the file"
expect 4 "inspect truncated" -- "$I" "$T/trunc.squizd"
cp "$T/t.squizd" "$T/flip.squizd"
printf '\xff' | dd of="$T/flip.squizd" bs=1 seek=300 conv=notrunc status=none
expect 4 "flipped data byte" -- "$V" "$T/flip.squizd"
grep -q 'checksum mismatch' "$T/err" && ok || bad "flip not reported as checksum mismatch"
grep -q 'tensor model.embed_tokens.weight part data: checksum mismatch' "$T/err" && ok || bad "verify does not name the damaged tensor and part: $(cat "$T/err")"
expect 4 "inspect shows a MISMATCH and fails" -- "$I" "$T/flip.squizd"
grep -q 'model.embed_tokens.weight .*MISMATCH' "$T/out" && grep -q 'checksum MISMATCH in 1 tensor' "$T/err" && ok || bad "inspect MISMATCH output: $(cat "$T/err")"
expect 4 "inspect --json with a MISMATCH fails" -- "$I" --json "$T/flip.squizd"
jq -e '.tensors[0].checksum == "mismatch"' "$T/out" >/dev/null && ok || bad "inspect --json does not show the mismatch"
expect 4 "inspect --tensor with a MISMATCH fails" -- "$I" --tensor model.embed_tokens.weight "$T/flip.squizd"
expect 0 "inspect --tensor of an intact tensor" -- "$I" --tensor model.norm.weight "$T/flip.squizd"
expect 0 "inspect --no-checksums does not check" -- "$I" --no-checksums "$T/flip.squizd"
cp "$T/t.squizd" "$T/v2.squizd" && "$MK" patch "$T/v2.squizd" 4 0200
expect 5 "major version 2" -- "$V" "$T/v2.squizd"
expect 5 "inspect major version 2" -- "$I" "$T/v2.squizd"
cp "$T/t.squizd" "$T/inc.squizd" && "$MK" patch "$T/inc.squizd" 24 01000000
expect 5 "incompat flag" -- "$V" "$T/inc.squizd"
printf 'not a squizd file at all' >"$T/junk.squizd"
expect 4 "junk" -- "$V" "$T/junk.squizd"
: >"$T/empty.squizd"
expect 4 "empty file" -- "$V" "$T/empty.squizd"
expect 3 "missing file" -- "$V" "$T/nope.squizd"
expect 3 "a directory" -- "$V" "$T"
expect 2 "no arguments" -- "$V"
expect 2 "bad option" -- "$I" --frobnicate x
expect 2 "gate without reference" -- "$V" --min-cosine 0.5 "$T/t.squizd"
expect 2 "bad scheme" -- "$Q" "$TINY" -o "$T/x.squizd" --scheme int4:g100
expect 2 "bad rule" -- "$Q" "$TINY" -o "$T/x.squizd" --scheme int4 --rule '(=int8'
expect 0 "help" -- "$Q" --help
expect 0 "list schemes" -- "$Q" --list-schemes
[ ! -e "$T/x.squizd" ] && ok || bad "output left after a usage error"

# ---- rules and defaults ----
expect 0 "rules" -- "$Q" "$TINY" -o "$T/rules.squizd" --scheme int4 --rule 'mlp\.down_proj=int8:pc' --rule 'self_attn\.v=keep' --output-scheme nf4 -q
"$I" --json "$T/rules.squizd" >"$T/j.json"
jq -e '[.tensors[] | select(.name | test("down_proj")) | .scheme] | all(. == "int8:pc:sym")' "$T/j.json" >/dev/null && ok || bad "rule not applied"
jq -e '[.tensors[] | select(.name | test("v_proj")) | .codec] | all(. == "bf16")' "$T/j.json" >/dev/null && ok || bad "keep rule not applied"
jq -e '.tensors[] | select(.name == "lm_head.weight") | .codec == "nf4"' "$T/j.json" >/dev/null && ok || bad "--output-scheme"
jq -e '.tensors[] | select(.name == "model.embed_tokens.weight") | .codec == "bf16"' "$T/j.json" >/dev/null && ok || bad "embeddings not kept"
jq -e '[.tensors[] | select(.name | test("norm")) | .codec] | all(. == "bf16")' "$T/j.json" >/dev/null && ok || bad "norms not kept"
grep -q warning "$T/err" && bad "a warning for rules that apply: $(cat "$T/err")" || ok
# a rule that selects nothing is warned about (even with -q), naming it; the run still succeeds
expect 0 "idle rules" -- "$Q" "$TINY" -o "$T/rules.squizd" --scheme int4 --rule 'mlp\.nothing=int8' --rule 'down_proj=int8' --rule 'mlp\.down=nf4' -q
grep -qF "warning: --rule 'mlp\.nothing=int8' matches no tensor" "$T/err" && ok || bad "no warning for a rule that matches nothing: $(cat "$T/err")"
grep -qF "warning: --rule 'mlp\.down=nf4' applies to no tensor" "$T/err" && ok || bad "no warning for a shadowed rule: $(cat "$T/err")"
[ "$(grep -c warning "$T/err")" = 2 ] && ok || bad "idle rules: $(cat "$T/err")"

# ---- failures leave no output and keep an existing file ----
cp -r "$TINY" "$T/nanmodel"
hdr=$(od -An -tu8 -N8 "$T/nanmodel/model-00001-of-00002.safetensors" | tr -d ' ')
printf '\xc0\x7f' | dd of="$T/nanmodel/model-00001-of-00002.safetensors" bs=1 seek=$((8 + hdr + 1000)) conv=notrunc status=none
echo previous >"$T/keep.squizd"
expect 4 "NaN weight" -- "$Q" "$T/nanmodel" -o "$T/keep.squizd" --scheme int4 -q
grep -q 'NaN' "$T/err" && ok || bad "NaN not named: $(cat "$T/err")"
[ "$(cat "$T/keep.squizd")" = previous ] && ok || bad "existing output overwritten on failure"
ls "$T" | grep -q squish-tmp && bad "temporary file left behind" || ok
head -c 1000 "$TINY/model-00002-of-00002.safetensors" >"$T/nanmodel/model-00002-of-00002.safetensors"
expect 4 "truncated shard" -- "$Q" "$T/nanmodel" -o "$T/x.squizd" --scheme int4 -q
grep -q 'model-00002-of-00002' "$T/err" && ok || bad "truncated shard not named"
rm "$T/nanmodel/model-00002-of-00002.safetensors"
expect 3 "missing shard" -- "$Q" "$T/nanmodel" -o "$T/x.squizd" --scheme int4 -q
expect 3 "unwritable output dir" -- "$Q" "$TINY" -o "$T/no/such/dir/x.squizd" --scheme int4 -q
[ ! -e "$T/x.squizd" ] && ok || bad "partial output left"

# ---- man pages render without warnings ----
for m in "$S"/man/*.[15]; do
  w=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$m" 2>&1)
  [ -z "$w" ] && ok || bad "man page $m: $w"
done
# --help mentions every long option the man page documents for quantize
for opt in output scheme rule output-scheme report zstd threads quiet list-schemes method calib damp act-order static-groups awq-duo awq-no-clip shard no-bundle; do
  "$Q" --help | grep -q -- "--$opt" && sed 's/\\-/-/g' "$S/man/squish-quantize.1" | grep -q -- "--$opt" && ok || bad "--$opt missing from help or man page"
done
for opt in output max-size zstd none from add to requantize quiet; do
  "$B/squish-pack" --help | grep -q -- "--$opt" && sed 's/\\-/-/g' "$S/man/squish-pack.1" | grep -q -- "--$opt" && ok || bad "pack --$opt missing from help or man page"
done
for opt in text output samples seqlen seed tokenizer layers shard merge threads quiet; do
  "$B/squish-calibrate" --help | grep -q -- "--$opt" && sed 's/\\-/-/g' "$S/man/squish-calibrate.1" | grep -q -- "--$opt" && ok || bad "calibrate --$opt missing from help or man page"
done

# ---- docs match the code (checks generated from the sources, so they cannot go stale) ----
for m in "$S"/man/*.[1-9]; do
  grep -qF "$(basename "$m")" "$S/README.md" && ok || bad "README does not list the man page $(basename "$m")"
done
envdoc=$(for m in "$S"/man/*.[1-9]; do sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$m"; done)
vars=$(grep -rhoE 'getenv\("[A-Za-z_0-9]+"\)' "$S"/libformat "$S"/runtime "$S"/quant "$S"/calib "$S"/tools | sed -E 's/.*"(.*)".*/\1/' | sort -u)
[ -n "$vars" ] && ok || bad "no getenv() found in the sources"
for v in $vars; do
  grep -qw "$v" <<<"$envdoc" && ok || bad "$v is read by the code but is in no man page's ENVIRONMENT section"
done
for tv in quantize:TMPDIR pack:TMPDIR quantize:SQUISH_ISA verify:SQUISH_ISA calibrate:SQUISH_ISA bench:SQUISH_ISA; do
  sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$S/man/squish-${tv%%:*}.1" | grep -qw "${tv#*:}" && ok || bad "squish-${tv%%:*}.1: no ${tv#*:} in ENVIRONMENT"
done
# --tokenizer reads tokenizer.json, tokenizer.model and llama2.c tokenizer.bin: --help and man pages say so
for t in verify calibrate; do
  for kind in tokenizer.json tokenizer.model tokenizer.bin; do
    "$B/squish-$t" --help | grep -qF "$kind" && ok || bad "squish-$t --help does not name $kind"
    grep -qF "$kind" "$S/man/squish-$t.1" && ok || bad "squish-$t.1 does not name $kind"
  done
done
# --ctx sets the window of --eval as well as --eval-ids
"$V" --help | grep -qE -- '--ctx N .*--eval and --eval-ids' && ok || bad "squish-verify --help: --ctx does not mention --eval"
sed 's/\\-/-/g' "$S/man/squish-verify.1" | grep -A3 '^\.BI --ctx' | grep -q '^\.B --eval$' && ok || bad "squish-verify.1: --ctx does not mention --eval"

# wait_tmp NAME: until the writer's temporary file for NAME exists (at most 20 s)
wait_tmp() { for _ in $(seq 200); do ls "$T" | grep -q "^$1.squish-tmp-" && return 0; sleep 0.1; done; return 1; }

# ---- real models ----
if [ -n "${SQUISH_TEST_QUICK:-}" ]; then
  echo "skipped: real-model sweep (SQUISH_TEST_QUICK is set)" >&2
  skip=$((skip + 1))
elif [ -d "$SH/models" ]; then
  M=$SH/models/squish-lm-34m
  # SIGINT in the middle of a run: no output, no temporary file
  "$Q" "$M" -o "$T/int.squizd" --scheme int4 -T 1 -q & pid=$!
  wait_tmp int.squizd; kill -INT $pid; wait $pid; rc=$?
  if [ $rc -ne 0 ] && [ ! -e "$T/int.squizd" ] && ! ls "$T" | grep -q squish-tmp; then ok; else bad "SIGINT left output (rc $rc)"; fi
  # SIGKILL cannot be caught: the temporary file stays, named after the dead process, and the next run removes it
  "$Q" "$M" -o "$T/kill.squizd" --scheme int4 -T 1 -q & pid=$!
  wait_tmp kill.squizd; kill -KILL $pid; wait $pid 2>/dev/null
  left=$(ls "$T" | grep -c "kill.squizd.squish-tmp-$pid-")
  [ "$left" = 1 ] && [ ! -e "$T/kill.squizd" ] && ok || bad "after SIGKILL: $left temporary files, output exists: $([ -e "$T/kill.squizd" ] && echo yes)"
  "$Q" "$TINY" -o "$T/kill.squizd" --scheme int4 -q && ! ls "$T" | grep -q squish-tmp && ok || bad "stale temporary file not removed by the next run"
  # the README's peak-memory figure is what this build measures (not under a sanitizer, which adds its own memory)
  if [ ! -x /usr/bin/time ]; then
    echo "skipped: peak memory (/usr/bin/time is absent)" >&2; skip=$((skip + 1))
  elif grep -qa __asan_init "$Q"; then
    echo "skipped: peak memory (a sanitizer build)" >&2; skip=$((skip + 1))
  else
    doc=$(grep -oE 'Measured peak RSS: [0-9]+ MB' "$S/README.md" | grep -oE '[0-9]+')
    /usr/bin/time -f %M -o "$T/rss" "$Q" "$M" -o "$T/rss.squizd" -s int4:g128:asym -T 2 -q || bad "quantize for the peak memory"
    kb=$(tail -1 "$T/rss")
    [ -n "$doc" ] && awk -v kb="$kb" -v d="$doc" 'BEGIN { m = kb * 1024 / 1e6; exit !(m >= 0.85 * d && m <= 1.15 * d) }' && ok ||
      bad "peak RSS quantizing the 34M model: $kb KiB; README says ${doc:-nothing} MB"
  fi
  # every scheme, with the bound its precision predicts (minimum per-tensor cosine similarity)
  while read -r scheme mincos; do
    if "$Q" "$M" -o "$T/m.squizd" --scheme "$scheme" -q && "$V" -q --reference "$M" --min-cosine "$mincos" "$T/m.squizd" >/dev/null 2>"$T/err"; then ok; else bad "34M $scheme (min cosine $mincos): $(tail -2 "$T/err")"; fi
  done <<'EOF'
int8:pc:sym 0.9999
int8:g128:asym 0.9999
int4:g32:sym 0.995
int4:g128:sym 0.99
int4:g128:asym 0.993
int4:pc:asym 0.98
int3:g128:asym 0.97
int3:g64:sym 0.96
int2:g64:asym 0.88
int2:g32:sym 0.8
nf4 0.994
nf4:dq 0.994
fp8_e4m3 0.9995
fp8_e4m3:pt 0.9995
fp8_e5m2 0.998
fp6_e3m2 0.998
fp6_e2m3 0.9995
fp4_e2m1 0.993
mxfp8_e4m3 0.999
mxfp8_e5m2 0.998
mxfp6_e3m2 0.998
mxfp6_e2m3 0.999
mxfp4 0.99
f16 0.9999999
EOF
  # lossless schemes round-trip exactly
  for s in bf16 f32; do
    "$Q" "$M" -o "$T/m.squizd" --scheme "$s" -q && "$V" -q --reference "$M" --max-abs 0 "$T/m.squizd" && ok || bad "34M $s not exact"
  done
  # text evaluation: the tokenizer reproduces the golden ids, so --eval and --eval-ids agree
  "$Q" "$M" -o "$T/q4.squizd" --scheme int4:g128:asym -q
  a=$("$V" -q -j --reference "$M" --eval "$SH/data/wikitext-2-raw-test.head.txt" --windows 2 "$T/q4.squizd" | jq -c '[.eval.tokens, .eval.nll_sum, .eval.kld_mean]')
  b=$("$V" -q -j --reference "$M" --eval-ids "$SH/reference/ids/ids-34m-wikitext-2-raw-test.head.ids" --windows 2 "$T/q4.squizd" | jq -c '[.eval.tokens, .eval.nll_sum, .eval.kld_mean]')
  [ "$a" = "$b" ] && [ "$(echo "$a" | jq '.[0]')" = 61244 ] && ok || bad "--eval and --eval-ids differ: $a vs $b"
  "$V" -q --tokenizer "$M/tokenizer.json" --prompt "Once upon a time" --max-tokens 8 "$T/q4.squizd" >"$T/gen" && [ "$(wc -c <"$T/gen")" -gt 20 ] && ok || bad "--prompt"
  # the reference cache: written once, then read back with the same figures; another setting replaces it
  IDS=$SH/reference/ids/ids-34m-books-heldout.ids
  c1=$("$V" -q -j --reference "$M" --eval-ids "$IDS" --windows 2 --ref-logits "$T/ref.lp" "$T/q4.squizd" | jq -c '.eval | [.ppl, .ref_ppl, .kld_mean, .top1_agreement]')
  [ -s "$T/ref.lp" ] && ok || bad "no reference cache written"
  "$V" -j --reference "$M" --eval-ids "$IDS" --windows 2 --ref-logits "$T/ref.lp" "$T/q4.squizd" >"$T/c2.json" 2>"$T/c2.err"
  c2=$(jq -c '.eval | [.ppl, .ref_ppl, .kld_mean, .top1_agreement]' "$T/c2.json")
  [ "$c1" = "$c2" ] && grep -q "read from" "$T/c2.err" && ok || bad "cached reference: $c1 vs $c2 ($(cat "$T/c2.err"))"
  # a cache of more windows serves a shorter run unchanged, with the figures of a cache made for it
  h2=$(sha256sum <"$T/ref.lp")
  c3=$("$V" -j --reference "$M" --eval-ids "$IDS" --windows 1 --ref-logits "$T/ref.lp" "$T/q4.squizd" 2>"$T/c3.err" | jq -c '.eval | [.ppl, .kld_mean, .top1_agreement]')
  c4=$("$V" -q -j --reference "$M" --eval-ids "$IDS" --windows 1 --ref-logits "$T/ref1.lp" "$T/q4.squizd" | jq -c '.eval | [.ppl, .kld_mean, .top1_agreement]')
  [ "$c3" = "$c4" ] && grep -q "read from" "$T/c3.err" && [ "$(sha256sum <"$T/ref.lp")" = "$h2" ] && ok || bad "superset cache: $c3 vs $c4 ($(cat "$T/c3.err"))"
  # more windows than cached, or another setting: recomputed and replaced
  "$V" -j --reference "$M" --eval-ids "$IDS" --windows 2 --ref-logits "$T/ref1.lp" "$T/q4.squizd" 2>"$T/c5.err" >/dev/null
  grep -q "computed and cached" "$T/c5.err" && ok || bad "a cache of fewer windows was used"
  "$V" -j --reference "$M" --eval-ids "$IDS" --windows 1 --ctx 256 --ref-logits "$T/ref.lp" "$T/q4.squizd" 2>"$T/c6.err" >/dev/null
  grep -q "computed and cached" "$T/c6.err" && ok || bad "a stale reference cache was used"
  expect 2 "--ref-logits without --reference" -- "$V" --eval-ids "$IDS" --ref-logits "$T/ref.lp" "$T/q4.squizd"
  printf '\xff\xfe' >"$T/bad.txt"; : >"$T/empty.txt"
  expect 4 "invalid UTF-8" -- "$V" -q --tokenizer "$M/tokenizer.json" --eval "$T/bad.txt" "$T/q4.squizd"
  expect 2 "empty text" -- "$V" -q --tokenizer "$M/tokenizer.json" --eval "$T/empty.txt" "$T/q4.squizd"
  expect 2 "context longer than the model's" -- "$V" -q --tokenizer "$M/tokenizer.json" --eval "$SH/data/wikitext-2-raw-test.head.txt" --ctx 4096 "$T/q4.squizd"
  echo '{"model":{"type":"Unigram","vocab":[]},"pre_tokenizer":{"type":"Metaspace"}}' >"$T/tk.json"
  expect 5 "unsupported tokenizer type" -- "$V" -q --tokenizer "$T/tk.json" --eval "$SH/data/wikitext-2-raw-test.head.txt" "$T/q4.squizd"
  echo '{"model": ' >"$T/tk.json"
  expect 4 "bad tokenizer JSON" -- "$V" -q --tokenizer "$T/tk.json" --eval "$SH/data/wikitext-2-raw-test.head.txt" "$T/q4.squizd"
  "$Q" "$M" -o "$T/q4nb.squizd" --scheme int4 --no-bundle -q
  expect 2 "--eval without a tokenizer (--no-bundle)" -- "$V" -q --eval "$SH/data/wikitext-2-raw-test.head.txt" "$T/q4nb.squizd"
  grep -q "embedded tokenizer" "$T/err" && ok || bad "no-tokenizer message: $(cat "$T/err")"
  # SentencePiece model: the stories260K reference perplexity from raw text
  "$Q" "$SH/models/stories260K/hf" -o "$T/s32.squizd" --scheme f32 -q
  p=$("$V" -q -j --reference "$SH/models/stories260K/hf" --eval "$SH/data/tinystories-valid-excerpt.txt" --ctx 256 "$T/s32.squizd" | jq '.eval.ppl')
  awk -v p="$p" 'BEGIN { exit !(p > 5.7235 * 0.999 && p < 5.7235 * 1.001) }' && ok || bad "stories260K ppl from text: $p (transformers: 5.7235)"
  for src in "$SH/models/stories260K/stories260K.bin" "$SH/models/stories260K/hf"; do
    for s in int8 int4:g32:asym int3:g64:asym int2:g32:asym nf4:dq:g32 fp8_e5m2 fp6_e3m2 fp4_e2m1 mxfp8_e4m3 mxfp6_e2m3 mxfp4 f32; do
      "$Q" "$src" -o "$T/s.squizd" --scheme "$s" -q && "$V" -q --reference "$SH/models/stories260K/hf" --min-cosine 0.8 "$T/s.squizd" && ok ||
        bad "stories260K $s from $src"
    done
  done
  "$Q" "$SH/models/stories260K/stories260K.bin" -o "$T/s.squizd" --scheme f32 -q && "$V" -q --reference "$SH/models/stories260K/hf" --max-abs 0 "$T/s.squizd" && ok || bad "llama2.c f32 not exact against HF"
else
  echo "skipped: $SH/models is absent" >&2
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
