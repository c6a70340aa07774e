#!/usr/bin/env bash
# squish-calibrate and the calibrated methods end to end: byte-identical
# calibration files across runs, thread counts and shard merges; the
# documented HDF5 structure; hostile calibration files; GPTQ/AWQ output
# that is deterministic and (on the 34M model) better than RTN.
# usage: test_calib.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -u
B=$1 S=$2 SH=$3
C=$B/squish-calibrate Q=$B/squish-quantize V=$B/squish-verify I=$B/squish-inspect MK=$B/make-testdata
TINY=$S/testdata/tiny-llama
. "$(dirname "$0")/testlib.sh"

if [ ! -d "$SH/models" ]; then
  echo "skipped: $SH/models is absent (the tokenizer and text come from there)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
TOK=$SH/models/stories260K/tok512.model # 512 tokens, like the tiny model's vocabulary
TXT=$SH/data/calib-books.txt
CAL=(-t "$TXT" --tokenizer "$TOK" -n 6 -L 64 -q)

# ---- reproducible, thread-independent, documented structure ----
expect 0 "calibrate tiny" -- "$C" "$TINY" "${CAL[@]}" -o "$T/a.h5" -T 1
expect 0 "calibrate tiny, 3 threads" -- "$C" "$TINY" "${CAL[@]}" -o "$T/b.h5" -T 3
cmp -s "$T/a.h5" "$T/b.h5" && ok || bad "calibration differs between 1 and 3 threads"
expect 0 "calibrate again" -- "$C" "$TINY" "${CAL[@]}" -o "$T/b.h5" -T 2
cmp -s "$T/a.h5" "$T/b.h5" && ok || bad "calibration not byte-identical across runs"
h5ls -r "$T/a.h5" >"$T/ls" 2>&1
n=$(grep -cE '^/layers/[01]/(attn_in|attn_out|mlp_in|mlp_act)/(xtx|abs_mean|abs_max) +Dataset' "$T/ls")
[ "$n" = 24 ] && ok || bad "h5ls lists $n of the 24 documented datasets"
grep -qE '^/layers/0/mlp_act/xtx +Dataset \{520, 520\}' "$T/ls" && ok || bad "mlp_act/xtx is not 520x520"
grep -qE '^/layers/1/attn_out/abs_max +Dataset \{192\}' "$T/ls" && ok || bad "attn_out/abs_max is not 192 long"
h5dump -a /format -a /samples -a /layers/0/attn_in/tokens "$T/a.h5" >"$T/dump" 2>&1
grep -q '"squish-calib"' "$T/dump" && grep -A6 'ATTRIBUTE "tokens"' "$T/dump" | grep -q '(0): 384' && ok ||
  bad "h5dump: format or tokens (6 windows x 64 = 384) not as documented: $(head -c 300 "$T/dump")"
# xtx is symmetric and its diagonal is the sum of squares: check one value against abs_max
h5dump -d /layers/0/attn_in/xtx -s 0,0 -c 1,1 "$T/a.h5" | grep -qE '\(0,0\): [0-9]' && ok || bad "h5dump cannot read xtx"
# the output layer's input and the vocabulary statistics (their values: test_vocab_stats)
grep -qE '^/output/lm_head_in/xtx +Dataset \{192, 192\}' "$T/ls" && grep -qE '^/output/lm_head_in/abs_(mean|max) +Dataset \{192\}' "$T/ls" &&
  grep -qE '^/vocab/input_count +Dataset \{512\}' "$T/ls" && grep -qE '^/vocab/mean_prob +Dataset \{512\}' "$T/ls" && ok ||
  bad "h5ls: /output/lm_head_in or /vocab not as documented: $(grep -E '^/(output|vocab)' "$T/ls")"
h5dump -a /output/lm_head_in/tokens -a /vocab/positions "$T/a.h5" | grep -c '(0): 384' | grep -qx 2 && ok ||
  bad "/output/lm_head_in tokens or /vocab positions are not 384"
n=$(h5dump -d /vocab/input_count -y -w 0 "$T/a.h5" | sed -n '/DATA {/,/}/p' | tr -c '0-9\n' ' ' | tr ' ' '\n' | awk 'NF { s += $1 } END { print s }')
[ "$n" = 384 ] && ok || bad "/vocab/input_count sums to $n, not 6 windows x 64 tokens"

# ---- shards merge to the unsharded file; different runs add ----
for k in 1 2; do "$C" "$TINY" "${CAL[@]}" --shard $k/2 -o "$T/s$k.h5" -T 2 || bad "shard $k"; done
h5ls -r "$T/s1.h5" | grep -q '^/layers/1 ' && bad "shard 1/2 holds layer 1" || ok
h5ls -r "$T/s1.h5" | grep -qE '^/(output|vocab) ' && bad "shard 1/2 (without the last layer) holds /output or /vocab" || ok
expect 0 "merge shards" -- "$C" --merge "$T/s2.h5" "$T/s1.h5" -o "$T/m.h5"
cmp -s "$T/a.h5" "$T/m.h5" && ok || bad "merged shards differ from the unsharded file"
# a GPTQ shard needs only its own layers' statistics (at 7B, a merged file of all layers is 44 GB): the
# shard quantized with its calibration shard holds the tensors (every part's bytes: offsets, xxh64) of the
# shard quantized with the whole file (the metadata differ: they name the calibration file); the other
# shard is refused with that file, naming the missing layer
G=(-s int4:g64:asym --method gptq --act-order -q --shard 1/2)
expect 0 "gptq shard 1/2, whole calibration" -- "$Q" "$TINY" "${G[@]}" --calib "$T/a.h5" -o "$T/g-all.squizd"
expect 0 "gptq shard 1/2, calibration shard 1/2" -- "$Q" "$TINY" "${G[@]}" --calib "$T/s1.h5" -o "$T/g-s1.squizd"
parts() { "$I" --json "$1" | jq -c '.tensors[] | [.name, .parts]'; }
[ -n "$(parts "$T/g-s1.squizd")" ] && [ "$(parts "$T/g-all.squizd")" = "$(parts "$T/g-s1.squizd")" ] && ok ||
  bad "gptq shard 1/2: tensors differ with the calibration shard"
expect 2 "gptq shard 2/2 with calibration shard 1/2" -- "$Q" "$TINY" -s int4:g64:asym --method gptq -q --shard 2/2 \
  --calib "$T/s1.h5" -o "$T/g-x.squizd"
grep -q 'no statistics for layer 1' "$T/err" && [ ! -e "$T/g-x.squizd" ] && ok || bad "shard 2/2 with shard 1's calibration: $(cat "$T/err")"
"$C" "$TINY" "${CAL[@]}" --seed 7 -o "$T/c.h5" || bad "calibrate seed 7"
expect 0 "merge two runs" -- "$C" --merge "$T/a.h5" "$T/c.h5" -o "$T/ac.h5"
h5dump -a /layers/1/mlp_act/tokens -a /samples "$T/ac.h5" | grep -q '(0): 768' && ok || bad "merged tokens are not 384 + 384"
h5dump -a /samples "$T/ac.h5" | grep -q '(0): 12' && ok || bad "merged samples are not 6 + 6"
h5dump -a /output/lm_head_in/tokens -a /vocab/positions "$T/ac.h5" | grep -c '(0): 768' | grep -qx 2 && ok ||
  bad "merged /output tokens or /vocab positions are not 384 + 384"
expect 0 "merge a shard into a whole file (layers overlap: sums add)" -- "$C" --merge "$T/a.h5" "$T/s1.h5" -o "$T/x2.h5"
"$C" "$SH/models/stories260K/hf" -t "$TXT" -n 2 -L 32 -q -o "$T/other.h5" || bad "calibrate stories260K"
expect 2 "merge another model's file" -- "$C" --merge "$T/a.h5" "$T/other.h5" -o "$T/x.h5"
grep -q "different models" "$T/err" && ok || bad "merge message: $(cat "$T/err")"
[ ! -e "$T/x.h5" ] && ok || bad "failed merge left an output"

# ---- hostile calibration input ----
expect 2 "text shorter than a window" -- "$C" "$TINY" -t "$S/README.md" --tokenizer "$TOK" -n 1 -L 200000 -o "$T/x.h5"
expect 2 "window longer than the context" -- "$C" "$TINY" "${CAL[@]}" -L 4096 -o "$T/x.h5"
printf 'caf\xc3' >"$T/bad.txt"
expect 4 "invalid UTF-8 text" -- "$C" "$TINY" -t "$T/bad.txt" --tokenizer "$TOK" -n 1 -L 2 -o "$T/x.h5"
cp -r "$TINY" "$T/nanmodel"
f=$T/nanmodel/model-00001-of-00002.safetensors
hdr=$(od -An -tu8 -N8 "$f" | tr -d ' ')
off=$(head -c $((8 + hdr)) "$f" | tail -c "$hdr" | jq -r '."model.layers.0.input_layernorm.weight".data_offsets[0] // empty')
if [ -n "$off" ]; then
  printf '\xc0\x7f' | dd of="$f" bs=1 seek=$((8 + hdr + off)) conv=notrunc status=none
  expect 4 "NaN activations" -- "$C" "$T/nanmodel" "${CAL[@]}" -o "$T/x.h5"
  grep -q "layer 0 attn_in" "$T/err" && grep -q NaN "$T/err" && ok || bad "NaN message: $(cat "$T/err")"
else
  bad "tiny model lacks layer 0's input_layernorm in shard 1"
fi
[ ! -e "$T/x.h5" ] && ok || bad "failed calibration left an output"
size=$(stat -c %s "$T/a.h5")
head -c $((size - 100)) "$T/a.h5" >"$T/trunc.h5"
expect 4 "truncated calibration file" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq --calib "$T/trunc.h5" -q
grep -q "truncated" "$T/err" && ok || bad "truncation message: $(cat "$T/err")"
cp "$T/a.h5" "$T/flip.h5"
printf '\x55' | dd of="$T/flip.h5" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect 4 "damaged calibration file" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq --calib "$T/flip.h5" -q
grep -q "checksum" "$T/err" && ok || bad "damage message: $(cat "$T/err")"
cp "$T/a.h5" "$T/v2.h5"
printf '\x02' | dd of="$T/v2.h5" bs=1 seek=16 conv=notrunc status=none
expect 5 "calibration file of a newer version" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method awq --calib "$T/v2.h5" -q
expect 4 "not a calibration file" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq --calib "$TINY/config.json" -q
expect 2 "calibration of another model" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq --calib "$T/other.h5" -q
grep -q "another model" "$T/err" && ok || bad "another-model message: $(cat "$T/err")"
expect 2 "partial calibration file" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq --calib "$T/s1.h5" -q
grep -q "layer 1" "$T/err" && ok || bad "partial-file message: $(cat "$T/err")"
expect 2 "gptq without --calib" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq -q
expect 2 "--static-groups without --act-order" -- "$Q" "$TINY" -o "$T/q.squizd" -s int4 --method gptq --static-groups --calib "$T/a.h5" -q
[ ! -e "$T/q.squizd" ] && ok || bad "a refused run left an output"

# ---- files of squish <= 0.1.0: XᵀX asymmetric by rounding is repaired, with a warning ----
"$MK" asym-calib "$T/a.h5" "$T/asym.h5" 2e-7 || bad "make-testdata asym-calib"
expect 0 "GPTQ with an XᵀX asymmetric by rounding" -- "$Q" "$TINY" -o "$T/asym.squizd" -s int4 --method gptq --calib "$T/asym.h5" -q
grep -q "asym.h5: XᵀX of 8 sites was asymmetric by rounding" "$T/err" && ok || bad "repair warning: $(cat "$T/err")"
expect 0 "merge a file asymmetric by rounding" -- "$C" --merge "$T/asym.h5" "$T/asym.h5" -o "$T/asym-m.h5"
grep -q "asymmetric by rounding" "$T/err" && ok || bad "merge repair warning: $(cat "$T/err")"
expect 0 "the merged file is symmetric again" -- "$Q" "$TINY" -o "$T/asym2.squizd" -s int4 --method gptq --calib "$T/asym-m.h5" -q
[ ! -s "$T/err" ] && ok || bad "merged file still repaired: $(cat "$T/err")"
"$MK" asym-calib "$T/a.h5" "$T/asym-big.h5" 1e-2 || bad "make-testdata asym-calib 1e-2"
expect 4 "XᵀX asymmetric beyond rounding" -- "$Q" "$TINY" -o "$T/asym3.squizd" -s int4 --method gptq --calib "$T/asym-big.h5" -q
grep -q "is not symmetric at \[0\]\[6\]" "$T/err" && ok || bad "asymmetry message: $(cat "$T/err")"
[ ! -e "$T/asym3.squizd" ] && ok || bad "a refused run left an output"

# ---- the methods: deterministic, honoured by decode, sensible quality ----
while read -r name args; do
  # shellcheck disable=SC2086
  if "$Q" "$TINY" -o "$T/$name-1.squizd" -s int4:g64:asym --calib "$T/a.h5" $args -T 1 -q --report "$T/$name.json" &&
     "$Q" "$TINY" -o "$T/$name-3.squizd" -s int4:g64:asym --calib "$T/a.h5" $args -T 3 -q; then
    cmp -s "$T/$name-1.squizd" "$T/$name-3.squizd" && ok || bad "$name: output differs between 1 and 3 threads"
    # AWQ changes the weights on purpose (scales folded): compare outputs, not weights
    "$V" -q -j --reference "$TINY" --tokenizer "$TOK" --eval "$SH/data/tinystories-valid-excerpt.txt" --ctx 128 \
      "$T/$name-1.squizd" >"$T/$name.eval" && ok || bad "$name: evaluation failed"
    case $name in awq*) ;; *) "$V" -q --reference "$TINY" --min-cosine 0.95 "$T/$name-1.squizd" && ok || bad "$name: verify against the source failed" ;; esac
  else
    bad "$name: quantize failed"
  fi
done <<'EOF'
rtn --method rtn
gptq --method gptq
gptq_ao --method gptq --act-order
gptq_aos --method gptq --act-order --static-groups
awq --method awq
awq_duo --method awq --awq-duo --awq-no-clip
EOF
"$I" "$T/gptq_ao-1.squizd" | grep -q 'int4:g64:asym+perm' && ok || bad "act-order tensors do not show +perm"
"$I" "$T/gptq_aos-1.squizd" | grep -q '+perm' && bad "static groups stored a perm" || ok
"$I" "$T/awq-1.squizd" | grep -q 'o_proj.weight.*+in_scale' && ok || bad "AWQ o_proj (grouped-query) lacks in_scale"
"$I" --json "$T/gptq-1.squizd" | jq -e '.header.flag_names | index("GPTQ")' >/dev/null && ok || bad "GPTQ flag not set"
"$I" --json "$T/awq-1.squizd" | jq -e '.header.calib_hash != null' >/dev/null && ok || bad "calibration hash not in the header"
kr=$(jq .eval.kld_mean "$T/rtn.eval")
for name in gptq gptq_ao gptq_aos awq awq_duo; do # a wrong fold or permutation would multiply the KLD
  k=$(jq .eval.kld_mean "$T/$name.eval")
  awk -v r="$kr" -v k="$k" 'BEGIN { exit !(k < 1.2 * r) }' && ok || bad "$name: KLD $k against RTN's $kr"
done
r=$(jq '[.tensors[]|select(.out_err)|.out_err]|add' "$T/rtn.json") g=$(jq '[.tensors[]|select(.out_err)|.out_err]|add' "$T/gptq.json")
awk -v r="$r" -v g="$g" 'BEGIN { exit !(g < r) }' && ok || bad "GPTQ output error $g not below RTN's $r"
# ragged rows (stories260K: 172 columns, not a multiple of 64) with act-order
"$C" "$SH/models/stories260K/hf" -t "$SH/data/tinystories-valid-excerpt.txt" -n 8 -L 128 -q -o "$T/st.h5" &&
  "$Q" "$SH/models/stories260K/hf" -o "$T/st.squizd" -s int4:g64:asym --method gptq --act-order --calib "$T/st.h5" -q &&
  "$V" -q --reference "$SH/models/stories260K/hf" --min-cosine 0.95 "$T/st.squizd" && ok || bad "stories260K GPTQ act-order"

# ---- the machine matrix: the same bytes under every BLAS kernel and ISA ----
# Calibration, GPTQ and AWQ use no BLAS (fixed-order kernels of their own), so
# OpenBLAS's per-CPU kernel choice cannot change an artifact; the SIMD paths
# compute exactly what the portable C computes. squish-bench still uses sgemm
# (as its compute baseline), which shows that OPENBLAS_CORETYPE takes effect here.
for tool in "$C" "$Q"; do
  ldd "$tool" | grep -qi blas && bad "$(basename "$tool") links a BLAS: $(ldd "$tool" | grep -i blas)" || ok
done
if ldd "$B/squish-bench" | grep -q openblas; then
  OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=Sandybridge "$B/squish-bench" --help 2>&1 | grep -q 'Core: Sandybridge' && ok ||
    bad "OPENBLAS_CORETYPE does not select OpenBLAS's kernel on this machine"
fi
# Each run in its own folder with the same relative names, so the recorded
# command lines agree. The portable path once (its fmaf calls are slow). The
# sanitizer run (SQUISH_TEST_QUICK) takes one combination per ISA and per
# OpenBLAS kernel family; the release run takes all six.
first=
COMBOS="Haswell/portable Haswell/avx2 Haswell/avx512 SkylakeX/avx512 Zen/avx2 Sandybridge/avx512"
[ -z "${SQUISH_TEST_QUICK:-}" ] || COMBOS="Haswell/portable Zen/avx2 SkylakeX/avx512"
for combo in $COMBOS; do
  core=${combo%/*} isa=${combo#*/} d=$T/mx/$core-$isa
  mkdir -p "$d"
  if (cd "$d" && export OPENBLAS_CORETYPE=$core SQUISH_ISA=$isa &&
      "$C" "$TINY" -t "$TXT" --tokenizer "$TOK" -n 2 -L 64 -q -o c.h5 -T 2 &&
      "$Q" "$TINY" -o gptq.squizd -s int4:g64:asym --method gptq --act-order --calib c.h5 -q -T 2 &&
      "$Q" "$TINY" -o awq.squizd -s int3:g64:asym --method awq --calib c.h5 -q -T 2 &&
      "$Q" "$TINY" -o rtn.squizd -s nf4:dq -q -T 2) 2>"$T/err"; then
    if [ -z "$first" ]; then first=$d; ok; continue; fi
    for k in c.h5 gptq.squizd awq.squizd rtn.squizd; do
      cmp -s "$first/$k" "$d/$k" && ok || bad "$combo: $k differs from $(basename "$first")"
    done
  else
    bad "$combo: calibrate/quantize failed: $(head -c 300 "$T/err")"
  fi
done

# ---- quality on the real model (skipped in quick runs) ----
if [ -n "${SQUISH_TEST_QUICK:-}" ]; then
  echo "skipped: 34M quality comparison (SQUISH_TEST_QUICK is set)" >&2
  skip=$((skip + 1))
else
  M=$SH/models/squish-lm-34m
  IDS=$SH/reference/ids/ids-34m-books-heldout.ids
  "$C" "$M" -t "$TXT" -n 16 -L 512 -q -o "$T/34.h5" || bad "calibrate 34M"
  for m in rtn gptq awq; do
    "$Q" "$M" -o "$T/34$m.squizd" -s int3:g128:asym --method $m --calib "$T/34.h5" -q &&
      "$V" -q -j --reference "$M" --eval-ids "$IDS" --windows 4 --ref-logits "$T/ref.lp" "$T/34$m.squizd" >"$T/34$m.json" || bad "34M $m"
  done
  kr=$(jq .eval.kld_mean "$T/34rtn.json") kg=$(jq .eval.kld_mean "$T/34gptq.json") ka=$(jq .eval.kld_mean "$T/34awq.json")
  awk -v r="$kr" -v g="$kg" 'BEGIN { exit !(g < 0.85 * r) }' && ok || bad "34M int3: GPTQ KLD $kg not clearly below RTN's $kr"
  awk -v r="$kr" -v a="$ka" 'BEGIN { exit !(a < 0.85 * r) }' && ok || bad "34M int3: AWQ KLD $ka not clearly below RTN's $kr"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
