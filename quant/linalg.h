/* Dense linear algebra for the quantization methods, with one result on
 * every machine. BLAS and LAPACK choose their kernels per CPU (OpenBLAS's
 * Haswell, SkylakeX and Sandybridge kernels round differently), so GPTQ built
 * on them wrote different codes on different machines. These routines fix
 * the order of every sum and use fused multiply-adds on every path (fma()
 * in the portable code rounds exactly like the vector instruction), so the
 * results are bit-identical for every ISA, vector width and thread count. */
#ifndef SQUISH_QUANT_LINALG_H
#define SQUISH_QUANT_LINALG_H

#include <stddef.h>
#include <stdint.h>

#include "squish/codec.h" /* sq_isa */

/* Σ a[i]·b[i] in float64 in one fixed order: 32 lanes l[i % 32] = fma(a, b, l)
 * over whole blocks of 32, the lane groups g_q = lanes 8q..8q+7 added as
 * (g0 + g1) + (g2 + g3), those 8 sums s as ((s0+s4)+(s2+s6)) +
 * ((s1+s5)+(s3+s7)), then the tail by fma in order. */
double sq_la_dot(sq_isa isa, const double *a, const double *b, uint64_t n);

/* w[j] -= e·u[j] for j < n, float32, the product rounded before the
 * difference (no fused multiply-add), as plain C computes it. */
void sq_la_sub_scaled_f32(sq_isa isa, float *w, float e, const float *u, uint64_t n);

/* y[j] = fma(a, x[j], y[j]) for j < n, float64. */
void sq_la_axpy_f64(sq_isa isa, double *y, double a, const double *x, uint64_t n);

/* C = A·B (sub = 0) or C -= A·B (sub = 1), float32, row-major: A is R x K,
 * B is K x N. Each element's product sum runs over k in order with fused
 * multiply-adds from 0, then is stored or subtracted. Returns 0, or -1 (C
 * untouched) when its packing buffers (R x N floats and two panels) cannot
 * be allocated. */
int sq_la_matmul_f32(sq_isa isa, int sub, uint64_t R, uint64_t N, uint64_t K, const float *A, size_t lda,
                     const float *B, size_t ldb, float *C, size_t ldc);

/* The same product with B packed once for several calls (GPTQ multiplies
 * every row tile by the same blocks of U): sq_la_packed_floats floats hold
 * B (K x N) as sq_la_pack_f32 lays it out for this ISA, and
 * sq_la_matmul_packed_f32 gives the same bits as sq_la_matmul_f32. K is at
 * most SQ_LA_PACKED_MAX_K; returns 0, or -1 for a K out of range or no
 * memory for A's packing (C untouched). */
#define SQ_LA_PACKED_MAX_K 128
uint64_t sq_la_packed_floats(sq_isa isa, uint64_t K, uint64_t N);
void sq_la_pack_f32(sq_isa isa, uint64_t K, uint64_t N, const float *B, size_t ldb, float *Bp);
int sq_la_matmul_packed_f32(sq_isa isa, int sub, uint64_t R, uint64_t N, uint64_t K, const float *A, size_t lda,
                            const float *Bp, float *C, size_t ldc);

/* U upper triangular with UᵀU = H⁻¹ (the Cholesky factor of the inverse, as
 * GPTQ needs it), for H symmetric positive definite, n x n row-major; only
 * H's upper triangle is read. Computed as P·H·P = L·Lᵀ (P reverses the
 * order), then U = P·L⁻¹·P, both blocked, every sum a fixed sequence of
 * sq_la_dot calls. Returns 0, or -1 when H is not numerically positive
 * definite. U may be H itself (H is copied before U is written); work holds
 * n*n doubles, distinct from both. n_threads splits panel rows, trailing
 * updates and the inverse's columns (same bits for any count). */
int sq_la_chol_inv_upper(sq_isa isa, const double *H, uint64_t n, double *U, double *work, int n_threads);

#endif
