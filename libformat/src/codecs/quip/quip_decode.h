/* QuIP# reference decode and portable GEMV (format-library side).
 *
 * A QuIP# matrix W (rows x cols, cols % 8 == 0) is stored in the
 * transformed basis
 *     W̃ = Ĥ_rows · diag(sv) · W · diag(su) · Ĥ_colsᵀ,
 *     W̃[r][8k..8k+7] = Σ_s scale[s][r] · stage_s(codes_s[r][k])
 * (Ĥ, su, sv: xform/hadamard.h; stage 0 is E8P12; the later stages are,
 * in quip-sharp's residual form (nested = 0), E81B at 3 bits or E8P12 at 4
 * bits, and in squish's nested form (nested = 1) E8R at 3 bits or two E8R
 * stages at 4 bits, see e8p.h). Parts, in this order:
 *   codes   u16 [rows][cols/8]     E8P12 codes of stage 0
 *   codes2  u8  [rows][cols/8]     E81B (residual) / E8R (nested) codes of stage 1 (3 bits)
 *           u16 [rows][cols/8]     E8P12 codes of stage 1 (4 bits, residual)
 *           u8  [rows][cols/8]     E8R codes of stage 1 (4 bits, nested)
 *   codes3  u8  [rows][cols/8]     E8R codes of stage 2 (4 bits, nested only)
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
    uint32_t nested;         /* 0: quip-sharp's residual stages; 1: nested E8R stages (3 and 4 bits) */
    const uint16_t *codes;   /* [rows][cols/8] */
    const void *codes2;      /* NULL at 2 bits; u8 (3 bits, 4 bits nested) or u16 (4 bits residual) [rows][cols/8] */
    const uint8_t *codes3;   /* u8 [rows][cols/8] at 4 bits nested, else NULL */
    const uint8_t *su, *sv;  /* [(cols+7)/8], [(rows+7)/8]; both NULL: stored without the transforms */
    const uint16_t *scales;  /* f16 [stages][rows] */
} sq_quip_view;

static inline uint32_t sq_quip_stages(uint32_t bits, uint32_t nested) {
    return bits == 2 ? 1 : bits == 4 && nested ? 3 : 2;
}
/* What stage s (0-based) decodes with. */
typedef enum { SQ_QUIP_E8P = 0, SQ_QUIP_E81B = 1, SQ_QUIP_E8R = 2 } sq_quip_book;
static inline sq_quip_book sq_quip_stage_book(uint32_t bits, uint32_t nested, uint32_t s) {
    return s == 0 ? SQ_QUIP_E8P : nested ? SQ_QUIP_E8R : bits == 3 ? SQ_QUIP_E81B : SQ_QUIP_E8P;
}
/* The codes of stage s (u16 for E8P, u8 otherwise). */
static inline const void *sq_quip_stage_codes(const struct sq_quip_view *v, uint32_t s) {
    return s == 0 ? (const void *)v->codes : s == 1 ? v->codes2 : (const void *)v->codes3;
}
/* Bits per weight of all parts above. */
double sq_quip_bpw(uint64_t rows, uint64_t cols, uint32_t bits, uint32_t nested);
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
