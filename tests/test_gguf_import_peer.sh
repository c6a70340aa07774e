#!/usr/bin/env bash
# squish-verify with llama.cpp's own GGUF files as FILE (when ../shared/peer
# exists): the Q8_0 file's tensors match the bf16 model, it evaluates with a
# small KL-divergence, and a truncated file is exit 4 naming the file and the
# tensor. Kept short: one window of 64 tokens.
# usage: test_gguf_import_peer.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
V=$B/squish-verify
GG=$SH/peer/llama.cpp-c392e509/gguf
MODEL=$SH/models/squish-lm-34m
IDS=$SH/reference/ids/ids-34m-books-heldout.ids
. "$(dirname "$0")/testlib.sh"
if [ ! -r "$GG/squish-lm-34m-Q8_0.gguf" ] || [ ! -d "$MODEL" ] || [ ! -r "$IDS" ]; then
  echo "skipped: $GG, $MODEL or $IDS is absent"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
has() { grep -qF -- "$2" "$T/err" && ok || bad "$1: stderr lacks '$2': $(head -c 400 "$T/err")"; }

# every tensor within Q8_0's reach of the original; one window evaluated
expect 0 "verify Q8_0.gguf" -- "$V" -j -q -T 2 --reference "$MODEL" --min-cosine 0.9999 \
  --eval-ids "$IDS" --ctx 64 --windows 1 --max-kld 0.01 "$GG/squish-lm-34m-Q8_0.gguf"
jq -e '.status == "ok" and (.tensors | length) == 75
       and ([.tensors[] | select(.scheme == "gguf:Q8_0")] | length) == 58
       and .eval.kld_mean > 0 and .eval.kld_mean < 0.01 and .eval.top1_agreement > 0.9' "$T/out" >/dev/null && ok ||
  bad "verify Q8_0.gguf: $(jq -c '{status, n: (.tensors|length), eval}' "$T/out" 2>&1 | head -c 400)"

# truncated in the data: the file and the tensor whose data runs past the end are named
head -c 9000000 "$GG/squish-lm-34m-Q2_K.gguf" >"$T/cut.gguf"
expect 4 "verify a truncated GGUF" -- "$V" "$T/cut.gguf"
has "truncated GGUF" "$T/cut.gguf: tensor "
has "truncated GGUF" "runs past the end of the file"

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
