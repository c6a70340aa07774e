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

/* The same sums with xd = x widened to float64 (same layout, any tile
 * size): the tiles read it in place instead of packing panels per tile. */
void sq_xtx_accumulate_wide(sq_isa isa, double *C, size_t ldc, const float *x, const double *xd, size_t ldx, uint32_t T,
                            uint32_t i0, uint32_t ni, uint32_t j0, uint32_t nj);

#endif
