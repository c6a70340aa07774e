/* QuIP# reference decode and portable GEMV (format-library side).
 *
 * A QuIP# matrix W (rows x cols, cols % 8 == 0) is stored in the
 * transformed basis
 *     W̃ = Ĥ_rows · diag(sv) · W · diag(su) · Ĥ_colsᵀ,
 *     W̃[r][8k..8k+7] = Σ_s scale[s][r] · stage_s(codes_s[r][k])
 * (Ĥ, su, sv: xform/hadamard.h; stage 0 is E8P12, stage 1 is E81B at
 * 3 bits or E8P12 at 4 bits). Parts, in this order:
 *   codes   u16 [rows][cols/8]     E8P12 codes of stage 0
 *   codes2  u8  [rows][cols/8]     E81B codes of stage 1 (3 bits only)
 *           u16 [rows][cols/8]     E8P12 codes of stage 1 (4 bits only)
 *   su      u8  [(cols+7)/8]       input-side signs, bit-packed (1 = -1)
 *   sv      u8  [(rows+7)/8]       output-side signs, bit-packed
 *   scales  f16 [stages][rows]     per transformed row, per stage
 *
 * GEMV y = W x:  x̃ = Ĥ diag(su) x (once per call),  ỹ[r] = W̃[r]·x̃ for
 * each row (table-driven decode fused with the dot product; any row range
 * [r0, r1) on its own), then y = diag(sv) Ĥᵀ ỹ. The output transform
 * mixes all rows, so a row range of ỹ is not a row range of y: callers that
 * split rows over threads compute all of ỹ (sq_quip_gemv_rows per range)
 * and then apply sq_quip_gemv_finish once. Decoding to the original basis
 * likewise needs every row (sq_quip_decode). */
#ifndef SQUISH_CODECS_QUIP_DECODE_H
#define SQUISH_CODECS_QUIP_DECODE_H

#include <stdint.h>

#include "squish/error.h"
#include "xform/hadamard.h"

typedef struct sq_quip_view {
    uint64_t rows, cols;
    uint32_t bits;           /* 2, 3 or 4 */
    const uint16_t *codes;   /* [rows][cols/8] */
    const void *codes2;      /* NULL at 2 bits; u8 (3 bits) or u16 (4 bits) [rows][cols/8] */
    const uint8_t *su, *sv;  /* [(cols+7)/8], [(rows+7)/8] */
    const uint16_t *scales;  /* f16 [stages][rows] */
} sq_quip_view;

static inline uint32_t sq_quip_stages(uint32_t bits) { return bits == 2 ? 1 : 2; }
/* Bits per weight of all parts above. */
double sq_quip_bpw(uint64_t rows, uint64_t cols, uint32_t bits);
/* Checks bits, shapes and the scales (finite); SQ_EUSAGE / SQ_ECORRUPT. */
sq_status sq_quip_view_check(const sq_quip_view *v, sq_err *err);

/* Rows [r0, r1) of W̃ (transformed basis, scales applied), (r1-r0) x cols. */
void sq_quip_decode_transformed(const sq_quip_view *v, uint64_t r0, uint64_t r1, float *out);
/* All of W in the original basis (rows x cols). SQ_ENOMEM possible. */
sq_status sq_quip_decode(const sq_quip_view *v, float *out, sq_err *err);

/* x̃ = Ĥ diag(su) x into xt (cols), and the sums of xt over each group of
 * 8 (cols/8 values, used by the fused kernel for the ±1/4 shift). */
void sq_quip_gemv_prepare(const sq_quip_view *v, const float *x, float *xt, float *xsum8);
/* ỹ[r] for r in [r0, r1) (yt indexed by absolute row). */
void sq_quip_gemv_rows(const sq_quip_view *v, const float *xt, const float *xsum8, float *yt, uint64_t r0,
                       uint64_t r1);
/* y = diag(sv) Ĥᵀ ỹ in place (rows values). */
void sq_quip_gemv_finish(const sq_quip_view *v, float *y);
/* The three steps; work holds cols + cols/8 floats. */
void sq_quip_gemv(const sq_quip_view *v, const float *x, float *y, float *work);

#endif
