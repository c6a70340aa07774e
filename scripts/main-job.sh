#!/usr/bin/env bash
# The main job: install, build, then quantize a real model into one
# self-contained .squizd (tensors + tokenizer + config), print its size and
# bits per weight, verify it against the source, measure perplexity and
# KL-divergence against the source on a text excerpt, and print a short
# greedy continuation: everything after the quantization reads only the
# .squizd (and the source, as the reference).
# usage: scripts/main-job.sh [MODEL [SCHEME [OUT [TEXT]]]]
#   MODEL  default testdata/stories260K/stories260K.bin (llama2.c, MIT; tokenizer beside it)
#   SCHEME default int4:g32:asym for the linear layers; embeddings take
#          $SQUISH_EMBED_SCHEME (default int8:g32:sym; 'keep' keeps their precision)
#   OUT    default build/<model>-<scheme>.squizd
#   TEXT   default testdata/stories260K/tinystories-valid-excerpt.txt; windows of
#          $SQUISH_CTX tokens (default 256); prompt $SQUISH_PROMPT ("Once upon a time")
# SQUISH_MAIN_JOB_BUILD=DIR uses the tools built in DIR (no install, no build).
set -euo pipefail
if [ -n "${SQUISH_MAIN_JOB_BUILD:-}" ]; then
  B=$SQUISH_MAIN_JOB_BUILD
  SQUISH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
else
  . "$(dirname "$0")/deps.sh"
  squish_install_deps
  squish_build "$SQUISH_ROOT/build"
  B=$SQUISH_ROOT/build
fi
MODEL=${1:-$SQUISH_ROOT/testdata/stories260K/stories260K.bin}
SCHEME=${2:-int4:g32:asym}
OUT=${3:-$B/$(basename "$MODEL" | sed 's/\.[a-z]*$//')-${SCHEME//:/-}.squizd}
TEXT=${4:-$SQUISH_ROOT/testdata/stories260K/tinystories-valid-excerpt.txt}
EMBED=${SQUISH_EMBED_SCHEME:-int8:g32:sym}
CTX=${SQUISH_CTX:-256}
PROMPT=${SQUISH_PROMPT:-Once upon a time}

step() { printf '\n== %s\n' "$*" >&2; }

step "quantize $(basename "$MODEL") -> $OUT ($SCHEME, embeddings $EMBED)"
"$B/squish-quantize" "$MODEL" -o "$OUT" --scheme "$SCHEME" --rule "embed_tokens=$EMBED" -q
"$B/squish-inspect" "$OUT"

step "size"
src=$(du -bL --apparent-size "$MODEL" | tail -1 | cut -f1)
"$B/squish-inspect" --json "$OUT" | jq -r --argjson src "$src" --arg out "$OUT" '
  ([.tensors[] | .elements] | add) as $w |
  "\($out): \(.header.file_size) bytes for \($w) weights: \(.header.avg_bpw * 1000 | round / 1000) bits per weight " +
  "(tensors alone; the file with its bundled tokenizer and metadata: \(.header.file_size * 8 / $w * 1000 | round / 1000)); " +
  "source \($src) bytes, \($src / .header.file_size * 10 | round / 10)x smaller\n" +
  "bundled: \([.bundled[] | .name + " (" + (.bytes | tostring) + " B)"] | join(", "))"'

step "verify (every check, every tensor against the source)"
"$B/squish-verify" -j --reference "$MODEL" "$OUT" | jq -r '
  (.tensors | min_by(.cosine)) as $w |
  "\(.file): \(.status), \(.n_tensors) tensors; lowest cosine similarity \($w.cosine * 1e6 | round / 1e6) (\($w.name), \($w.scheme))"'

if "$B/squish-inspect" --json "$OUT" | jq -e '[.bundled[] | select(.tokenizer)] | length > 0' >/dev/null; then
  step "quality on $(basename "$TEXT") (ctx $CTX): perplexity and KL-divergence against the source"
  "$B/squish-verify" --reference "$MODEL" --eval "$TEXT" --ctx "$CTX" "$OUT" 2>&1 | grep -E '^(eval|ppl|reference)'
  step "greedy continuation of \"$PROMPT\" (the .squizd alone)"
  "$B/squish-verify" -q --prompt "$PROMPT" --max-tokens 48 "$OUT"
else
  step "no tokenizer bundled (the model has none beside it): perplexity and continuation skipped"
fi
echo "wrote $OUT" >&2
