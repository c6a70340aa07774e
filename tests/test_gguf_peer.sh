#!/usr/bin/env bash
# GGUF export against llama.cpp itself (the peer binaries in ../shared/peer):
# squish-lm-34m quantized to int8:g32:sym and int4:g32:sym (embeddings and
# output too) exports to pure Q8_0 / Q4_0 files without re-quantization, and
# in f16 to F16; llama-perplexity on the exported file gives squish-verify
# --llama-cpp's perplexity of the source .squizd, llama-tokenize gives
# squish's tokens, and llama.cpp reads the same metadata from the Q8_0 export
# as from the peer's own Q8_0 file. Skipped without ../shared/peer or with SQUISH_TEST_QUICK.
#
# Bounds (relative perplexity difference, 3 windows of 512, 768 scored tokens,
# K/V cache in f32 on both sides): F16 1e-4 — llama.cpp rounds activations to
# f16 for F16 weights, squish computes in f32 (measured 1.1e-5); Q8_0 and Q4_0
# 2e-3 — llama.cpp's CPU kernels round every activation block of 32 to 8 bits
# (Q8_0/Q8_1) before the dot product, squish keeps them in f32 (measured with
# the avx512 binaries on an AMD EPYC: 3.4e-4 and 5.0e-4; with the avx2 ones on
# an Intel Xeon without avx512_bf16: 1.28e-3 and 2.3e-4, the same for squish
# builds before and after 2026-12-07). The weights themselves are identical
# (test_gguf_export).
# usage: test_gguf_peer.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize P=$B/squish-pack V=$B/squish-verify I=$B/squish-inspect
. "$(dirname "$0")/testlib.sh"
PEER=$SH/peer/llama.cpp-c392e509
M=$SH/models/squish-lm-34m

if [ -n "${SQUISH_TEST_QUICK:-}" ]; then
  echo "skipped: llama.cpp comparison (SQUISH_TEST_QUICK is set)" >&2
  echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if [ ! -d "$PEER" ] || [ ! -d "$M" ]; then
  echo "skipped: $PEER or $M is absent" >&2
  echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
# the binary set this CPU runs (as the peer's bench.sh chooses it)
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
BIN=avx512
for f in avx512f avx512_vnni avx512cd avx512vl avx512dq avx512bw avx512_bf16; do
  [[ "$flags" == *" $f "* ]] || BIN=avx2
done
if [ $BIN = avx2 ] && ! [[ "$flags" == *" avx2 "* && "$flags" == *" fma "* && "$flags" == *" f16c "* ]]; then
  echo "skipped: the CPU runs neither of the peer's binary sets" >&2
  echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
LP=$PEER/bin-$BIN/llama-perplexity LT=$PEER/bin-$BIN/llama-tokenize
export OMP_WAIT_POLICY=PASSIVE # the shared machines are busy: OpenMP threads must not spin
head -c 11000 "$SH/data/books-heldout.txt" >"$T/ex.txt" # 3009 tokens: 5 windows of 512

# relative difference |a - b| / b <= bound, printed
close() {
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; printf "%.3g", d; exit !(d <= t) }'
}

for v in "int8:g32:sym Q8_0 2e-3" "int4:g32:sym Q4_0 2e-3" "f16 F16 1e-4"; do
  set -- $v
  s=$1 type=$2 bound=$3 n=${1%%:*}
  "$Q" "$M" -o "$T/$n.squizd" -s "$s" --rule "embed_tokens=$s" --output-scheme "$s" -q || bad "quantize $s"
  expect 0 "export $s" -- "$P" export --to gguf "$T/$n.squizd" -o "$T/$n.gguf"
  # every 2-D tensor in the one type, nothing re-encoded
  other=$(grep -v "_norm.weight" "$T/err" | grep -- '->' | grep -cv -- "-> $type ")
  [ "$other" = 0 ] && ! grep -q "re-encoded" "$T/err" && ok || bad "$s: tensors not exported as $type: $(grep -- '->' "$T/err" | grep -v -- "-> $type " | head -3)"
  ll=$("$LP" -m "$T/$n.gguf" -f "$T/ex.txt" -c 512 -b 512 --chunks 3 -t 2 -ctk f32 -ctv f32 2>"$T/lp.log" | grep -o 'PPL = [0-9.]*' | cut -d' ' -f3)
  [ -n "$ll" ] || ll=$(grep -o 'PPL = [0-9.]*' "$T/lp.log" | cut -d' ' -f3)
  sq=$("$V" -q -j --llama-cpp --eval "$T/ex.txt" --ctx 512 --windows 3 "$T/$n.squizd" | jq -r '.eval.ppl')
  if [ -n "$ll" ] && [ -n "$sq" ] && d=$(close "$ll" "$sq" "$bound"); then
    ok; echo "$s -> $type: llama-perplexity $ll, squish-verify --llama-cpp $sq, relative difference $d (bound $bound)" >&2
  else
    bad "$s -> $type: llama-perplexity '$ll' vs squish-verify --llama-cpp '$sq' (relative ${d:-?}, bound $bound); $(grep -m2 -i error "$T/lp.log")"
  fi
done

# the same tokens: llama.cpp's tokenization of the excerpt scores exactly as squish's own
"$LT" -m "$T/int8.gguf" -f "$T/ex.txt" --ids --no-escape --log-disable 2>/dev/null | tr -d '[],' >"$T/ex.ids"
a=$("$V" -q -j --llama-cpp --eval "$T/ex.txt" --ctx 512 --windows 3 "$T/int8.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
b=$("$V" -q -j --llama-cpp --eval-ids "$T/ex.ids" --ctx 512 --windows 3 "$T/int8.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "llama-tokenize's ids score '$b', squish's tokens '$a'"

# make-testdata's synthetic SentencePiece tokenizer (what bigmodel writes beside a 7B model's shards) is one
# llama.cpp reads as squish does: on tiny-llama (512 pieces), the exported GGUF's vocabulary tokenizes the
# excerpt to the ids squish's own tokenizer makes (no BOS: squish adds none)
mkdir -p "$T/tt" && cp "$S/testdata/tiny-llama/"* "$T/tt/"
"$B/make-testdata" tokenizer "$T/tt/tokenizer.model" 512 || bad "make-testdata tokenizer"
"$Q" "$T/tt" -o "$T/tt.squizd" -s f16 -q || bad "quantize tiny-llama with the synthetic tokenizer"
expect 0 "export with the synthetic tokenizer" -- "$P" export --to gguf "$T/tt.squizd" -o "$T/tt.gguf"
"$LT" -m "$T/tt.gguf" -f "$T/ex.txt" --ids --no-bos --no-escape --log-disable 2>/dev/null | tr -d '[],' >"$T/tt.ids"
a=$("$V" -q -j --llama-cpp --eval "$T/ex.txt" --ctx 64 --windows 3 "$T/tt.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
b=$("$V" -q -j --llama-cpp --eval-ids "$T/tt.ids" --ctx 64 --windows 3 "$T/tt.squizd" | jq -c '.eval | [.tokens, .nll_sum]')
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "synthetic tokenizer: llama-tokenize's ids score '$b', squish's tokens '$a'"

# the same metadata as the peer's own Q8_0 file (made by its hf_to_gguf.py + llama-quantize), as llama.cpp
# reads and prints it: every key and value but the imatrix provenance keys
info() { "$LT" -m "$1" -p "x" 2>&1 >/dev/null | grep -E 'print_info|- kv +[0-9]+:' | grep -v 'quantize\.imatrix' | sed 's/kv *[0-9]*:/kv:/' | sort; }
if [ -f "$PEER/gguf/squish-lm-34m-Q8_0.gguf" ]; then
  d=$(diff <(info "$PEER/gguf/squish-lm-34m-Q8_0.gguf") <(info "$T/int8.gguf"))
  n=$(info "$T/int8.gguf" | wc -l)
  [ -z "$d" ] && [ "$n" -gt 30 ] && ok || bad "metadata differs from the peer's Q8_0 ($n lines): $d"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
