/* AWQ (Lin et al. 2024): activation-aware scaling. For each group of linear
 * layers that share an input, search per-input-channel scales
 * s = mean|x|^a (a on a grid in [0, 1)) that minimise the layers' output
 * error after quantizing W·diag(s), fold 1/s into the operation before
 * (RMSNorm weight, or the previous linear's output rows), then clip each
 * weight group to the range that minimises its output error.
 *
 * The output error of a candidate Ŵ is measured from the calibration
 * statistics as tr((Ŵ - W) H (Ŵ - W)ᵀ) with H = XᵀX / tokens: exactly the
 * mean squared error of the linear outputs over the calibration tokens.
 * (The reference implementation runs the whole attention/MLP block on the
 * cached activations; squish scores the linear outputs, which the stored
 * XᵀX determines without keeping activations.) */
#ifndef SQUISH_AWQ_H
#define SQUISH_AWQ_H

#include "calib.h"
#include "squish/codec.h"

typedef struct sq_awq_opts {
    int n_grid;    /* scale exponents a = i / n_grid, i = 0..n_grid-1 (default 20) */
    int duo;       /* AutoAWQ's duo scaling: s = mean|x|^a / mean|w|^(1-a) */
    int clip;      /* clipping-range search (default on; never for q/k, as the reference) */
    int n_threads;
} sq_awq_opts;

/* One linear layer: weights [rows][cols] (f32, modified in place), its
 * codec and params (the quantizer the search measures with). */
typedef struct sq_awq_linear {
    const char *name;
    float *w;
    uint64_t rows, cols;
    const sq_codec *c;
    const uint32_t *params;
} sq_awq_linear;

/* A Llama block. Norm weights and linear weights are modified in place;
 * when the o_proj scales cannot be folded into v_proj (grouped-query
 * attention), o_in_scale (attn_out_size floats, caller-allocated) receives
 * them and o_has_in_scale is set: store it as o_proj's in_scale part. */
typedef struct sq_awq_block {
    float *attn_norm, *ffn_norm;
    sq_awq_linear q, k, v, o, gate, up, down;
    uint32_t n_heads, n_kv_heads;
    float *o_in_scale;
    int o_has_in_scale;
    double ratio[SQ_SITE_COUNT]; /* chosen exponent per site (report) */
    double gain[SQ_SITE_COUNT];  /* output error with the chosen scales / without scaling */
} sq_awq_block;

sq_status sq_awq_block_run(sq_awq_block *b, sq_calib_file *cf, uint32_t layer, const sq_awq_opts *o, sq_err *err);

/* Output error tr((a - b) H (a - b)ᵀ) for rows x cols matrices and a
 * cols x cols float Hessian (linalg.h's fixed-order products; the same on
 * every machine); NaN when its 64-row buffers cannot be allocated. */
double sq_hessian_err(const float *a, const float *b, uint64_t rows, uint64_t cols, const float *H);

#endif
