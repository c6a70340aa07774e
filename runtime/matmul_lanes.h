/* The exact batched product Y = X·Wᵀ (runtime/matmul.c's definition: per
 * output, 8 lanes of fused multiply-adds over k ≡ l mod 8 in increasing k,
 * summed ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), then the tail past the last
 * whole block of 8 by product and sum) computed as eight GEMMs, one per
 * lane. Each lane's sums are an ordinary outer-product GEMM whose register
 * accumulators are exactly that lane's chains, so the bits are the
 * definition's while the kernel runs at the FMA units' rate instead of the
 * load ports' (the dot-product form needs eight accumulators per output). */
#ifndef SQUISH_MATMUL_LANES_H
#define SQUISH_MATMUL_LANES_H

#include <stddef.h>
#include <stdint.h>

#include "squish/codec.h" /* sq_isa */

/* Whether the lane GEMM runs under isa (AVX2 and AVX-512). */
int sq_lanes_available(sq_isa isa);
/* Its geometry under isa: weight rows per block, tokens per register tile
 * (AVX-512: 64 x 6; AVX2: 16 x 6). */
uint32_t sq_lanes_rows(sq_isa isa);
uint32_t sq_lanes_tokens(sq_isa isa);

/* Floats of the packed activations of T tokens of K columns. */
size_t sq_lanes_x_floats(sq_isa isa, uint32_t T, uint64_t K);
/* Packs the token tiles [g0, g1) of x (T rows of K floats) for sq_lanes_block. */
void sq_lanes_pack_x(sq_isa isa, const float *x, uint32_t T, uint64_t K, uint64_t g0, uint64_t g1, float *xp);

/* Floats of one packed weight block (scratch for sq_lanes_block). */
size_t sq_lanes_w_floats(sq_isa isa, uint64_t K);

/* Rows [r0, r0 + nr) of Y (T rows of N floats), nr <= sq_lanes_rows(isa),
 * from those rows of W (wb, nr rows of K floats) and the packed activations
 * xp; wp is scratch of sq_lanes_w_floats(isa, K) floats, 64-byte aligned. */
void sq_lanes_block(sq_isa isa, const float *wb, uint32_t nr, uint64_t K, const float *xp, uint32_t T, float *y,
                    uint64_t N, uint64_t r0, float *wp);

#endif
