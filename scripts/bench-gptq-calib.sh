#!/bin/bash
# GPTQ and calibration speed, a base build against a new one in the same run
# (issue 21 item 5: GPTQ >= 60% of the run's sgemm rate on a 4096x4096
# layer; calibration >= 1,000 tokens/s on squish-lm-34m with 2 threads).
#   BASE=/path/to/base-build NEW=/path/to/new-build [THREADS=2] [ROUNDS=2] \
#   [WHAT="gptq calib"] scripts/bench-gptq-calib.sh
# Rounds alternate base and new; calibration is 128 windows x 512 tokens of
# calib-books.txt, timed by wall clock (model load and file write included).
set -u
BASE=${BASE:?BASE=base build dir}; NEW=${NEW:?NEW=new build dir}
THREADS=${THREADS:-2}; ROUNDS=${ROUNDS:-2}; WHAT=${WHAT:-gptq calib}
HERE=$(cd "$(dirname "$0")/.." && pwd); SHARED=${SQUISH_SHARED_DIR:-$HERE/../shared}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
echo "load: $(uptime)"
for r in $(seq "$ROUNDS"); do
  for b in base new; do
    B=$BASE; [ $b = new ] && B=$NEW
    if [[ " $WHAT " == *" gptq "* ]]; then
      echo "== round $r $b: squish-bench --gptq 4096 -T $THREADS"
      "$B/squish-bench" --gptq 4096 -T "$THREADS" | sed 's/^/   /'
    fi
    if [[ " $WHAT " == *" calib "* ]]; then
      t0=$(date +%s.%N)
      "$B/squish-calibrate" "$SHARED/models/squish-lm-34m" -t "$SHARED/data/calib-books.txt" -o "$TMP/$b.h5" -T "$THREADS" -q || exit 1
      t1=$(date +%s.%N)
      awk -v a="$t0" -v b="$t1" -v w="$b" -v r="$r" 'BEGIN { printf "== round %s %s: calibration 65536 tokens in %.1f s = %.0f tokens/s\n", r, w, b - a, 65536 / (b - a) }'
    fi
  done
  [[ " $WHAT " == *" calib "* ]] && { cmp -s "$TMP/base.h5" "$TMP/new.h5" && echo "   calibration files identical" || echo "   calibration files DIFFER"; }
done
echo "load: $(uptime)"
