#!/usr/bin/env bash
# Progress of long commands: plain lines with a percentage and an ETA on a
# non-terminal stderr (here at every step: SQUISH_PROGRESS_INTERVAL=0), none
# with -q, none for a short run at the default interval; one line redrawn in
# place on a terminal. Outputs are the same bytes with and without progress.
# usage: test_progress.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize V=$B/squish-verify P=$B/squish-pack C=$B/squish-calibrate BE=$B/squish-bench
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

# lines TOOL WHAT: progress lines of TOOL for task WHAT in $T/err
lines() { grep -cE "^$1: $2: [0-9]+%.*, [0-9]+:[0-9]{2} elapsed, ETA [0-9?]" "$T/err"; }
# progress N TOOL WHAT -- CMD...: CMD exits 0 with at least N progress lines, and with -q none
progress() {
  local n=$1 tool=$2 what=$3; shift 4
  SQUISH_PROGRESS_INTERVAL=0 "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local got; got=$(lines "$tool" "$what")
  [ $rc = 0 ] && [ "$got" -ge "$n" ] && ok || bad "$tool $what: exit $rc, $got progress lines (want >= $n): $(head -c 300 "$T/err")"
  SQUISH_PROGRESS_INTERVAL=0 "$@" -q >"$T/out" 2>"$T/err"
  got=$(lines "$tool" "$what")
  [ "$got" = 0 ] && ok || bad "$tool $what -q: $got progress lines"
}

progress 5 squish-quantize quantizing -- "$Q" "$TINY" -o "$T/a.squizd" -s int4
grep -q 'quantizing: 100%' "$T/err" && bad "progress printed with -q" || ok
SQUISH_PROGRESS_INTERVAL=0 "$Q" "$TINY" -o "$T/b.squizd" -s int4 2>/dev/null
cmp -s "$T/a.squizd" "$T/b.squizd" && ok || bad "progress changed the output"
# the default interval for a log (5 s): a run shorter than that prints none
"$Q" "$TINY" -o "$T/b.squizd" -s int4 2>"$T/err"
[ "$(lines squish-quantize quantizing)" = 0 ] && ok || bad "a short run printed progress at the default interval"
SQUISH_PROGRESS_INTERVAL=0 "$Q" "$TINY" -o "$T/b.squizd" -s int4 --shard 1/2 2>"$T/err"
grep -q 'quantizing: 100%' "$T/err" && ok || bad "--shard: progress does not reach 100%: $(grep quantizing: "$T/err" | tail -1)"

for i in $(seq 1 300); do echo $(( (i * 37 + 11) % 512 )); done >"$T/ids.txt"
progress 3 squish-verify evaluating -- "$V" --eval-ids "$T/ids.txt" --ctx 64 --reference "$TINY" "$T/a.squizd"
SQUISH_PROGRESS_INTERVAL=0 "$V" --eval-ids "$T/ids.txt" --ctx 64 "$T/a.squizd" 2>"$T/err" >/dev/null
grep -q 'evaluating: 100% (4/4 windows)' "$T/err" && ok || bad "eval progress does not count windows: $(grep evaluating "$T/err")"
progress 5 squish-verify comparing -- "$V" --reference "$TINY" "$T/a.squizd"
progress 5 squish-pack writing -- "$P" recompress --zstd 3 "$T/a.squizd" -o "$T/z.squizd"
progress 2 squish-bench benchmarking -- "$BE" -R 256 -C 256 --min-time 0.01 --flush-mib 1 -c int8,int4,nf4 -T 1
if [ -d "$SH/models" ]; then
  progress 3 squish-calibrate calibrating -- "$C" "$TINY" -t "$SH/data/calib-books.txt" --tokenizer "$SH/models/stories260K/tok512.model" \
    -n 4 -L 32 -T 1 -o "$T/c.h5"
else
  echo "skipped: calibrate progress ($SH/models is absent)" >&2
  skip=$((skip + 1))
fi

# on a terminal: one line redrawn in place (\r ... erase to end of line), none with -q
if command -v script >/dev/null; then
  SQUISH_PROGRESS_INTERVAL=0 script -qec "'$Q' '$TINY' -o '$T/t.squizd' -s int4 -T 1" /dev/null >"$T/tty" 2>&1
  grep -qaE $'\rquantizing \\[#*\\.*\\] +[0-9]+%, [0-9]+:[0-9]{2} elapsed, ETA' "$T/tty" && ok || bad "no progress line on a terminal: $(head -c 300 "$T/tty" | od -c | head -5)"
  SQUISH_PROGRESS_INTERVAL=0 script -qec "'$Q' '$TINY' -o '$T/t.squizd' -s int4 -T 1 -q" /dev/null >"$T/tty" 2>&1
  [ ! -s "$T/tty" ] && ok || bad "-q on a terminal printed: $(head -c 200 "$T/tty")"
else
  echo "skipped: terminal progress (no script(1))" >&2
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
