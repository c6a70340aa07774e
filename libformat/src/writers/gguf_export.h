/* A .squizd Llama model as a GGUF file that llama.cpp runs
 * (squish-pack export --to gguf).
 *
 * Tensors: llama.cpp's names (token_embd, blk.N.attn_q/k/v/output,
 * ffn_gate/up/down, attn_norm, ffn_norm, output_norm, output), q/k rows
 * permuted from the Hugging Face rotary layout to llama.cpp's (as
 * convert_hf_to_gguf.py's LlamaModel.permute), and each tensor stored
 *  - f32/f16/bf16 codecs: as they are (1-D tensors as F32, widened exactly);
 *  - integer codecs whose codes fit a ggml block type exactly (ggml_blocks.h:
 *    Q4_0, then Q4_1 for codes of up to 4 bits, Q8_0 for 8): the codes and
 *    scales repacked, no weight changes;
 *  - anything else: refused, naming the tensor and its scheme, unless
 *    requantize names a type: then first an exact repacking into it is
 *    tried (e.g. int4 asym codes widened to Q8_0), else (Q4_1 from 4-bit
 *    codes) the codes are kept and the minimum rounded to a half, else the
 *    decoded weights are re-encoded; the error against squish's decoded
 *    weights is reported per tensor.
 * Metadata: general.*, llama.* hyperparameters from the file's "config",
 * and the tokenizer (gguf_vocab.h) from the file's bundled files, else
 * from a model directory. */
#ifndef SQUISH_GGUF_EXPORT_H
#define SQUISH_GGUF_EXPORT_H

#include <stdint.h>

#include "squish/error.h"

typedef enum sq_gguf_how {
    SQ_GGUF_COPIED,      /* stored bytes copied (f32/f16/bf16) */
    SQ_GGUF_WIDENED,     /* decoded exactly into F32 (1-D tensors) */
    SQ_GGUF_REPACKED,    /* integer codes and scales repacked into ggml blocks, exactly */
    SQ_GGUF_REQUANTIZED  /* re-encoded (requantize): the error fields say by how much */
} sq_gguf_how;

typedef struct sq_gguf_tensor_report {
    const char *name;      /* in the .squizd */
    const char *gguf_name;
    char scheme[64];       /* as stored in the .squizd */
    uint32_t type;         /* ggml type written */
    sq_gguf_how how;
    uint64_t elements, bytes;
    /* against the weights squish decodes; all 0 unless re-encoded lossily */
    double rmse, max_abs, rel_rmse;
} sq_gguf_tensor_report;

typedef struct sq_gguf_export_opts {
    int requantize;           /* 1: tensors without an exact mapping go to requant_type */
    uint32_t requant_type;    /* SQ_GGML_* (ggml_blocks.h) */
    const char *model_dir;    /* config/tokenizer files the container does not embed, or NULL */
    int n_threads;            /* decoding threads (0: all cores) */
    void (*tensor)(void *ctx, const sq_gguf_tensor_report *r); /* each tensor as planned, may be NULL */
    void *ctx;
} sq_gguf_export_opts;

typedef struct sq_gguf_export_result {
    uint32_t tensors, requantized;
    uint64_t file_size;
    char tokenizer[128];   /* "tokenizer.json (embedded)" / "DIR/tokenizer.json" */
    const char *vocab;     /* "gpt2" or "llama" */
    uint32_t file_type;    /* general.file_type written */
} sq_gguf_export_result;

/* Writes out atomically (nothing is left behind on failure). Errors:
 * SQ_EUNSUPPORTED for a model or tensor GGUF cannot hold as asked (the
 * message names the tensor, its scheme and why), SQ_EUSAGE for a missing
 * tokenizer, SQ_ECORRUPT, SQ_EIO, SQ_ENOMEM. res may be NULL. */
sq_status sq_gguf_export(const char *in, const char *out, const sq_gguf_export_opts *o, sq_gguf_export_result *res,
                         sq_err *err);

#endif
