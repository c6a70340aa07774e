#!/usr/bin/env bash
# gemv-table.sh -- the CPU GEMV table of issue 21 in one command: for every scheme, shape,
# kernel path (SQUISH_ISA) and thread count, GEMV GB/s of stored bytes from cold caches and its
# share of the streaming-read bandwidth measured in the same squish-bench run, for the exact
# f32-activation kernel and the integer-activation (q8) kernel, and which of the two the
# runtime's decode uses. Each share is against a streaming read of the flush buffer on the same
# threads, timed in the same repetitions as the GEMV (best of each), so that a load that changes
# during the run moves both. Prints a markdown table on stdout (the raw squish-bench output goes
# to $OUT), then the rows below target (4-bit >= 85%, int8 >= 90%, 3/2-bit >= 70% of the same
# run's bandwidth, judged on the kernel the runtime uses).
#
#   scripts/gemv-table.sh                 every scheme below on the three shapes, avx512 and avx2
#
# Environment:
#   BUILD=build          squish build folder (squish-bench)
#   THREADS=$(nproc)     the all-threads column (1 thread is always measured)
#   SHAPES="4096x14336 14336x4096 8192x8192"   ROWSxCOLS
#   ISAS="avx512 avx2"   kernel paths (SQUISH_ISA); those the CPU lacks are skipped
#   SCHEMES="..."        comma-separated squish schemes (default: the list below)
#   MIN_TIME=0.05        seconds of GEMV timing per measurement (best call counts)
#   FLUSH_MIB=256        cache-flush buffer (make it several times the last-level cache)
#   OUT=/tmp/gemv-table  raw squish-bench outputs
# Not part of CI: figures depend on the machine's load (uptime is printed with the table).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
THREADS="${THREADS:-$(nproc)}"
SHAPES="${SHAPES:-4096x14336 14336x4096 8192x8192}"
ISAS="${ISAS:-avx512 avx2}"
SCHEMES="${SCHEMES:-int8:g32:sym,int8,int4:g32:sym,int4:g32:asym,int4:g64:asym,int4:g128:sym,int4:g128:asym,nf4,fp4_e2m1,mxfp4,int3,int2:g32:asym,int2:g32:sym,int2}"
MIN_TIME="${MIN_TIME:-0.05}"
FLUSH_MIB="${FLUSH_MIB:-256}"
OUT="${OUT:-${TMPDIR:-/tmp}/gemv-table}"
BENCH="$BUILD/squish-bench"

die() { echo "gemv-table: $*" >&2; exit 1; }
[[ -x "$BENCH" ]] || die "no squish-bench in $BUILD (build first)"
mkdir -p "$OUT"
has_flags() {
    local f flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done
}

echo "# GEMV table: squish $("$BENCH" --version | cut -d' ' -f2), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
echo "# load before: $(uptime | sed 's/.*load average/load average/')"
echo "# THREADS=$THREADS MIN_TIME=$MIN_TIME FLUSH_MIB=$FLUSH_MIB; raw outputs in $OUT"
echo
echo "| scheme | bpw | shape | isa | threads | read GB/s | exact GB/s | exact % | q8 GB/s | q8 % | runtime | target | met |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
short=""
for isa in $ISAS; do
    case "$isa" in
        avx512) has_flags avx512f avx512bw avx512vl avx512_vnni || { echo "# skipping avx512: not on this CPU" >&2; continue; } ;;
        avx2) has_flags avx2 fma f16c || { echo "# skipping avx2: not on this CPU" >&2; continue; } ;;
        portable) ;;
        *) die "unknown isa $isa (avx512, avx2, portable)" ;;
    esac
    for shape in $SHAPES; do
        rows="${shape%x*}" cols="${shape#*x}"
        raw="$OUT/$isa-$shape.txt"
        SQUISH_ISA="$isa" "$BENCH" -q -R "$rows" -C "$cols" -c "$SCHEMES" -T "$THREADS" --min-time "$MIN_TIME" \
            --flush-mib "$FLUSH_MIB" >"$raw" || die "squish-bench failed ($isa, $shape): see $raw"
        # SCHEME BPW ENC DEC GEMV RATIO Q8 RATIO GEMV_MT RATIO Q8_MT RATIO RT READ_GB/s READ_MT
        # (each ratio is against the streaming read timed in the same repetitions)
        while read -r name bpw _enc _dec g1 r1 q1 qr1 gn rn qn qrn rt bw1 bwn; do
            [[ "$name" == SCHEME || "$name" == \#* || -z "$name" ]] && continue
            case "$name" in
                int8*) target=90 ;;
                int3* | int2*) target=70 ;;
                *) target=85 ;;
            esac
            for th in 1 "$THREADS"; do
                if [[ "$th" == 1 ]]; then bw="$bw1" g="$g1" r="$r1" q="$q1" qr="$qr1"; else bw="$bwn" g="$gn" r="$rn" q="$qn" qr="$qrn"; fi
                [[ "$th" != 1 && "$THREADS" == 1 ]] && continue
                used="$r"
                [[ "$rt" == q8 ]] && used="$qr"
                met=yes
                [[ "${used%\%}" -ge "$target" ]] 2>/dev/null || met=NO
                [[ "$met" == NO ]] && short+="$name $shape $isa ${th}T: $used (runtime $rt) < $target%"$'\n'
                echo "| $name | $bpw | ${rows}x${cols} | $isa | $th | $bw | $g | $r | $q | $qr | $rt | $target% | $met |"
            done
        done <"$raw"
    done
done
echo
echo "# load after: $(uptime | sed 's/.*load average/load average/')"
if [[ -n "$short" ]]; then
    echo "# below target (on the kernel the runtime uses):"
    printf '%s' "$short" | sed 's/^/#   /'
else
    echo "# every row meets its target"
fi
