#!/usr/bin/env bash
# The test command: install, build (warnings as errors) twice — once with
# AddressSanitizer + UndefinedBehaviorSanitizer, optimized (-O2 -g1: the
# sanitizers check optimized code as well; a quip:2 encode of the tiny model
# takes 19 s of CPU there against 72 s at -O0) — and run the whole suite on
# both, and fuzz every parser for a bounded time (SQUISH_FUZZ_SECONDS, default
# 15 per target). The sanitizer run skips the real-model sweep
# (SQUISH_TEST_QUICK); the plain run does everything and prints ctest's
# summary line last.
set -euo pipefail
. "$(dirname "$0")/deps.sh"
squish_install_deps
squish_build "$SQUISH_ROOT/build-asan" -DSQUISH_SANITIZE=ON
squish_build "$SQUISH_ROOT/build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== sanitizer build" >&2
(cd "$SQUISH_ROOT/build-asan" && SQUISH_TEST_QUICK=1 ctest --output-on-failure -j 2)
echo "== fuzzing (${SQUISH_FUZZ_SECONDS:-15} s per target)" >&2
"$SQUISH_ROOT/scripts/fuzz.sh" "${SQUISH_FUZZ_SECONDS:-15}"
echo "== release build" >&2
cd "$SQUISH_ROOT/build" && ctest --output-on-failure -j 2
