#!/usr/bin/env bash
# squish-bench --trials: the shape and consistency of its report, not its
# timings. Every file gets --trials samples and one peak-RSS figure per
# round; the JSON's percentiles are those of its own samples (recomputed
# here, linear between ranks); TTFT percentiles rise and decode-rate ones
# fall from P50 to P99; sizes are the files' sizes; the table shows the
# JSON's figures; GGUF files run through the peer's llama-bench when it is
# there; bad option combinations are usage errors.
# usage: test_bench_trials.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize BE=$B/squish-bench
TINY=$S/testdata/tiny-llama
PEER=$SH/peer/llama.cpp-c392e509
. "$(dirname "$0")/testlib.sh"

"$Q" "$TINY" -o "$T/a.squizd" -s int4:g64:asym -q || bad "quantize a"
"$Q" "$TINY" -o "$T/b.squizd" -s int8 -q || bad "quantize b"
SMALL=(--n-prompt 16 --n-gen 8 -T 1 -q)

# ---- usage ----
expect 2 "--trials 0" -- "$BE" --trials 0 -m "$T/a.squizd"
expect 2 "--rounds above --trials" -- "$BE" --trials 2 --rounds 3 -m "$T/a.squizd"
expect 2 "--rounds without --trials" -- "$BE" --rounds 2 -m "$T/a.squizd"
expect 2 "--json without --trials" -- "$BE" --json "$T/x.json" -m "$T/a.squizd"
expect 2 "--trials without a model" -- "$BE" --trials 2
expect 2 "--trials with --codecs" -- "$BE" --trials 2 -m "$T/a.squizd" --codecs int8
printf 'GGUF\3\0\0\0' >"$T/fake.gguf"
expect 2 "a GGUF without --trials" -- "$BE" -m "$T/fake.gguf" --codecs int8 -R 64 -C 64
grep -q "fake.gguf: GGUF files are timed with --trials" "$T/err" && ok || bad "GGUF message: $(cat "$T/err")"
expect 2 "a GGUF and no llama-bench" -- "$BE" --trials 1 -m "$T/fake.gguf" --llama-bench "$T/nowhere" "${SMALL[@]}"
grep -q "llama-bench: .*nowhere" "$T/err" && ok || bad "llama-bench message: $(cat "$T/err")"

# ---- the report: two .squizd files, 5 trials in 2 rounds ----
expect 0 "trials" -- "$BE" --trials 5 --rounds 2 -m "$T/a.squizd" -m "$T/b.squizd" --json "$T/t.json" "${SMALL[@]}"
cp "$T/out" "$T/table"
check_report() { # JSON TRIALS ROUNDS
  python3 - "$@" <<'EOF'
import json, math, os, sys
r = json.load(open(sys.argv[1])); trials, rounds = int(sys.argv[2]), int(sys.argv[3])
def pct(v, p):
    v = sorted(v); h = (len(v) - 1) * p / 100; lo = math.floor(h)
    return v[-1] if lo + 1 >= len(v) else v[lo] + (h - lo) * (v[lo + 1] - v[lo])
def close(a, b): return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
errs = []
assert r["schema"] == "squish-bench-trials/1" and r["trials"] == trials and r["rounds"] == rounds, r
for f in r["files"]:
    n = f["file"]
    if len(f["ttft_ms"]) != trials or len(f["decode_tok_s"]) != trials: errs.append(f"{n}: sample counts")
    if len(f["peak_rss_kib"]) != rounds or min(f["peak_rss_kib"]) <= 0: errs.append(f"{n}: peak RSS per round")
    if f["size_bytes"] != os.path.getsize(n): errs.append(f"{n}: size")
    if min(f["ttft_ms"]) <= 0 or min(f["decode_tok_s"]) <= 0: errs.append(f"{n}: non-positive samples")
    t, d = f["ttft_ms_pct"], f["decode_tok_s_pct"]
    for q in (50, 95, 99):
        if not close(t[f"p{q}"], pct(f["ttft_ms"], q)): errs.append(f"{n}: ttft p{q}")
        if not close(d[f"p{q}"], pct(f["decode_tok_s"], 100 - q)): errs.append(f"{n}: decode p{q}")
    if not (t["p50"] <= t["p95"] <= t["p99"]) or not (d["p50"] >= d["p95"] >= d["p99"]): errs.append(f"{n}: percentile order")
    if not close(f["peak_rss_mib"], max(f["peak_rss_kib"]) / 1024): errs.append(f"{n}: peak RSS")
    print(n, f["runtime"], f["label"], "%.2f" % t["p50"], "%.1f" % d["p50"], "%.1f" % f["peak_rss_mib"])
if errs: sys.exit("; ".join(errs))
EOF
}
check_report "$T/t.json" 5 2 >"$T/rows" && ok || bad "report inconsistent: $(tail -2 "$T/rows")"
grep -q "^$T/a.squizd squish int4:g64:asym " "$T/rows" && grep -q "^$T/b.squizd squish int8:pc:sym " "$T/rows" && ok ||
  bad "runtime/label: $(cat "$T/rows")"
# the table shows the JSON's P50s and peak RSS
while read -r file rt label ttft dec rss; do
  awk -v f="$file" -v t="$ttft" -v d="$dec" -v r="$rss" '$1 == f { found = 1; ok = ($5 == t && $8 == d && $11 == r) }
    END { exit !(found && ok) }' "$T/table" && ok || bad "table row of $file: $(grep -F "$file" "$T/table")"
done <"$T/rows"
[ "$(grep -c '^/' "$T/table")" = 2 ] && grep -q "^FILE .*TTFT_P50 .*DEC_P99 .*RSS_MiB" "$T/table" && ok || bad "table shape: $(cat "$T/table")"
expect 0 "--json -" -- "$BE" --trials 1 -m "$T/a.squizd" --json - "${SMALL[@]}"
jq -e '.files | length == 1' "$T/out" >/dev/null && ok || bad "--json - is not JSON alone: $(head -c 300 "$T/out")"

# ---- next to llama.cpp's GGUF Q4_K_M, when the peer bundle is here ----
GG=$PEER/gguf/squish-lm-34m-Q4_K_M.gguf
if [ -f "$GG" ] && { [ -x "$PEER/bin-avx2/llama-bench" ] && grep -qw avx2 /proc/cpuinfo; }; then
  expect 0 "trials with llama-bench" -- "$BE" --trials 2 --rounds 1 -m "$T/a.squizd" -m "$GG" --llama-bench "$PEER" \
    --json "$T/g.json" "${SMALL[@]}"
  check_report "$T/g.json" 2 1 >"$T/rows" && ok || bad "report with llama.cpp inconsistent: $(tail -2 "$T/rows")"
  grep -q "^$GG llama.cpp Q4_K-Medium " "$T/rows" && ok || bad "llama.cpp row: $(cat "$T/rows")"
  grep -q "^# llama-bench: $PEER/bin-avx" "$T/out" && ok || bad "the table does not name the llama-bench used"
else
  echo "note: $PEER (llama-bench, GGUF Q4_K_M) is absent or cannot run here: the llama.cpp case is skipped"
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
