#!/usr/bin/env bash
# Reproducible provenance: one job typed in different ways (program path,
# a copy or symlink of the binary, relative or absolute model path, trailing
# slash, another working directory, short or long options, their order,
# --opt=value, scheme and number spellings) writes byte-identical output, for
# squish-quantize (RTN and GPTQ) and squish-calibrate; the recorded command
# line is the canonical one.
# usage: test_provenance.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
Q=$B/squish-quantize I=$B/squish-inspect C=$B/squish-calibrate
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

# the binaries elsewhere: a copy and a symlink in other directories
mkdir -p "$T/bin" "$T/elsewhere/deep" "$T/models"
cp "$Q" "$T/bin/squish-quantize" && cp "$C" "$T/bin/squish-calibrate"
ln -s "$Q" "$T/elsewhere/q" && ln -s "$C" "$T/elsewhere/c"
ln -s "$TINY" "$T/models/tiny-llama" # another path to the same directory
REL=$(realpath --relative-to="$T/elsewhere/deep" "$TINY") REL1=$(realpath --relative-to="$T/elsewhere" "$TINY")

# same NAME EXT: $T/NAME-1.EXT, NAME-2.EXT, ... have the bytes of $T/NAME-0.EXT
same() {
  local n=0 f
  for f in "$T/$1"-[1-9]."$2"; do
    n=$((n + 1))
    cmp -s "$T/$1-0.$2" "$f" && ok || bad "$1: $(basename "$f") differs from $1-0.$2"
  done
  [ "$n" -ge 3 ] && ok || bad "$1: only $n variants to compare"
}

# ---- squish-quantize, RTN ----
"$Q" "$TINY" -o "$T/rtn-0.squizd" -s int4 -r 'mlp\.down_proj=int8' --output-scheme keep -q || bad "rtn-0"
(cd "$S/testdata" && "$Q" --scheme int4:g128:sym --rule='mlp\.down_proj=int8:pc:sym' -q -o "$T/rtn-1.squizd" tiny-llama/) || bad "rtn-1"
(cd "$T/elsewhere/deep" && ../q -q --threads 1 --report "$T/r.json" "$REL" --rule 'mlp\.down_proj=int8:pc' --output="$T/rtn-2.squizd" -s int4:sym) || bad "rtn-2"
(cd / && "$T/bin/squish-quantize" "$T/models/tiny-llama/" -T 3 -q -s int4:g128 -r 'mlp\.down_proj=int8:pc' --method rtn -o "$T/rtn-3.squizd") || bad "rtn-3"
PATH="$T/bin:$PATH" squish-quantize "$T/models/tiny-llama" -q -r 'mlp\.down_proj=int8' -s int4 -o - >"$T/rtn-4.squizd" || bad "rtn-4"
# a Hugging Face cache: snapshots/<rev>/FILE are links to blobs/<hash>; the files keep their own names
mkdir -p "$T/hf/blobs" "$T/hf/snapshots/tiny-llama"
for f in "$TINY"/*; do
  h=$(sha256sum "$f" | cut -c1-16)
  cp "$f" "$T/hf/blobs/$h" && ln -s "../../blobs/$h" "$T/hf/snapshots/tiny-llama/$(basename "$f")"
done
"$Q" "$T/hf/snapshots/tiny-llama" -q -s int4 -r 'mlp\.down_proj=int8' -o "$T/rtn-5.squizd" || bad "rtn-5 (HF cache layout)"
"$I" --json "$T/rtn-5.squizd" | jq -e '[.metadata.provenance.source_files[] | (.name // .) | test("^model-0000[12]-of-00002\\.safetensors$")] | all' >/dev/null && ok ||
  bad "HF cache: source files recorded as $("$I" --json "$T/rtn-5.squizd" | jq -c .metadata.provenance.source_files)"
same rtn squizd
# the recorded command line is the canonical one, whatever was typed
want='["squish-quantize","tiny-llama","--scheme","int4:g128:sym","--rule","mlp\\.down_proj=int8:pc:sym","--output-scheme","keep","--method","rtn"]'
got=$("$I" --json "$T/rtn-3.squizd" | jq -c .metadata.provenance.command_line)
[ "$got" = "$want" ] && ok || bad "command_line: $got, want $want"
"$I" --json "$T/rtn-3.squizd" | jq -e '.metadata.provenance.model_content_sha256 | test("^[0-9a-f]{64}$")' >/dev/null && ok || bad "no model_content_sha256"
"$I" --json "$T/rtn-3.squizd" | jq -e '[.metadata | .. | strings | select(contains("/"))] | length == 0' >/dev/null && ok ||
  bad "a path is recorded: $("$I" --json "$T/rtn-3.squizd" | jq -c '[.metadata | .. | strings | select(contains("/"))]')"
# an option that changes the output changes the bytes (the comparison can fail)
"$Q" "$TINY" -o "$T/other.squizd" -s int4 -r 'mlp\.down_proj=int8' --output-scheme int8 -q
cmp -s "$T/rtn-0.squizd" "$T/other.squizd" && bad "--output-scheme int8 did not change the output" || ok

# ---- squish-calibrate and GPTQ ----
if [ -d "$SH/models" ]; then
  TOK=$SH/models/stories260K/tok512.model TXT=$SH/data/calib-books.txt
  "$C" "$TINY" -t "$TXT" --tokenizer "$TOK" -n 4 -L 32 -q -o "$T/cal-0.h5" || bad "cal-0"
  (cd "$SH/data" && "$T/elsewhere/c" --seqlen=32 --tokenizer ../models/stories260K/tok512.model --samples 4 --text ./calib-books.txt \
    --seed 0 -T 2 --quiet "$T/models/tiny-llama/" --output "$T/cal-1.h5") || bad "cal-1"
  (cd / && "$T/bin/squish-calibrate" -L 32 -n 4 "$TINY/" --text "$TXT" -q -o "$T/cal-2.h5" --tokenizer "$TOK") || bad "cal-2"
  cp "$TXT" "$T/elsewhere/calib-books.txt" # the same text in another directory
  (cd "$T/elsewhere" && PATH="$T/bin:$PATH" squish-calibrate "$REL1" -t calib-books.txt --tokenizer "$TOK" -n 4 -L 32 -q -o "$T/cal-3.h5") || bad "cal-3"
  "$C" "$TINY" --layers 0:1 -t "$TXT" --tokenizer "$TOK" -n 4 -L 32 -q -o "$T/l0.h5" &&
    "$C" "$TINY" --shard 2/2 -t "$TXT" --tokenizer "$TOK" -n 4 -L 32 -q -o "$T/l1.h5" &&
    "$C" --merge "$T/l1.h5" "$T/l0.h5" -o "$T/cal-4.h5" -q || bad "cal-4 (layers and shard, merged)"
  same cal h5
  p=$(h5dump -a /provenance "$T/cal-1.h5" | grep -o '"command_line":\[[^]]*\]')
  [ "$p" = '"command_line":["squish-calibrate","tiny-llama","--text","calib-books.txt","--samples","4","--seqlen","32","--seed","0","--tokenizer","tok512.model"]' ] &&
    ok || bad "calibrate command_line: $p"
  # GPTQ with the calibration file named in different ways and its damping spelled differently
  "$Q" "$TINY" -o "$T/gptq-0.squizd" -s int3:g64:asym --method gptq --calib "$T/cal-0.h5" --act-order -q || bad "gptq-0"
  (cd "$T" && "$T/elsewhere/q" --act-order --gptq-cd=4 --damp 1e-2 --calib=cal-0.h5 -q --method=gptq --scheme=int3:asym:g64 "$TINY/" -o gptq-1.squizd) || bad "gptq-1"
  cp "$T/cal-0.h5" "$T/elsewhere/cal-0.h5"
  (cd "$T/elsewhere/deep" && "$T/bin/squish-quantize" "$REL" --calib ../cal-0.h5 --method gptq --damp 0.010 --act-order -s int3:g64:asym -T 2 -q -o "$T/gptq-2.squizd") || bad "gptq-2"
  PATH="$T/bin:$PATH" squish-quantize "$T/models/tiny-llama" --method gptq --act-order --calib "$T/elsewhere/cal-0.h5" -s int3:g64:asym -q -o "$T/gptq-3.squizd" || bad "gptq-3"
  same gptq squizd
  got=$("$I" --json "$T/gptq-2.squizd" | jq -c '[.metadata.provenance.command_line, .metadata.provenance.calibration.name]')
  [ "$got" = '[["squish-quantize","tiny-llama","--scheme","int3:g64:asym","--output-scheme","keep","--method","gptq","--calib","cal-0.h5","--damp","0.01","--act-order","--gptq-cd","4"],"cal-0.h5"]' ] &&
    ok || bad "gptq command_line: $got"
else
  echo "skipped: calibrate and GPTQ ($SH/models is absent)" >&2
  skip=$((skip + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
