/* SpQR (Dettmers et al. 2023; reference Vahe1994/SpQR spqr_engine.py and
 * quant_groups.py): a GPTQ sweep in act-order over small groups of input
 * columns, whose per-group scales and zeros are themselves quantized to a
 * few bits, plus unstructured outliers kept in f16. The stored form and its
 * decode are in libformat (codecs/spqr/spqr_decode.h); this file only makes
 * the parts.
 *
 * Where this differs from the reference, and why:
 * - statistics are rounded to f16 before the codes that use them are
 *   chosen, so the weights the sweep commits to are exactly what a reader
 *   decodes (the reference keeps them in f32 while quantizing);
 * - an outlier's value is rounded to f16 inside the sweep and that rounding
 *   error is spread like any other (the reference keeps f32 there);
 * - a group (or block of statistics) whose values are all equal gets a
 *   range stretched to include 0, not the reference's [-1, 1] (which puts a
 *   constant group up to half a step off);
 * - act-order ties keep column order; damping mean counts dead columns as 1
 *   (sq_gptq_hinv, shared with GPTQ); the lazy block is rounded up to whole
 *   groups so no group straddles a block;
 * - partial last groups and row blocks are allowed (the reference needs
 *   divisibility); one row has no variance to scale the threshold: no outliers. */
#ifndef SQUISH_SPQR_H
#define SQUISH_SPQR_H

#include <stdint.h>

#include "spqr/spqr_decode.h"
#include "squish/codec.h"
#include "squish/error.h"

typedef struct sq_spqr_opts {
    uint32_t wbits;          /* 2..8 (SpQR uses 2..4); default 3 */
    uint32_t group;          /* β₁, weights per first-level group; default 16 */
    uint32_t stat_group;     /* β₂, rows per second-level group; default 16 */
    uint32_t stat_bits;      /* bits of the first-level scale/zero codes; default 3 */
    double tau;              /* outlier threshold relative to the layer's mean error scale;
                                0 = default 0.2 (the reference's recommended setting);
                                INFINITY = no outliers */
    double outlier_fraction; /* > 0: search tau for the most outliers not above this
                                fraction of the weights (tau is then the starting point) */
    uint32_t fraction_iters; /* bisection steps of that search; default 10 */
    int search;              /* 1 (default): first-level (step, zero) by an importance-weighted
                                search (range scalings + weighted least squares); 0: min-max */
    int no_act_order;        /* 1: process columns in their given order (the encoder's
                                incoherent form, whose chain has no perm link) */
    double damp;             /* relative damping (times mean diag H); default 0.01 */
    uint32_t refine;         /* passes of coordinate descent on the codes after the sweep
                                (statistics and outliers fixed); default 4, 0: none */
    uint32_t block;          /* lazy-update block; default 128 (it changes only how the error
                                updates round, never with the thread count) */
    int n_threads;
} sq_spqr_opts;

/* Owns the parts (layout in spqr_decode.h) plus what the sweep committed to. */
typedef struct sq_spqr_result {
    sq_spqr_shape shape;
    uint8_t *codes, *scale_codes, *zero_codes;
    uint16_t *stats2;
    uint16_t *perm;
    uint32_t *row_ptr;
    uint16_t *outlier_cols, *outlier_vals;
    float *deq;         /* not stored: rows x cols, original column order, the weights the
                           sweep committed to (decode of the parts gives exactly these) */
    double tau_used;    /* threshold multiplier of the final sweep */
    double threshold;   /* tau_used * mean_j(var_r W[r][j] / U_jj²), the absolute criterion */
    double damp_used;
    uint32_t dead;      /* input columns with zero diag H (weights set to zero) */
    uint32_t sweeps;    /* full GPTQ sweeps run (1, or more when searching a fraction) */
    uint64_t refine_moves; /* codes the coordinate descent changed */
} sq_spqr_result;

void sq_spqr_opts_default(sq_spqr_opts *o);
/* w: rows x cols row-major; H: cols x cols XᵀX (any positive scale),
 * row-major double. Output does not depend on n_threads. */
sq_status sq_spqr_quantize(const float *w, uint64_t rows, uint64_t cols, const double *H, const sq_spqr_opts *o,
                           sq_spqr_result *out, sq_err *err);
void sq_spqr_result_free(sq_spqr_result *r);
void sq_spqr_view_of(const sq_spqr_result *r, sq_spqr_view *v);
/* Bits per weight of everything stored (codes, both statistic levels, perm, CSR outliers). */
double sq_spqr_result_bpw(const sq_spqr_result *r);

/* The spqr codec (libformat/src/codecs/spqr/spqr_codec.c): its scheme
 * params (params[4..7], spqr_params.h) as options, and its encoder
 * (quant/spqr_encode.c, registered in quant/encoders.c). */
void sq_spqr_opts_from_params(const uint32_t *params, sq_spqr_opts *o);
extern const sq_codec_encoder sq_spqr_encoder;

#endif
