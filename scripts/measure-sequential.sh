#!/usr/bin/env bash
# measure-sequential.sh -- squish-quantize with and without --sequential on squish-lm-34m
# (issues 17 and 20): quantize each scheme both ways, then the mean KL-divergence against the
# bf16 model (books-heldout.txt, ctx 512, llama.cpp's scoring) and the bpw over the 56 matrices.
#
#   scripts/measure-sequential.sh [SCHEME_NAME...]    default: gptq w3 w4
#     gptq  int4:g128:asym --method gptq --act-order
#     w3    spqr:w3:b16:sb6:r64:t0:rht
#     w4    spqr:w4:b32:sb6:r64:t0
#
# Environment:
#   BUILD=build           squish build folder
#   SHARED=../shared      the shared folder (models, data, reference ids)
#   OUT=seq-out           where the files, reports and results.txt go
#   CALIB=$OUT/calib128.h5  squish-calibrate of the model on calib-books.txt, 128 x 512 (made if absent)
#   REF=$OUT/ref.cache    reference log-probabilities cache (made by the first eval if absent)
#   WINDOWS=60            evaluation windows (417 = all, the issues' convention)
#   THREADS=0             worker threads (0: all cores)
set -eu
BUILD=${BUILD:-build} SHARED=${SHARED:-../shared} OUT=${OUT:-seq-out}
mkdir -p "$OUT"
CALIB=${CALIB:-$OUT/calib128.h5} REF=${REF:-$OUT/ref.cache} WINDOWS=${WINDOWS:-60} THREADS=${THREADS:-0}
M=$SHARED/models/squish-lm-34m TXT=$SHARED/data/calib-books.txt
IDS=$SHARED/reference/ids/ids-34m-books-heldout.ids
[ -s "$CALIB" ] || "$BUILD/squish-calibrate" "$M" -t "$TXT" -n 128 -L 512 -T "$THREADS" -q -o "$CALIB"
[ $# -gt 0 ] || set -- gptq w3 w4
for name in "$@"; do
  case $name in
  gptq) args=(-s int4:g128:asym --method gptq --act-order) ;;
  w3) args=(-s spqr:w3:b16:sb6:r64:t0:rht) ;;
  w4) args=(-s spqr:w4:b32:sb6:r64:t0) ;;
  *) echo "unknown scheme name $name" >&2; exit 2 ;;
  esac
  for mode in ns seq; do
    f=$OUT/$name-$mode
    extra=(); [ $mode = seq ] && extra=(--sequential --calib-text "$TXT")
    t0=$(date +%s)
    "$BUILD/squish-quantize" "$M" "${args[@]}" "${extra[@]}" --calib "$CALIB" -T "$THREADS" -q -o "$f.squizd" --report "$f.json"
    t1=$(date +%s)
    "$BUILD/squish-verify" --reference "$M" --eval-ids "$IDS" --ctx 512 --llama-cpp --ref-logits "$REF" -j -q \
      -T "$THREADS" --windows "$WINDOWS" "$f.squizd" >"$f.verify.json"
    python3 - "$f" "$name" "$mode" "$WINDOWS" $((t1 - t0)) >>"$OUT/results.txt" <<'PY'
import json, sys
f, name, mode, windows, secs = sys.argv[1:]
def find(o, key):
    if isinstance(o, dict):
        if key in o: return o[key]
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            r = find(v, key)
            if r is not None: return r
    return None
rep = json.load(open(f + ".json"))["tensors"]
mats = [t for t in rep if "proj" in t["name"]]
bpw = 8 * sum(t["bytes"] for t in mats) / sum(t["elements"] for t in mats)
kld = find(json.load(open(f + ".verify.json")), "kld_mean")
print(f"{name:5} {mode:4} windows {windows} kld {kld:.5f} bpw(56 matrices) {bpw:.4f} quantize {secs} s")
PY
    tail -1 "$OUT/results.txt"
  done
done
