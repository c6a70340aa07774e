/* BlockLDLQ: GPTQ's error feedback with a vector quantizer that rounds
 * `width` columns at once (QuIP#: 8, the E8 dimension). With U upper
 * triangular, UᵀU = (H + damp)⁻¹ (sq_gptq_hinv), the blocks of columns are
 * quantized left to right; after block b (columns c0..c0+width) is rounded
 * with error E = W_b - Q_b (rows x width), the columns to its right get
 *     W_rest -= E · U_bb⁻¹ · U_b,rest
 * (width = 1 is GPTQ exactly). Updates are applied lazily in batches of
 * `lazy` columns, as GPTQ does; the batch size changes rounding only.
 *
 * Rows are independent, so they are processed in tiles of `row_tile` rows
 * on n_threads threads; each row's arithmetic is the same whatever the
 * tiling and thread count (fixed-order sums, linalg.h), so the output is
 * byte-identical for any n_threads. */
#ifndef SQUISH_QUANT_LDLQ_H
#define SQUISH_QUANT_LDLQ_H

#include <stddef.h>
#include <stdint.h>

#include "squish/error.h"

/* The vector quantizer, called once per (row range, column block):
 *   v[r * ldv + j]  current (error-updated) values, rows r0 + r for
 *                   r < nrows, columns c0 + j for j < width;
 *   q[r * ldq + j]  the quantized values it must write (what the decoder
 *                   will reproduce for those weights).
 * It stores its own codes (it knows rows r0.., block c0 / width). Calls for
 * disjoint row ranges may run concurrently on different threads; calls for
 * one row range come in increasing c0. Return SQ_OK or an error status
 * (the run stops and returns it). */
typedef sq_status (*sq_vq_block_fn)(void *ctx, uint64_t r0, uint64_t nrows, uint64_t c0, uint32_t width,
                                    const float *v, size_t ldv, float *q, size_t ldq);

typedef struct sq_ldlq_opts {
    uint32_t width;    /* columns per vector (divides cols); 8 for E8 codebooks */
    uint32_t lazy;     /* columns per lazy batch, a multiple of width; 0: 128 */
    uint32_t row_tile; /* rows per work unit; 0: 64 */
    int n_threads;
} sq_ldlq_opts;

/* w: rows x cols row-major (not modified); U: cols x cols upper triangular
 * (row-major, float, as sq_gptq_hinv returns). Quantized values are written
 * to wq (rows x cols; may be NULL when the callback's codes are enough). */
sq_status sq_ldlq_run(const float *w, uint64_t rows, uint64_t cols, const float *U, const sq_ldlq_opts *o,
                      sq_vq_block_fn fn, void *ctx, float *wq, sq_err *err);

#endif
