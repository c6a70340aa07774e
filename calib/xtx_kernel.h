/* Exact-order XᵀX accumulation (float32 activations, float64 sums). */
#ifndef SQUISH_XTX_KERNEL_H
#define SQUISH_XTX_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "squish/codec.h" /* sq_isa */

/* Tiles larger than this (rows or columns) take the portable path. */
#define SQ_XTX_MAX_TILE 128

/* C[i][j] += Σ_t x[t][i0+i] · x[t][j0+j] for i < ni, j < nj, t < T, with
 * x row-major (ldx floats per token) and C row-major (ldc doubles per row).
 * Every element is summed in increasing t from its stored value and every
 * product is exact, so the result is bit-identical for every isa. */
void sq_xtx_accumulate(sq_isa isa, double *C, size_t ldc, const float *x, size_t ldx, uint32_t T, uint32_t i0,
                       uint32_t ni, uint32_t j0, uint32_t nj);

/* Width of the column panels of sq_xtx_pack. */
#define SQ_XTX_PANEL 16

/* Packs columns [16 g0, 16 g1) of x (T rows, ldx floats apart, n columns)
 * into panels widened to float64: xp[(g T + t) 16 + c] = x[t][16 g + c],
 * zero past column n. A whole x takes ceil(n / 16) panels. */
void sq_xtx_pack(const float *x, size_t ldx, uint32_t T, uint32_t n, uint32_t g0, uint32_t g1, double *xp);

/* The same sums as sq_xtx_accumulate reading the panels of all of x (xp,
 * from sq_xtx_pack) for whole register tiles, any tile size; i0 and j0 are
 * multiples of SQ_XTX_PANEL. Same per-element order, same bits, for every
 * element on or above the diagonal (global row <= column); elements below
 * it may be left as they were (callers mirror the upper triangle). xp
 * 64-byte aligned is several times faster on AVX-512 (whole cache lines). */
void sq_xtx_accumulate_panels(sq_isa isa, double *C, size_t ldc, const float *x, const double *xp, size_t ldx,
                              uint32_t T, uint32_t i0, uint32_t ni, uint32_t j0, uint32_t nj);

#endif
