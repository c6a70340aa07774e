#!/usr/bin/env bash
# Options every tool shares and squish-bench's: -T 0 means all cores,
# squish-bench has -V and -q, checks every option (schemes, --model files)
# before it runs anything and documents its exit codes; every man page of a
# tool that writes files says an existing output is replaced only on success.
# usage: test_options.sh BUILD_DIR SOURCE_DIR
set -u
B=$1 S=$2
Q=$B/squish-quantize V=$B/squish-verify C=$B/squish-calibrate BE=$B/squish-bench
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

# ---- -T 0: all cores, the same bytes as any other thread count ----
expect 0 "quantize -T 0" -- "$Q" "$TINY" -o "$T/t0.squizd" -s int4 -q -T 0
"$Q" "$TINY" -o "$T/t1.squizd" -s int4 -q -T 1
cmp -s "$T/t0.squizd" "$T/t1.squizd" && ok || bad "-T 0 changed the output"
expect 0 "verify -T 0" -- "$V" -q -T 0 --reference "$TINY" "$T/t0.squizd"
expect 0 "bench -T 0" -- "$BE" -R 64 -C 64 --min-time 0.01 --flush-mib 1 -c int8 -q -T 0
for tool in "$Q" "$V" "$C" "$BE"; do
  for bad in -1 1025 x ''; do
    expect 2 "$(basename "$tool") -T '$bad'" -- "$tool" -T "$bad" x
    grep -q -- '--threads needs 0..1024' "$T/err" && ok || bad "$(basename "$tool") -T '$bad': refused for another reason: $(head -c 200 "$T/err")"
  done
  "$tool" --help | grep -q -- '0: all cores' && ok || bad "$(basename "$tool") --help does not document -T 0"
done
for m in quantize verify calibrate bench; do
  grep -q 'T 0' "$S/man/squish-$m.1" && ok || bad "squish-$m.1 does not document -T 0"
done

# ---- squish-bench: -V, -q, exit codes, options checked before anything runs ----
expect 0 "bench -V" -- "$BE" -V
grep -qx "squish-bench [0-9.]*" "$T/out" && ok || bad "bench -V printed '$(cat "$T/out")'"
expect 0 "bench --version" -- "$BE" --version
"$BE" --help | grep -q '^Exit status: 0 ok, 2 usage' && ok || bad "bench --help lacks the exit codes"
grep -q '^\.SH EXIT STATUS' "$S/man/squish-bench.1" && ok || bad "squish-bench.1 lacks EXIT STATUS"
for opt in quiet version; do
  "$BE" --help | grep -q -- "--$opt" && sed 's/\\-/-/g' "$S/man/squish-bench.1" | grep -q -- "--$opt" && ok || bad "bench --$opt missing from help or man page"
done
# a bad scheme, a fractional size, a missing model: refused before the
# bandwidth measurement (nothing on stdout), with the documented codes
B1=(-R 64 -C 64 --min-time 0.01 --flush-mib 1)
expect 2 "bench -c unknown" -- "$BE" "${B1[@]}" -c int8,nosuch
[ ! -s "$T/out" ] && ok || bad "bench ran before refusing -c nosuch: $(head -2 "$T/out")"
grep -q 'nosuch' "$T/err" && ok || bad "bench -c error does not name the scheme: $(cat "$T/err")"
expect 2 "bench -c int4:g100" -- "$BE" "${B1[@]}" -c int4:g100
[ ! -s "$T/out" ] && ok || bad "bench ran before refusing -c int4:g100"
expect 2 "bench -c ''" -- "$BE" "${B1[@]}" -c ,
expect 2 "bench -R 1.5" -- "$BE" -R 1.5 -C 64 --min-time 0.01 --flush-mib 1 -c int8
expect 2 "bench --ctx 9.5" -- "$BE" "${B1[@]}" -c int8 --ctx 9.5
expect 2 "bench --gptq 200.5" -- "$BE" --gptq 200.5
expect 2 "bench --gptq with --codecs" -- "$BE" --gptq 128 -c int8
expect 2 "bench stray argument" -- "$BE" "${B1[@]}" -c int8 extra
expect 3 "bench -m missing" -- "$BE" "${B1[@]}" -c int8 -m "$T/nope.squizd"
[ ! -s "$T/out" ] && ok || bad "bench ran before refusing a missing --model"
printf 'not a squizd file' >"$T/junk.squizd"
expect 4 "bench -m junk" -- "$BE" "${B1[@]}" -c int8 -m "$T/junk.squizd"
[ ! -s "$T/out" ] && ok || bad "bench ran before refusing a corrupt --model"
expect 0 "bench -m tiny" -- "$BE" "${B1[@]}" -c int8 -m "$T/t0.squizd" --ctx 16 -q
grep -q 't0.squizd' "$T/out" && ok || bad "bench -m did not time the model"
# --no-exact: the default path only, the EXACT_* columns printed as -
awk '$1 ~ /t0.squizd$/ && $6 + 0 > 0 && $7 + 0 > 0 { ok = 1 } END { exit !ok }' "$T/out" && ok || bad "bench -m: no EXACT_* figures: $(grep t0.squizd "$T/out")"
expect 0 "bench -m --no-exact" -- "$BE" "${B1[@]}" -c int8 -m "$T/t0.squizd" --ctx 16 --no-exact -q
awk '$1 ~ /t0.squizd$/ && $4 + 0 > 0 && $5 + 0 > 0 && $6 == "-" && $7 == "-" { ok = 1 } END { exit !ok }' "$T/out" && ok ||
  bad "bench -m --no-exact: $(grep t0.squizd "$T/out")"
"$BE" --help | grep -q -- "--no-exact" && sed 's/\\-/-/g' "$S/man/squish-bench.1" | grep -q -- "--no-exact" && ok || bad "bench --no-exact missing from help or man page"

# ---- overwrite: documented for every tool that writes files ----
for m in quantize calibrate pack verify; do
  tr '\n' ' ' <"$S/man/squish-$m.1" | grep -q 'replaced only when' && ok || bad "squish-$m.1 does not say when an existing output is replaced"
done

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
