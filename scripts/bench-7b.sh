#!/usr/bin/env bash
# bench-7b.sh -- squish at real-model scale (issue 21, item 6): a synthetic Llama-2-7B-shaped model
# (make-testdata bigmodel: 32 layers, hidden 4096, MLP 11008, vocab 32000, bf16 shards, 13.5 GB,
# untrained weights and a synthetic SentencePiece tokenizer), quantized with bounded memory, then
# decoded by squish's runtime and by llama.cpp on the very same weights (squish-pack export --to gguf
# repacks int4:g32:sym as Q4_0 and int8:g32:sym as Q8_0 without re-quantization).
#
#   scripts/bench-7b.sh [STEP...]      steps, in this order when several are given (default: bench):
#     model    make-testdata bigmodel DIR/m7b 7b                                   (~13.5 GB on disk)
#     rtn      squish-quantize RTN int4:g32:sym (embeddings int4:g32:sym, output int8:g32:sym: the
#              Q4_0 class) and int8:g32:sym (all int8: the Q8_0 class); export both to GGUF
#     gptq     squish-calibrate (CALIB_N windows of CALIB_L tokens of calib-books.txt) and
#              squish-quantize --method gptq --act-order -s int4:g128:asym, for each shard in
#              GPTQ_SHARDS (K/N: a contiguous layer range; "all" = the whole model, then
#              squish-pack merge); calibration of shard K/N covers the same layers (--shard K/N)
#     bench    decode and prefill tokens/s, interleaved round by round: squish-bench -m (default
#              fast path, --no-exact) on the int4 and int8 files and llama-bench on their GGUFs,
#              for each thread count in THREADS; next to the single-thread streaming-read
#              bandwidth squish-bench measures in the same call and the bytes one decode step
#              reads (every tensor but the embeddings), as GB/s and as a share of it
#     all      model rtn gptq bench
#     summary RAW.tsv   the table again from a bench step's raw figures
#   Every step but bench runs under /usr/bin/time -v, with RssAnon and RssFile sampled every
#   second (RSS counts the model's mapped page cache, RssAnon the heap): DIR/measure.tsv has
#   wall and CPU (user + system) seconds of each; on a loaded machine CPU seconds compare better.
#   Run a copy of this script when you edit it while it runs (bash reads it as it goes).
#
# Environment:
#   BUILD=build              squish build folder (make-testdata, squish-*)
#   SHARED=../shared         the shared folder (calib-books.txt, the llama.cpp peer)
#   DIR=/tmp/squish-7b       model, squish files, GGUFs, logs (~13.5 + 3.8 + 7.2 + 3.8 + 7.2 GB)
#   THREADS="2 1"  ROUNDS=2  CTX=128 (prefill window; squish decodes CTX/4 tokens, llama-bench N_GEN)
#   N_GEN=32                 llama-bench -n
#   QTHREADS=2               threads for quantization and calibration
#   CALIB_N=4 CALIB_L=128    calibration windows and their length (a 7B forward pass: minutes each)
#   GPTQ_SHARDS=1/8          which GPTQ shards to run ("all": the whole model in 8 shards, merged)
#   NICE=15                  nice level of every heavy command
#   BIN=auto|avx512|avx2     llama.cpp binary set (as the peer's bench.sh picks it)
# The bench step alone (THREADS=2 ROUNDS=1) takes about 3 minutes on a quiet 2-core machine with
# 23 GB of RAM. Not part of CI. Figures depend on the load: the script prints it per round.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
SHARED="${SHARED:-$ROOT/../shared}"
DIR="${DIR:-${TMPDIR:-/tmp}/squish-7b}"
THREADS="${THREADS:-2 1}"
ROUNDS="${ROUNDS:-2}"
CTX="${CTX:-128}"
N_GEN="${N_GEN:-32}"
QTHREADS="${QTHREADS:-2}"
CALIB_N="${CALIB_N:-4}"
CALIB_L="${CALIB_L:-128}"
GPTQ_SHARDS="${GPTQ_SHARDS:-1/8}"
NICE="${NICE:-15}"
BIN="${BIN:-auto}"
LC="$SHARED/peer/llama.cpp-c392e509"
MODEL="$DIR/m7b"
F4="$DIR/m7b-int4-g32-sym.squizd" F8="$DIR/m7b-int8-g32-sym.squizd"
G4="$DIR/m7b-int4-g32-sym-Q4_0.gguf" G8="$DIR/m7b-int8-g32-sym-Q8_0.gguf"

die() { echo "bench-7b: $*" >&2; exit 1; }
has_flags() {
    local f flags
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done
}
if [[ "$BIN" == auto ]]; then
    if has_flags avx512f avx512_vnni avx512cd avx512vl avx512dq avx512bw avx512_bf16; then BIN=avx512; else BIN=avx2; fi
fi
LLAMA_BENCH="$LC/bin-$BIN/llama-bench"
for t in make-testdata squish-quantize squish-calibrate squish-pack squish-bench squish-inspect; do
    [[ -x "$BUILD/$t" ]] || die "no $t in $BUILD (build first, or set BUILD)"
done
mkdir -p "$DIR"
MEASURE="$DIR/measure.tsv"
[[ -s "$MEASURE" ]] || printf 'step\twall_s\tcpu_s\tmax_rss_MiB\tpeak_rss_anon_MiB\tpeak_rss_file_MiB\tload_at_start\n' >"$MEASURE"

# measure STEP LOG CMD...: CMD under /usr/bin/time -v at nice NICE, its RssAnon/RssFile peaks sampled
# every second; one line in measure.tsv; fails the script when CMD fails.
measure() {
    local step=$1 log=$2 load pid child a f pa=0 pf=0 rc
    shift 2
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# $step: $*" >&2
    /usr/bin/time -v -o "$log.time" nice -n "$NICE" "$@" >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        child="$(pgrep -P "$pid" | head -1 || true)"
        if [[ -n "$child" && -r /proc/$child/status ]]; then
            read -r a f < <(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$child/status" 2>/dev/null || echo "0 0")
            ((a > pa)) && pa=$a
            ((f > pf)) && pf=$f
        fi
        sleep 1
    done
    rc=0
    wait "$pid" || rc=$?
    local wall rss cpu
    cpu="$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$log.time")"
    wall="$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$log.time")"
    rss="$(awk -F': ' '/Maximum resident set size/ { print int($2 / 1024) }' "$log.time")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$wall" "$cpu" "$rss" "$((pa / 1024))" "$((pf / 1024))" "$load" | tee -a "$MEASURE" >&2
    [[ $rc -eq 0 ]] || die "$step failed (exit $rc): see $log"
}

step_model() {
    [[ -s "$MODEL/config.json" && -s "$MODEL/tokenizer.model" ]] && { echo "# model: $MODEL exists" >&2; return; }
    measure make-testdata "$DIR/make-testdata.log" "$BUILD/make-testdata" bigmodel "$MODEL" 7b
}

step_rtn() {
    [[ -s "$MODEL/config.json" ]] || die "no model at $MODEL (run the model step)"
    measure rtn-int4-g32-sym "$DIR/rtn-int4.log" "$BUILD/squish-quantize" "$MODEL" -o "$F4" -s int4:g32:sym \
        --rule embed_tokens=int4:g32:sym --output-scheme int8:g32:sym -T "$QTHREADS"
    measure rtn-int8-g32-sym "$DIR/rtn-int8.log" "$BUILD/squish-quantize" "$MODEL" -o "$F8" -s int8:g32:sym \
        --rule embed_tokens=int8:g32:sym --output-scheme int8:g32:sym -T "$QTHREADS"
    measure export-gguf-Q4_0 "$DIR/export-q4.log" "$BUILD/squish-pack" export --to gguf "$F4" -o "$G4"
    measure export-gguf-Q8_0 "$DIR/export-q8.log" "$BUILD/squish-pack" export --to gguf "$F8" -o "$G8"
    grep -q "re-encoded" "$DIR/export-q4.log" "$DIR/export-q8.log" && die "a tensor was re-encoded on export"
    return 0
}

step_gptq() {
    [[ -s "$MODEL/config.json" ]] || die "no model at $MODEL (run the model step)"
    local shards="$GPTQ_SHARDS" s k n parts=()
    [[ "$shards" == all ]] && shards="$(seq -s' ' -f '%g/8' 1 8)"
    for s in $shards; do
        k=${s%/*} n=${s#*/}
        measure "calibrate-$k-of-$n" "$DIR/calib-$k-of-$n.log" "$BUILD/squish-calibrate" "$MODEL" \
            --text "$SHARED/data/calib-books.txt" -n "$CALIB_N" -L "$CALIB_L" --shard "$s" -T "$QTHREADS" \
            -o "$DIR/calib-$k-of-$n.h5"
        measure "gptq-int4-g128-asym-$k-of-$n" "$DIR/gptq-$k-of-$n.log" "$BUILD/squish-quantize" "$MODEL" \
            -o "$DIR/m7b-gptq-int4-g128-asym-$k-of-$n.squizd" -s int4:g128:asym --method gptq --act-order \
            --calib "$DIR/calib-$k-of-$n.h5" --shard "$s" -T "$QTHREADS"
        parts+=("$DIR/m7b-gptq-int4-g128-asym-$k-of-$n.squizd")
    done
    if [[ "$GPTQ_SHARDS" == all ]]; then
        measure gptq-merge "$DIR/gptq-merge.log" "$BUILD/squish-pack" merge "${parts[@]}" -o "$DIR/m7b-gptq-int4-g128-asym.squizd"
    fi
}

# bytes one decode step reads: every tensor but the embedding table (one row of it is read per token)
step_bytes() {
    "$BUILD/squish-inspect" --json "$1" | jq '[.tensors[] | select(.name != "model.embed_tokens.weight") | .bytes] | add'
}

# summarize RAW B4 B8: the table of a bench step's raw figures (B4, B8: bytes read per decoded token)
summarize() {
    local raw=$1 b4=$2 b8=$3
    awk -F'\t' -v b4="$b4" -v b8="$b8" -v threads="$THREADS" -v CTX="$CTX" '
    function sort(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x } }
    function med(key,   n, i, a) { n = cnt[key]; if (!n) return 0
        for (i = 1; i <= n; i++) a[i] = v[key, i]; sort(a, n); lo[key] = a[1]; hi[key] = a[n]
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4; v[k, ++cnt[k]] = $6 }
    END {
        print "# tokens/s, median (min-max) over the rounds; stream = squish-bench'"'"'s single-thread streaming-read GB/s of"
        print "# the same calls; GB/s = bytes read per token x decode tokens/s, and its share of that bandwidth (with"
        print "# several threads the share can pass 100%: the bound is one thread'"'"'s); tg = decode, pp = prefill"
        printf "%-5s %-3s %-5s %-20s %-20s %-7s %-8s %-16s %s\n", "class", "T", "test", "squish tok/s", "llama.cpp tok/s", "ratio",
               "stream", "squish GB/s", "llama.cpp GB/s"
        nt = split(threads, TT, " ")
        for (c = 1; c <= 2; c++) for (i = 1; i <= nt; i++) for (tt = 1; tt <= 2; tt++) {
            cls = c == 1 ? "int4" : "int8"; t = TT[i]; test = tt == 1 ? "pp" CTX : "tg"; by = c == 1 ? b4 : b8
            ks = cls SUBSEP "squish" SUBSEP substr(test, 1, 2) SUBSEP t; kl = cls SUBSEP "llama" SUBSEP substr(test, 1, 2) SUBSEP t
            kb = cls SUBSEP "stream" SUBSEP "bw" SUBSEP t
            s = med(ks); l = med(kl); bw = med(kb)
            if (!cnt[ks]) continue
            line = sprintf("%-5s %-3s %-5s %-20s %-20s %-7s", cls, t, test, sprintf("%.2f (%.2f-%.2f)", s, lo[ks], hi[ks]),
                           l > 0 ? sprintf("%.2f (%.2f-%.2f)", l, lo[kl], hi[kl]) : "-", l > 0 ? sprintf("%.2fx", s / l) : "-")
            if (test == "tg")
                line = line sprintf(" %-8.2f %-16s %s", bw, sprintf("%.2f (%.0f%%)", by * s / 1e9, 100 * by * s / 1e9 / bw),
                                    l > 0 ? sprintf("%.2f (%.0f%%)", by * l / 1e9, 100 * by * l / 1e9 / bw) : "-")
            print line
        }
    }' "$raw"
}

step_bench() {
    local f g
    for f in "$F4" "$F8" "$G4" "$G8"; do [[ -s "$f" ]] || die "no $f (run the rtn step)"; done
    [[ -x "$LLAMA_BENCH" ]] || die "no llama-bench at $LLAMA_BENCH"
    local raw="$DIR/bench-raw-$$.tsv" b4 b8
    : >"$raw"
    b4="$(step_bytes "$F4")" b8="$(step_bytes "$F8")"
    echo "# bench-7b: squish $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), llama.cpp c392e509 bin-$BIN;" \
         "threads $THREADS, $ROUNDS interleaved rounds, prefill $CTX tokens, decode $((CTX / 4)) (squish) / $N_GEN (llama-bench)"
    echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cpus online," \
         "$(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) RAM; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# int4: $F4 ($(stat -c %s "$F4") B, $b4 B read per token) <-> $G4 ($(stat -c %s "$G4") B)"
    echo "# int8: $F8 ($(stat -c %s "$F8") B, $b8 B read per token) <-> $G8 ($(stat -c %s "$G8") B)"
    for r in $(seq 1 "$ROUNDS"); do
        echo "# round $r/$ROUNDS: load $(cut -d' ' -f1-3 /proc/loadavg)"
        for t in $THREADS; do
            for pair in "int4 $F4 $G4" "int8 $F8 $G8"; do
                read -r cls f g <<<"$pair"
                echo "# round $r, $t threads, $cls" >&2
                # squish: one file per call, so that its streaming-read figure is taken right before it. The
                # codec table (needed for that figure) times a 4096x4096 int8 GEMV from cold caches: each
                # call reads the 512 MiB flush buffer first, so the matrix must be large and --min-time short
                o="$(nice -n "$NICE" "$BUILD/squish-bench" -c int8 -R 4096 -C 4096 --min-time 0.2 --flush-mib 512 -T "$t" \
                    --ctx "$CTX" --no-exact -m "$f" -q 2>/dev/null)" || die "squish-bench failed on $f"
                awk -v cls="$cls" -v r="$r" -v t="$t" -v f="$f" '
                    /^# streaming read bandwidth \(1 thread/ { bw = $NF == "GB/s" ? $(NF - 1) : $NF }
                    $1 == f { print cls "\tsquish\tpp\t" t "\t" r "\t" $4; print cls "\tsquish\ttg\t" t "\t" r "\t" $5
                              print cls "\tstream\tbw\t" t "\t" r "\t" bw }' <<<"$o" >>"$raw"
                o="$(nice -n "$NICE" "$LLAMA_BENCH" -m "$g" -p "$CTX" -n "$N_GEN" -t "$t" -r 1 -o json 2>/dev/null)" ||
                    die "llama-bench failed on $g"
                awk -v cls="$cls" -v r="$r" -v t="$t" '
                    function val(line) { sub(/^[^:]*: */, "", line); sub(/,$/, "", line); gsub(/"/, "", line); return line }
                    /"n_prompt":/ { np = val($0) }
                    /"avg_ts":/ { ts = val($0) }
                    /^  \}/ { print cls "\tllama\t" (np > 0 ? "pp" : "tg") "\t" t "\t" r "\t" ts }' <<<"$o" >>"$raw"
            done
        done
    done
    echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    summarize "$raw" "$b4" "$b8"
    echo "# raw figures (class runtime test threads round value): $raw"
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(bench)
for s in "${steps[@]}"; do
    case "$s" in
        model | rtn | gptq | bench) "step_$s" ;;
        summary) # re-print the table of an earlier bench step's raw figures: summary RAW.tsv
            [[ -s "${steps[1]:-}" ]] || die "summary needs the raw .tsv of a bench step"
            summarize "${steps[1]}" "$(step_bytes "$F4")" "$(step_bytes "$F8")"
            exit 0 ;;
        all) step_model; step_rtn; step_gptq; step_bench ;;
        *) die "unknown step '$s' (model, rtn, gptq, bench, all)" ;;
    esac
done
