#!/usr/bin/env bash
# The test command: install, build (warnings as errors) twice — once with
# AddressSanitizer + UndefinedBehaviorSanitizer — and run the whole suite on
# both. The sanitizer run skips the real-model sweep (SQUISH_TEST_QUICK);
# the plain run does everything and prints ctest's summary line last.
set -euo pipefail
. "$(dirname "$0")/deps.sh"
squish_install_deps
squish_build "$SQUISH_ROOT/build-asan" -DSQUISH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
squish_build "$SQUISH_ROOT/build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== sanitizer build" >&2
(cd "$SQUISH_ROOT/build-asan" && SQUISH_TEST_QUICK=1 ctest --output-on-failure -j 2)
echo "== release build" >&2
cd "$SQUISH_ROOT/build" && ctest --output-on-failure
