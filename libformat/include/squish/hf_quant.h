/* Hugging Face GPTQ and AWQ checkpoints, both ways.
 *
 * Export writes a .squizd file's integer-codec tensors into the safetensors
 * layouts the ecosystem loads (transformers, vLLM, GPTQModel, AutoGPTQ,
 * AutoAWQ): the AutoGPTQ/GPTQModel layout (qweight/qzeros/scales/g_idx,
 * zeros stored minus one in the "gptq" v1 format, as they are in "gptq_v2")
 * or the AutoAWQ GEMM layout (qweight/qzeros/scales, interleaved nibbles),
 * with a config.json carrying the quantization_config. Codes, scales and
 * zeros are copied, never re-quantized; a tensor whose codes the layout
 * cannot hold is refused unless requantize is set. Import reads such a
 * directory into the exact squish codecs. The mapping, field by field:
 * docs/hf-gptq-awq.md. */
#ifndef SQUISH_HF_QUANT_H
#define SQUISH_HF_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "squish/container.h"
#include "squish/error.h"
#include "squish/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sq_hf_layout {
    SQ_HF_NONE = 0,
    SQ_HF_GPTQ = 1,    /* AutoGPTQ/GPTQModel, checkpoint_format "gptq" (zeros minus one) */
    SQ_HF_GPTQ_V2 = 2, /* GPTQModel checkpoint_format "gptq_v2" (zeros as they are) */
    SQ_HF_AWQ = 3      /* AutoAWQ, version "gemm" */
} sq_hf_layout;
/* "hf-gptq", "hf-gptq-v2", "hf-awq" and back (SQ_HF_NONE for other text). */
const char *sq_hf_layout_name(sq_hf_layout l);
sq_hf_layout sq_hf_layout_parse(const char *s);

/* One line about a tensor that was not simply copied (re-quantized, kept
 * in floating point, its error); text has no newline. */
typedef void (*sq_hf_note_fn)(void *ctx, const char *text);

typedef struct sq_hf_export_opts {
    sq_hf_layout layout;
    /* 0: refuse a tensor whose codes the layout cannot hold (the message
     * names it and why). 1: re-encode it with RTN into the layout's scheme
     * (or, where its shape cannot take that scheme or it is no linear
     * layer, store it decoded in floating point) and note its error. */
    int requantize;
    int n_threads;
    sq_hf_note_fn note;
    void *note_ctx;
} sq_hf_export_opts;

typedef struct sq_hf_export_result {
    uint32_t packed;      /* codes copied into the layout */
    uint32_t copied;      /* floating-point tensors copied as they are */
    uint32_t requantized; /* re-encoded with RTN (requantize) */
    uint32_t dequantized; /* stored decoded, in floating point (requantize) */
    uint32_t files;       /* embedded files written beside */
    char scheme[64];      /* the quantization_config's scheme, e.g. "int4:g128:asym" */
    uint64_t bytes;       /* model.safetensors */
} sq_hf_export_result;

/* Writes dir (which must not exist, or be empty): config.json with the
 * quantization_config, model.safetensors, quantize_config.json (GPTQ, for
 * AutoGPTQ) and f's other embedded files. Built beside dir and renamed into
 * place: nothing appears at dir unless it all succeeds. */
sq_status sq_hf_export(sq_file *f, const char *dir, const sq_hf_export_opts *o, sq_hf_export_result *r, sq_err *err);

typedef struct sq_hf_import_result {
    sq_hf_layout layout;
    uint32_t packed;   /* quantized modules read into integer codecs */
    uint32_t permuted; /* of those, with act-order (a perm link from g_idx) */
    uint32_t copied;   /* floating-point tensors */
    uint32_t files;    /* side files embedded */
    char scheme[64];
} sq_hf_import_result;

/* The quantization method of the model directory dir read through m
 * (config.json's quantization_config, else AutoGPTQ's quantize_config.json
 * or AutoAWQ's quant_config.json): "gptq", "awq" or another method's name,
 * written into buf; NULL when the model is not quantized. m->config_json
 * must hold config.json. */
const char *sq_hf_quant_method(const sq_model *m, const char *dir, char *buf, size_t n);

/* Reads the GPTQ/AWQ checkpoint in dir through m (sq_model_new(dir), with
 * m->vfs for an archive; its config is read here) and writes out, a .squizd
 * holding every quantized module as an exact integer codec (no
 * re-quantization), every other tensor in its source precision and the
 * directory's config/tokenizer files embedded. */
sq_status sq_hf_import(sq_model *m, const char *dir, const char *out, sq_hf_import_result *r, sq_err *err);

/* sq_model_open's path for such a directory: imported into a temporary
 * .squizd (removed at once; the mapping lives on) read as a model. */
sq_status sq_model_open_hf_quant(sq_model *m, const char *dir, sq_err *err);

#ifdef __cplusplus
}
#endif
#endif
