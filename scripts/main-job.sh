#!/usr/bin/env bash
# The main job: install, build, quantize a model, inspect and verify it.
# usage: scripts/main-job.sh [MODEL [SCHEME [OUT]]]
#   MODEL defaults to testdata/tiny-llama, SCHEME to int4:g128:asym,
#   OUT to build/<model>-<scheme>.squizd
set -euo pipefail
. "$(dirname "$0")/deps.sh"
squish_install_deps
squish_build "$SQUISH_ROOT/build"
B=$SQUISH_ROOT/build
MODEL=${1:-$SQUISH_ROOT/testdata/tiny-llama}
SCHEME=${2:-int4:g128:asym}
OUT=${3:-$B/$(basename "$MODEL" | sed 's/\.[a-z]*$//')-${SCHEME//:/-}.squizd}
"$B/squish-quantize" "$MODEL" -o "$OUT" --scheme "$SCHEME"
"$B/squish-inspect" "$OUT"
"$B/squish-verify" --reference "$MODEL" "$OUT"
echo "wrote $OUT" >&2
