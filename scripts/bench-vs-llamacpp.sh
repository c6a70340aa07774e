#!/usr/bin/env bash
# bench-vs-llamacpp.sh -- squish's runtime against llama.cpp (and ik_llama.cpp where it is
# built) on squish-lm-34m, side by side in one run: prefill of 512 tokens and decode of 128,
# interleaved round by round, with the squish/peer ratio of each pair.
#
#   scripts/bench-vs-llamacpp.sh            make the squish files (once) and run ROUNDS rounds
#
# Pairs (squish file <-> GGUF of the same class; the squish files are whole-model quantized,
# embeddings and output layer quantized as the GGUF has them, so sizes compare):
#   Q8_0    int8:g32:sym, embeddings int8:g32:sym, output int8:g32:sym
#   Q4_0    int4:g32:sym, embeddings int4:g32:sym, output int8:g32:sym   (GGUF output: q6_K)
#   Q4_K_M  int4:g64:asym, embeddings int4:g64:asym, output int8:g32:sym (GGUF: q4_K / q6_K)
#   Q2_K    int2:g32:asym, embeddings int2:g32:asym, output int4:g32:sym  (GGUF: q2_K / q6_K)
# With ik_llama.cpp built (../shared/peer/ik_llama.cpp-8337e4cd/ik.sh bin names a folder holding
# llama-bench) it runs on the same GGUFs (second ratio column) and on its IQ4_KS when that GGUF
# exists (ik.sh gguf IQ4_KS makes it), against the int4:g32:sym file.
#
# Environment:
#   BUILD=build        squish build folder (squish-quantize, squish-bench)
#   SHARED=../shared   the shared folder (models, peer)
#   OUT=/tmp/squish-vs-llamacpp   where the squish files are made (kept; remade when missing)
#   SQUISH_FILES="Q8_0=F ..."     use these squish files instead of making them
#   PAIRS="Q8_0 Q4_0 Q4_K_M Q2_K" which pairs to run
#   THREADS=2  ROUNDS=3  BIN=auto|avx512|avx2 (llama.cpp binary set, as the peer's bench.sh picks it)
#   SQUISH_BENCH_ARGS  extra arguments for squish-bench
#   BASE_BUILD=DIR     also run DIR/squish-bench (an earlier build) in each round, on the same squish
#                      files, shown as "base" columns: before/after figures from one run
# squish-bench times both of the runtime's paths; "squish" is the default (fast kernels), "exact"
# the exact f32-activation path that squish-verify --eval runs, shown as a last ratio column.
# Not part of CI: it takes minutes and its figures depend on the machine's load.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
SHARED="${SHARED:-$ROOT/../shared}"
OUT="${OUT:-${TMPDIR:-/tmp}/squish-vs-llamacpp}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
BIN="${BIN:-auto}"
PAIRS="${PAIRS:-Q8_0 Q4_0 Q4_K_M Q2_K}"
MODEL="$SHARED/models/squish-lm-34m"
LC="$SHARED/peer/llama.cpp-c392e509"
IK="$SHARED/peer/ik_llama.cpp-8337e4cd"

die() { echo "bench-vs-llamacpp: $*" >&2; exit 1; }
has_flags() {
    local f flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done
}
if [[ "$BIN" == auto ]]; then # the avx512 set is built with all of these (see the peer's README)
    if has_flags avx512f avx512_vnni avx512cd avx512vl avx512dq avx512bw avx512_bf16; then BIN=avx512; else BIN=avx2; fi
fi
LLAMA_BENCH="$LC/bin-$BIN/llama-bench"
[[ -x "$LLAMA_BENCH" ]] || die "no llama-bench at $LLAMA_BENCH"
[[ -x "$BUILD/squish-bench" && -x "$BUILD/squish-quantize" ]] || die "no squish-bench/squish-quantize in $BUILD (build first)"
IK_BENCH=""
if [[ -x "$IK/ik.sh" ]]; then
    d="$("$IK/ik.sh" bin 2>/dev/null || true)"
    [[ -n "$d" && -x "$d/llama-bench" ]] && IK_BENCH="$d/llama-bench"
fi
IK_IQ4KS="${OUTDIR:-${TMPDIR:-/tmp}/ik-gguf}/squish-lm-34m-IQ4_KS.gguf"

# class -> squish scheme, embeddings scheme, output scheme
scheme_of() {
    case "$1" in
        Q8_0) echo "int8:g32:sym int8:g32:sym int8:g32:sym" ;;
        Q4_0) echo "int4:g32:sym int4:g32:sym int8:g32:sym" ;;
        Q4_K_M) echo "int4:g64:asym int4:g64:asym int8:g32:sym" ;;
        Q2_K) echo "int2:g32:asym int2:g32:asym int4:g32:sym" ;;
        *) die "unknown pair $1 (Q8_0, Q4_0, Q4_K_M, Q2_K)" ;;
    esac
}
declare -A SQF
for kv in ${SQUISH_FILES:-}; do SQF["${kv%%=*}"]="${kv#*=}"; done
mkdir -p "$OUT"
for p in $PAIRS; do
    [[ -f "$LC/gguf/squish-lm-34m-$p.gguf" ]] || die "no GGUF $LC/gguf/squish-lm-34m-$p.gguf"
    [[ -n "${SQF[$p]:-}" ]] && continue
    read -r s e o <<<"$(scheme_of "$p")"
    f="$OUT/squish-lm-34m-${s//:/-}.squizd"
    if [[ ! -s "$f" ]]; then
        echo "# making $f: -s $s, embeddings $e, output $o" >&2
        "$BUILD/squish-quantize" "$MODEL" -o "$f" -s "$s" --rule "embed_tokens=$e" --output-scheme "$o" -q -T "$THREADS" \
            || die "squish-quantize failed for $p"
    fi
    SQF[$p]="$f"
done

RAW="$OUT/raw-$$.tsv" # pair runtime test round tokens/s
: >"$RAW"
# squish-bench -m: one prefill of 512 and 128 decode steps; a tiny codec table is required by the
# tool, so give it one that takes a moment.
run_squish() { # pair file round [build label]
    local o b="${4:-$BUILD}" label="${5:-squish}"
    o="$("$b/squish-bench" -c int8 -R 64 -C 64 --min-time 0.01 --flush-mib 8 -T "$THREADS" --ctx 512 \
        ${SQUISH_BENCH_ARGS:-} -m "$2" 2>/dev/null)" || die "squish-bench failed on $2"
    awk -v pair="$1" -v r="$3" -v f="$2" -v label="$label" '
        $1 == "FILE" { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == f && ("PREFILL_TOK/s" in col) {
            print pair "\t" label "\tpp512\t" r "\t" $(col["PREFILL_TOK/s"])
            print pair "\t" label "\ttg128\t" r "\t" $(col["DECODE_TOK/s"])
            if (label == "squish" && ("EXACT_PREFILL" in col)) {
                print pair "\texact\tpp512\t" r "\t" $(col["EXACT_PREFILL"])
                print pair "\texact\ttg128\t" r "\t" $(col["EXACT_DECODE"])
            }
        }' <<<"$o" >>"$RAW"
}
run_llama() { # pair runtime binary gguf round
    local o
    o="$("$3" -m "$4" -p 512 -n 128 -t "$THREADS" -r 1 -o json 2>/dev/null)" || die "$3 failed on $4"
    awk -v pair="$1" -v rt="$2" -v r="$5" '
        function val(line) { sub(/^[^:]*: */, "", line); sub(/,$/, "", line); gsub(/"/, "", line); return line }
        /"n_prompt":/ { np = val($0) }
        /"n_gen":/ { ng = val($0) }
        /"avg_ts":/ { ts = val($0) }
        /^  \}/ { print pair "\t" rt "\t" (np > 0 ? "pp512" : "tg128") "\t" r "\t" ts }' <<<"$o" >>"$RAW"
}

echo "# bench-vs-llamacpp: squish $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), llama.cpp c392e509 bin-$BIN," \
     "ik_llama.cpp ${IK_BENCH:-not built}; threads $THREADS, $ROUNDS interleaved rounds; base: ${BASE_BUILD:-none}"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cpus online;" \
     "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for p in $PAIRS; do echo "# $p: ${SQF[$p]} ($(stat -c %s "${SQF[$p]}") B) vs squish-lm-34m-$p.gguf ($(stat -c %s "$LC/gguf/squish-lm-34m-$p.gguf") B)"; done
for r in $(seq 1 "$ROUNDS"); do
    echo "# round $r/$ROUNDS" >&2
    echo "# round $r/$ROUNDS: load $(cut -d' ' -f1-3 /proc/loadavg)"
    for p in $PAIRS; do
        run_squish "$p" "${SQF[$p]}" "$r"
        [[ -n "${BASE_BUILD:-}" ]] && run_squish "$p" "${SQF[$p]}" "$r" "$BASE_BUILD" base
        run_llama "$p" llama "$LLAMA_BENCH" "$LC/gguf/squish-lm-34m-$p.gguf" "$r"
        [[ -n "$IK_BENCH" ]] && run_llama "$p" ik "$IK_BENCH" "$LC/gguf/squish-lm-34m-$p.gguf" "$r"
    done
    if [[ -n "$IK_BENCH" && -s "$IK_IQ4KS" && -n "${SQF[Q4_0]:-}" ]]; then
        run_squish IQ4_KS "${SQF[Q4_0]}" "$r"
        run_llama IQ4_KS ik "$IK_BENCH" "$IK_IQ4KS" "$r"
    fi
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Per pair and test: min/median/max tokens/s of each runtime, and the ratio squish/peer of the
# medians with the range of the per-round ratios (the runs of one round are back to back).
awk -F'\t' -v pairs="$PAIRS IQ4_KS" '
function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function stats(key,   n, i, a) { n = cnt[key]; if (!n) return "-"
    for (i = 1; i <= n; i++) a[i] = v[key, i]; sort(a, n)
    med[key] = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    return sprintf("%.0f/%.0f/%.0f", a[1], med[key], a[n]) }
function ratio(p, t, rt, who,   r, lo, hi, x, s) { s = p SUBSEP who SUBSEP t
    if (!cnt[p, rt, t] || !cnt[s]) return "-"
    lo = 1e30; hi = 0
    for (r in rounds) if ((s, "r" r) in byr && (p, rt, t, "r" r) in byr) {
        x = byr[s, "r" r] / byr[p, rt, t, "r" r]; if (x < lo) lo = x; if (x > hi) hi = x }
    return sprintf("%.2fx (%.2f-%.2f)", med[s] / med[p, rt, t], lo, hi) }
{ k = $1 SUBSEP $2 SUBSEP $3; v[k, ++cnt[k]] = $5; byr[k, "r" $4] = $5; rounds[$4] = 1 }
END {
    print "# tokens/s as min/median/max over the rounds; a ratio is median/median with the range of the per-round"
    print "# ratios in brackets (runs of one round are back to back, so these are the figures to trust on a loaded"
    print "# machine). squish = this build, default (fast) path; exact = the same build on the exact path (squish-verify"
    print "# --eval); base = BASE_BUILD on the same files (squish/base > 1: this build is faster)."
    printf "%-7s %-6s %-17s %-17s %-20s %-17s %-20s %-17s %-20s %-17s %-20s %s\n", "pair", "test", "squish min/med/max", "llama.cpp", "squish/llama.cpp", "ik_llama.cpp", "squish/ik", "exact min/med/max", "exact/llama.cpp", "base min/med/max", "base/llama.cpp", "squish/base"
    np = split(pairs, P, " ")
    for (i = 1; i <= np; i++) for (tt = 1; tt <= 2; tt++) {
        p = P[i]; t = tt == 1 ? "pp512" : "tg128"
        if (!cnt[p, "squish", t]) continue
        sq = stats(p SUBSEP "squish" SUBSEP t); ll = stats(p SUBSEP "llama" SUBSEP t); ik = stats(p SUBSEP "ik" SUBSEP t)
        ex = stats(p SUBSEP "exact" SUBSEP t); bs = stats(p SUBSEP "base" SUBSEP t)
        printf "%-7s %-6s %-17s %-17s %-20s %-17s %-20s %-17s %-20s %-17s %-20s %s\n", p, t, sq, ll, ratio(p, t, "llama", "squish"), ik,
               ratio(p, t, "ik", "squish"), ex, ratio(p, t, "llama", "exact"), bs, ratio(p, t, "llama", "base"), ratio(p, t, "base", "squish")
    }
}' "$RAW"
echo "# raw figures (pair runtime test round tokens/s): $RAW"
