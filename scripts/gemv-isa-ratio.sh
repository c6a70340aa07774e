#!/usr/bin/env bash
# gemv-isa-ratio.sh -- AVX2 against AVX-512 GEMV speed per scheme (issue 21: AVX2 paths within
# 20% of AVX-512), measured in one run. First the kernels' own speed: tests/measure_kernels times
# each ISA's kernels on a cache-resident matrix in thread CPU time (a loaded machine's time
# slicing stays out), rounds alternating the ISAs. Then squish-bench (wall time) per SHAPES,
# rounds alternating SQUISH_ISA=avx512 and avx2 on the same matrix, so a load that changes
# during the run moves both. For each scheme it prints the best single-thread GB/s of each
# path, exact (f32 activations) and q8 (int8 activations), and AVX2 / AVX-512 (1.00 = as
# fast; issue target >= 0.80).
#
#   scripts/gemv-isa-ratio.sh
#
# Environment:
#   BUILD=build        squish build folder (squish-bench)
#   SCHEMES="..."      comma-separated schemes (default: the list below)
#   SHAPES="4096x4096:256"   squish-bench's ROWSxCOLS:FLUSH_MIB (the flush buffer is read
#                      before each GEMV: make it several times the last-level cache for a cold read)
#   HOT="256 4096"     measure_kernels' ROWS COLS (empty: skip it)
#   ROUNDS=3           rounds of (avx512, avx2); best of the rounds counts
#   MIN_TIME=0.1       seconds of GEMV timing per scheme and round
#   OUT=/tmp/gemv-isa-ratio   raw squish-bench outputs
# Not part of CI: figures depend on the machine's load (uptime is printed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
SCHEMES="${SCHEMES:-int4:g32:sym,int4:g32:asym,int4:g64:sym,int4:g64:asym,int4:g128:sym,int4:g128:asym,int8:g32:sym,int8,int3,int3:g64,int2:g32:asym,int2,mxfp4,fp4_e2m1,nf4}"
SHAPES="${SHAPES:-4096x4096:256}"
HOT="${HOT-256 4096}"
ROUNDS="${ROUNDS:-3}"
MIN_TIME="${MIN_TIME:-0.1}"
OUT="${OUT:-${TMPDIR:-/tmp}/gemv-isa-ratio}"
BENCH="$BUILD/squish-bench"
[[ -x "$BENCH" ]] || { echo "gemv-isa-ratio: no squish-bench in $BUILD (build first)" >&2; exit 1; }
mkdir -p "$OUT"
echo "# AVX2 / AVX-512 GEMV, 1 thread; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# load before: $(uptime | sed 's/.*load average/load average/'); ROUNDS=$ROUNDS MIN_TIME=$MIN_TIME"
if [[ -n "$HOT" ]]; then
    [[ -x "$BUILD/tests/measure_kernels" ]] || { echo "gemv-isa-ratio: no tests/measure_kernels in $BUILD" >&2; exit 1; }
    echo
    echo "## kernels, cache-resident"
    # shellcheck disable=SC2086
    "$BUILD/tests/measure_kernels" $HOT "$((ROUNDS * 2))" "$SCHEMES"
fi
for shape in $SHAPES; do
    rc="${shape%%:*}" flush="${shape##*:}" rows="${rc%%x*}" cols="${rc##*x}"
    for r in $(seq "$ROUNDS"); do
        for isa in avx512 avx2; do
            SQUISH_ISA=$isa "$BENCH" -R "$rows" -C "$cols" -c "$SCHEMES" -T 1 --min-time "$MIN_TIME" \
                --flush-mib "$flush" >"$OUT/$rc-$isa-$r.txt" 2>/dev/null
        done
    done
    echo
    echo "## $rc, flush $flush MiB"
    echo "| scheme | exact avx512 GB/s | exact avx2 GB/s | exact avx2/avx512 | q8 avx512 GB/s | q8 avx2 GB/s | q8 avx2/avx512 |"
    echo "|---|---|---|---|---|---|---|"
    # columns: SCHEME BPW ENC DEC GEMV_GB/s RATIO Q8_GB/s ...; best of the rounds per scheme and isa
    awk -v rc="$rc" '
        FNR == 1 { isa = FILENAME ~ /-avx2-/ ? "avx2" : "avx512" }
        /^#|^SCHEME/ { next }
        NF >= 7 {
            k = $1; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
            if ($5 + 0 > g[k, isa]) g[k, isa] = $5 + 0
            if ($7 != "-" && $7 + 0 > q[k, isa]) q[k, isa] = $7 + 0
        }
        END {
            for (i = 1; i <= n; i++) {
                k = order[i]
                qa = q[k, "avx512"] > 0 ? sprintf("%.2f | %.2f | %.2f", q[k, "avx512"], q[k, "avx2"], q[k, "avx2"] / q[k, "avx512"]) : "- | - | -"
                printf "| %s | %.2f | %.2f | %.2f | %s |\n", k, g[k, "avx512"], g[k, "avx2"], g[k, "avx2"] / g[k, "avx512"], qa
            }
        }' "$OUT/$rc"-avx*-*.txt
done
echo
echo "# load after: $(uptime | sed 's/.*load average/load average/')"
