/* SpQR (Dettmers et al. 2023) stored form and its reference decode.
 *
 * A weight matrix W [rows = outputs][cols = inputs] is stored with its
 * input columns in a processing order (act-order): stored column j is
 * original input column perm[j]. Along stored columns, every run of
 * `group` (β₁) weights of one row shares a first-level scale S and zero Z
 * (both fractional); those are themselves quantized to `stat_bits` bits,
 * per column group, in blocks of `stat_group` (β₂) consecutive rows, each
 * block with its own f16 scale/zero pairs. A few weights (outliers) are
 * kept as f16 in CSR and replace the dense value at their position.
 *
 * Parts (all little-endian; ng = ceil(cols / group), nrb = ceil(rows / stat_group)):
 *   name          dtype  shape                           content
 *   codes         u8     [rows][ceil(cols*wbits/8)]       weight codes, stored column order
 *   scale_codes   u8     [rows][ceil(ng*stat_bits/8)]     first-level scale codes, one per group
 *   zero_codes    u8     [rows][ceil(ng*stat_bits/8)]     first-level zero codes, one per group
 *   stats2        f16    [nrb][ng][4]                     (ss, sz, zs, zz) per row block and group
 *   perm          u16    [cols]                           stored column j = original column perm[j]
 *   row_ptr       u32    [rows + 1]                       CSR row offsets into the outlier arrays
 *   outlier_cols  u16    [nnz]   (nnz = row_ptr[rows])    stored column index, increasing within a row
 *   outlier_vals  f16    [nnz]                            the outlier weight itself
 * Only nnz depends on the data; everything else follows from (rows, cols,
 * wbits, group, stat_group, stat_bits). Column indices (perm, outlier_cols) are
 * u16, so cols <= 65536.
 *
 * Bit packing (codes, scale_codes, zero_codes): each row is one LSB-first
 * bitstream; code k of a row occupies bits [k*b, (k+1)*b) of the row, bit t
 * of the row being bit (t % 8) of byte t / 8. Bits past the last code of a
 * row are zero.
 *
 * Values (float32 arithmetic, each operation rounded, no fused multiply-add):
 *   S = f16(ss) * ((float)scale_code - f16(sz))
 *   Z = f16(zs) * ((float)zero_code  - f16(zz))
 *   W[r][perm[j]] = S * ((float)code - Z)        (dense part)
 *   W[r][perm[c]] = f16(v)                       for each outlier (c, v) of row r (replaces)
 */
#ifndef SQUISH_SPQR_DECODE_H
#define SQUISH_SPQR_DECODE_H

#include <stdint.h>

#include "squish/error.h"
#include "squish/fp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_SPQR_MAX_COLS 65536u /* u16 outlier column indices */

/* Everything the part shapes depend on. */
typedef struct sq_spqr_shape {
    uint64_t rows, cols;
    uint32_t wbits;      /* 1..8 (the codec's schemes use 2..8; SpQR's own are 2..4) */
    uint32_t group;      /* β₁: weights per first-level group, along stored columns */
    uint32_t stat_group; /* β₂: rows per second-level group */
    uint32_t stat_bits;  /* bits of the first-level scale and zero codes, 1..8 */
    uint64_t nnz;        /* outliers */
} sq_spqr_shape;

enum { SQ_SPQR_CODES = 0, SQ_SPQR_SCALE_CODES, SQ_SPQR_ZERO_CODES, SQ_SPQR_STATS2, SQ_SPQR_PERM, SQ_SPQR_ROW_PTR,
       SQ_SPQR_OUTLIER_COLS, SQ_SPQR_OUTLIER_VALS, SQ_SPQR_NPARTS };

typedef struct sq_spqr_part {
    const char *name;
    uint32_t dtype; /* SQ_DT_U8 / SQ_DT_U16 / SQ_DT_U32 / SQ_DT_F16 */
    uint32_t ndim;
    uint64_t dims[3];
    uint64_t bytes;
} sq_spqr_part;

/* The part list above for a shape (SQ_SPQR_NPARTS entries, in that order). */
void sq_spqr_parts(const sq_spqr_shape *s, sq_spqr_part out[SQ_SPQR_NPARTS]);
uint64_t sq_spqr_code_stride(const sq_spqr_shape *s); /* bytes per row of codes */
uint64_t sq_spqr_stat_stride(const sq_spqr_shape *s); /* bytes per row of scale_codes / zero_codes */
/* Sum of all parts' bytes, and 8 * that / (rows * cols): the honest bits per weight. */
uint64_t sq_spqr_bytes(const sq_spqr_shape *s);
double sq_spqr_bpw(const sq_spqr_shape *s);

/* Read-only view of the parts (e.g. straight into a mapped file). perm may
 * be NULL: stored order is then taken as the original order (for a caller
 * that applies the permutation itself, as a transform, and passes x already
 * permuted / permutes the decoded rows). */
typedef struct sq_spqr_view {
    sq_spqr_shape shape;
    const uint8_t *codes, *scale_codes, *zero_codes;
    const uint16_t *stats2;
    const uint16_t *perm;
    const uint32_t *row_ptr;
    const uint16_t *outlier_cols, *outlier_vals;
} sq_spqr_view;

/* Checks a view completely: shape parameters in range, zero padding bits,
 * finite f16 statistics, perm a bijection, row_ptr starting at 0, monotone
 * and ending at nnz, column indices increasing and < cols, finite outlier
 * values. SQ_ECORRUPT (or SQ_EUNSUPPORTED for shapes out of range) with a
 * message naming the part and the index. The part buffers must have the
 * sizes sq_spqr_parts gives (the caller checks those against the file). */
sq_status sq_spqr_validate(const sq_spqr_view *v, sq_err *err);

/* Code k (width b) of a packed row. */
static inline uint32_t sq_spqr_code_at(const uint8_t *row, uint64_t k, uint32_t b) {
    uint64_t bit = k * b, byte = bit >> 3;
    uint32_t sh = (uint32_t)(bit & 7), need = (sh + b + 7) >> 3, acc = 0;
    for (uint32_t i = 0; i < need; i++) acc |= (uint32_t)row[byte + i] << (8 * i);
    return (acc >> sh) & ((1u << b) - 1);
}

/* First-level scale and zero of (row r, group g): the exact decoder arithmetic,
 * shared with the quantizer so both agree bit for bit. */
static inline float sq_spqr_stat_value(uint16_t step_f16, uint16_t zero_f16, uint32_t code) {
    return sq_f16_to_f32(step_f16) * ((float)code - sq_f16_to_f32(zero_f16));
}
static inline float sq_spqr_weight_value(float S, float Z, uint32_t code) { return S * ((float)code - Z); }
void sq_spqr_group_stats(const sq_spqr_view *v, uint64_t r, uint64_t g, float *S, float *Z);

/* Rows [r0, r1) as float, in ORIGINAL column order: out is (r1 - r0) x cols. */
void sq_spqr_decode_rows(const sq_spqr_view *v, uint64_t r0, uint64_t r1, float *out);
/* y[r] = Σ_c W[r][c] x[c] for r in [r0, r1) (y indexed by absolute row), x in
 * ORIGINAL column order: per chunk of up to 4096 columns, the dense part by
 * groups, Σ_g S (Σ q·x - Z Σ x), then the row's outliers in the chunk add
 * (v - dense value)·x. The order of every sum is fixed per
 * row, so the result does not depend on how rows are split. sq_spqr_gemv
 * takes the AVX2 kernel when sq_isa_active() allows (group a multiple of
 * 8), else the portable one; the two differ only by rounding
 * (fused multiply-adds, 8-lane partial sums). Neither allocates. */
void sq_spqr_gemv(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_spqr_gemv_portable(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1);
void sq_spqr_gemv_avx2(const sq_spqr_view *v, const float *x, float *y, uint64_t r0, uint64_t r1); /* portable where AVX2 is absent */

#ifdef __cplusplus
}
#endif
#endif
