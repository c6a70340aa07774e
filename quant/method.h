/* Quantization methods over a whole model, tensor by tensor: RTN, GPTQ and
 * AWQ, with the calibration statistics they need. The model quantizer
 * (quantize_model.c) asks this module for each tensor's codec, the weights
 * to quantize (AWQ changes them: scales folded into norms and linears,
 * clipping) and the encoding. */
#ifndef SQUISH_METHOD_H
#define SQUISH_METHOD_H

#include "awq.h"
#include "calib.h"
#include "gptq.h"
#include "scheme_rules.h"
#include "squish/llama_names.h"
#include "squish/model.h"

typedef enum sq_method_kind { SQ_METHOD_RTN = 0, SQ_METHOD_GPTQ = 1, SQ_METHOD_AWQ = 2 } sq_method_kind;

typedef struct sq_method {
    sq_method_kind kind;
    const sq_scheme_rules *scheme; /* the codec choice (borrowed) */
    sq_calib_file *calib; /* NULL for RTN without --calib */
    sq_gptq_opts gptq;
    sq_awq_opts awq;
    uint32_t enc_flags; /* SQ_ENC_*, passed to the calibrated codecs' encoders */
    int hessian_diag;   /* the encoders get diag(XᵀX) instead of XᵀX (an ablation) */
    int n_threads;
    /* AWQ: the current block's modified tensors */
    int64_t awq_layer;
    float *awq_w[SQ_LLAMA_BLOCK_COUNT];              /* by sq_llama_block_index */
    uint32_t awq_params[SQ_LLAMA_BLOCK_COUNT][SQ_NPARAMS]; /* the linears' params (awq_block points here) */
    sq_awq_block awq_block;
    /* Where a site's statistics come from when not from calib: the
     * sequential pass (sequential.h) gives those of the hidden states of
     * the already-quantized blocks. NULL: calib. */
    sq_status (*site_src)(void *ctx, uint32_t layer, sq_site site, sq_calib_site *out, sq_err *err);
    void *site_ctx;
    /* row importance passed to the encoders (sq_encode_ctx.row_weight) by
     * the allocator for the tensor being encoded; NULL otherwise */
    const double *row_weight;
    /* GPTQ: the last site read */
    int64_t h_layer;
    int h_site;
    sq_calib_site h;
} sq_method;

/* What happened to one tensor, for the report. */
typedef struct sq_method_note {
    const char *method; /* "rtn", "gptq", "awq", or "keep" */
    sq_gptq_info gptq;
    double awq_ratio, awq_gain; /* of the site feeding the tensor (AWQ) */
    int awq_in_scale;
    double out_err; /* relative output error tr(ΔW H ΔWᵀ)/tr(W H Wᵀ); < 0 when not measured */
} sq_method_note;

/* Checks that the calibration file belongs to model m (identity and shapes)
 * and holds the statistics of layers layer0..layer1-1: those a --shard run
 * quantizes, so each shard of a 7B model needs only its own part of the
 * calibration (1.4 GB a layer), not a merged file of all 32 layers. */
sq_status sq_method_check_calib(const sq_method *q, const sq_model *m, const char *calib_path, uint32_t layer0, uint32_t layer1,
                                sq_err *err);
const char *sq_method_name(sq_method_kind k);

/* The codec and params a tensor gets: q->scheme's choice, except that AWQ
 * stores folded norm weights as f32 (the folded values are not
 * bf16-representable). */
const sq_codec *sq_method_codec(const sq_method *q, const sq_model_tensor *t, uint32_t params[SQ_NPARAMS]);

/* Fills w (elems floats) with the tensor's weights as they are to be
 * quantized: the source weights, or AWQ's scaled/clipped ones. */
sq_status sq_method_weights(sq_method *q, const sq_model *m, const sq_model_tensor *t, float *w, sq_err *err);

/* Whether t is the output layer and the calibration file holds its input's
 * XᵀX (/output/lm_head_in): then *layer = n_layers, *site = ATTN_IN name it
 * for the encoders, which treat it as a linear layer (GPTQ, SpQR...). */
int sq_method_output_site(const sq_method *q, const sq_model_tensor *t, uint32_t *layer, sq_site *site);

/* Laplace smoothing of the embedding rows' token counts: a row never read
 * in calibration still weighs as one read */
#define SQ_METHOD_COUNT_PRIOR 1.0

/* Row importance of tensor t (rows of it) from the calibration file's
 * vocabulary statistics (/vocab): the embeddings by the smoothed count of
 * each entry as an input token, the output layer (with its input's XᵀX) by
 * each entry's mean predicted probability (the logit error of entry v
 * enters the KL-divergence in proportion to p_v). *rw (malloc'd) = NULL
 * (SQ_OK) when t has none: another tensor, or a file without /vocab. */
sq_status sq_method_row_weights(sq_method *q, const sq_model_tensor *t, uint64_t rows, double **rw, sq_err *err);

/* Encodes one tensor (w from sq_method_weights). mix on the embeddings or
 * the output layer takes the row weights of sq_method_row_weights (the
 * embeddings with H = I). */
sq_status sq_method_encode(sq_method *q, const char *label, const sq_model_tensor *t, const sq_codec *c,
                           const uint32_t params[SQ_NPARAMS], const float *w, uint64_t rows, uint64_t cols,
                           sq_encoded *e, sq_method_note *note, sq_err *err);
void sq_method_free(sq_method *q);

#endif
