#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a
# bounded time from seed corpora made of testdata. Any crash, leak, timeout
# or sanitizer report is a finding: it is copied to build-fuzz/findings/ and
# the script fails. Add each fixed finding to tests/fuzz/regressions/<target>/.
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# SQUISH_FUZZ_SEED (default 1) fixes libFuzzer's random seed so a CI run can
# be repeated; set it to 0 for a time-based seed when hunting.
# SQUISH_FUZZ_JOBS (default: the number of cores) targets run at once.
set -euo pipefail
. "$(dirname "$0")/deps.sh"
squish_install_deps
SECS=${1:-30}
B=$SQUISH_ROOT/build-fuzz
# -O1 and line tables only (-g1): the instrumented SIMD kernels compile in
# minutes at -O2 -g, the largest fixed cost of CI; reports keep file:line
CC=clang cmake -S "$SQUISH_ROOT" -B "$B" -DSQUISH_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" >/dev/null
TARGETS="squizd safetensors gguf llama2c config codecs tokenizer_json tokenizer_model tokenizer_bin tokenize calib gguf_vocab tca_tbe"
cmake --build "$B" -j "$(nproc)" --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done) >/dev/null
SH=$SQUISH_ROOT/../shared
T=$SQUISH_ROOT/testdata
seed() { # seed TARGET FILES...
  local d=$B/corpus/$1; shift
  mkdir -p "$d"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$d/" || true; done
  cp "$SQUISH_ROOT/tests/fuzz/regressions/$(basename "$d")"/* "$d/" 2>/dev/null || true
}
rm -rf "$B/corpus" "$B/findings"
mkdir -p "$B/findings"
seed squizd "$T/toy.squizd" "$T"/squizd-vectors/valid-{mixed,zstd,tca-tbe,xform,bundle}.squizd
seed safetensors "$T/tiny-llama/model-00001-of-00002.safetensors"
seed gguf "$SQUISH_ROOT"/tests/fuzz/seeds/gguf/*
seed llama2c "$SH/models/stories260K/stories260K.bin"
seed config "$T/tiny-llama/config.json" "$SH/models/squish-lm-34m/config.json" "$SH/models/stories260K/hf/config.json"
seed codecs "$SQUISH_ROOT"/tests/fuzz/seeds/codecs/*
seed tokenizer_json "$SH/models/squish-lm-34m/tokenizer.json"
seed tokenizer_model "$SH/models/stories260K/tok512.model"
seed tokenizer_bin "$SH/models/stories260K/tok512.bin"
seed tokenize "$SH/data/wikitext-2-raw-test.head.txt" "$SH/data/tinystories-valid-excerpt.txt"
seed calib "$SQUISH_ROOT"/tests/fuzz/seeds/calib/*
seed gguf_vocab "$SQUISH_ROOT"/tests/fuzz/seeds/gguf_vocab/*
seed tca_tbe "$SQUISH_ROOT"/tests/fuzz/seeds/tca_tbe/*
# Targets run side by side, one per core (each libFuzzer process uses one);
# the table is printed in TARGETS order once all have finished.
run_one() { # run_one TARGET: its log, findings and exit status under $B
  local t=$1
  mkdir -p "$B/findings/$t"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$B/tests/fuzz_$t" "$B/corpus/$t" \
    -seed="${SQUISH_FUZZ_SEED:-1}" -max_total_time="$SECS" -max_len=1048576 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$B/findings/$t/" >"$B/fuzz-$t.log" 2>&1
  echo $? >"$B/fuzz-$t.rc"
}
JOBS=${SQUISH_FUZZ_JOBS:-$(nproc)}
for t in $TARGETS; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_one "$t" &
done
wait
status=0
printf '%-12s %12s %9s\n' TARGET EXECUTIONS FINDINGS
for t in $TARGETS; do
  log=$B/fuzz-$t.log
  rc=$(cat "$B/fuzz-$t.rc")
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  n=$(ls "$B/findings/$t" | wc -l)
  printf '%-12s %12s %9s\n' "$t" "${execs:-0}" "$n"
  if [ "$rc" -ne 0 ] || [ "$n" -ne 0 ]; then status=1; tail -30 "$log" >&2; fi
done
exit $status
