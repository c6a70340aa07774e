/* Deterministic dense linear algebra (see linalg.h for the contract). */
#include "linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- dot product (float64) ---------------- */
/* 32 lanes (four independent vectors of 8, so the FMA chains overlap):
 * l[i % 32] = fma(a_i, b_i, l), the four groups of 8 added as
 * (g0 + g1) + (g2 + g3), the 8 sums as ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)),
 * then the tail by fma in order. */
static double sum8(const double v[8]) { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }

static double dot_portable(const double *a, const double *b, uint64_t n) {
    double l[32] = {0};
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 32; k++) l[k] = fma(a[i + k], b[i + k], l[k]);
    double g[8];
    for (int k = 0; k < 8; k++) g[k] = (l[k] + l[8 + k]) + (l[16 + k] + l[24 + k]);
    double s = sum8(g);
    for (; i < n; i++) s = fma(a[i], b[i], s);
    return s;
}

/* ---------------- C (-)= A·B (float32) ---------------- */
#define PCOLS 256 /* accumulator columns of the portable kernel */

static void matmul_portable(int sub, uint64_t R, uint64_t N, uint64_t K, const float *A, size_t lda, const float *B,
                            size_t ldb, float *C, size_t ldc) {
    float acc[PCOLS];
    for (uint64_t r = 0; r < R; r++)
        for (uint64_t j0 = 0; j0 < N; j0 += PCOLS) {
            const uint64_t nj = N - j0 < PCOLS ? N - j0 : PCOLS;
            memset(acc, 0, sizeof acc);
            for (uint64_t k = 0; k < K; k++) {
                const float a = A[r * lda + k], *b = B + k * ldb + j0;
                for (uint64_t j = 0; j < nj; j++) acc[j] = fmaf(a, b[j], acc[j]);
            }
            float *c = C + r * ldc + j0;
            for (uint64_t j = 0; j < nj; j++) c[j] = sub ? c[j] - acc[j] : acc[j];
        }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx2,fma,avx512f")))

AVX2 static double dot_avx2(const double *a, const double *b, uint64_t n) {
    __m256d l[8]; /* lanes 4q..4q+3 */
    for (int q = 0; q < 8; q++) l[q] = _mm256_setzero_pd();
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32)
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) l[q] = _mm256_fmadd_pd(_mm256_loadu_pd(a + i + 4 * q), _mm256_loadu_pd(b + i + 4 * q), l[q]);
    /* group g of 8 lanes is (l[2g], l[2g+1]); (g0 + g1) + (g2 + g3) per half */
    const __m256d lo = _mm256_add_pd(_mm256_add_pd(l[0], l[2]), _mm256_add_pd(l[4], l[6]));
    const __m256d hi = _mm256_add_pd(_mm256_add_pd(l[1], l[3]), _mm256_add_pd(l[5], l[7]));
    const __m256d v = _mm256_add_pd(lo, hi);                                             /* s_k + s_{k+4} */
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1)); /* pairs (0,2), (1,3) */
    double s = _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
    for (; i < n; i++) s = fma(a[i], b[i], s);
    return s;
}

AVX512 static double dot_avx512(const double *a, const double *b, uint64_t n) {
    __m512d l[4];
    for (int q = 0; q < 4; q++) l[q] = _mm512_setzero_pd();
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) l[q] = _mm512_fmadd_pd(_mm512_loadu_pd(a + i + 8 * q), _mm512_loadu_pd(b + i + 8 * q), l[q]);
    const __m512d g = _mm512_add_pd(_mm512_add_pd(l[0], l[1]), _mm512_add_pd(l[2], l[3]));
    const __m256d v = _mm256_add_pd(_mm512_castpd512_pd256(g), _mm512_extractf64x4_pd(g, 1));
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    double s = _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
    for (; i < n; i++) s = fma(a[i], b[i], s);
    return s;
}

/* Micro-kernels over packed panels: acc[MR][NR] (row stride ldacc) starts
 * at zero (first) or at its stored partial sums, and adds kb products per
 * element in k order; Ap holds A as [k][MR], Bp holds B as [k][NR]. Storing
 * and reloading a float partial sum is exact, so blocking over k leaves every
 * element's sequence of fused multiply-adds unchanged. The loops over the
 * tile are unrolled so that -O2 keeps the accumulators in registers. */
AVX2 static void mm_micro_avx2(uint64_t kb, const float *Ap, const float *Bp, float *acc, size_t ldacc, int first) {
    __m256 c[6][2];
#pragma GCC unroll 8
    for (int r = 0; r < 6; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) c[r][h] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + r * ldacc + 8 * h);
    for (uint64_t k = 0; k < kb; k++, Ap += 6, Bp += 16) {
        const __m256 b0 = _mm256_loadu_ps(Bp), b1 = _mm256_loadu_ps(Bp + 8);
#pragma GCC unroll 8
        for (int r = 0; r < 6; r++) {
            const __m256 a = _mm256_broadcast_ss(Ap + r);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 6; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) _mm256_storeu_ps(acc + r * ldacc + 8 * h, c[r][h]);
}

AVX512 static void mm_micro_avx512(uint64_t kb, const float *Ap, const float *Bp, float *acc, size_t ldacc, int first) {
    __m512 c[8][2];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) c[r][h] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * ldacc + 16 * h);
    for (uint64_t k = 0; k < kb; k++, Ap += 8, Bp += 32) {
        const __m512 b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            const __m512 a = _mm512_set1_ps(Ap[r]);
            c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) _mm512_storeu_ps(acc + r * ldacc + 16 * h, c[r][h]);
}

typedef void (*mm_micro_fn)(uint64_t, const float *, const float *, float *, size_t, int);

#define KC 128 /* k per packed panel: a B strip (KC x 32 floats) stays in L1 */
#define NC 256 /* columns per packed panel (a multiple of every NR) */
#define MAX_MR 8

/* Register tiles over packed panels (B: KC x NC, A: MR x KC per row strip),
 * summed into a scratch copy of C padded to whole tiles; ragged edges are
 * zero-padded in the panels, so every element, edge or not, gets the same
 * sequence of fused multiply-adds as in the portable loop. */
static int matmul_tiled(mm_micro_fn micro, uint64_t MR, uint64_t NR, int sub, uint64_t R, uint64_t N, uint64_t K,
                         const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    const uint64_t Rp = (R + MR - 1) / MR * MR, Np = (N + NR - 1) / NR * NR;
    float *Bp = malloc(KC * NC * sizeof(float)), *Ap = malloc(MAX_MR * KC * sizeof(float));
    float *acc = calloc(Rp * Np + 1, sizeof(float)); /* zero: also the result when K = 0 */
    if (!Bp || !Ap || !acc) {
        free(Bp);
        free(Ap);
        free(acc);
        return -1;
    }
    for (uint64_t j0 = 0; j0 < Np; j0 += NC) {
        const uint64_t nb = Np - j0 < NC ? Np - j0 : NC;
        for (uint64_t k0 = 0; k0 < K; k0 += KC) {
            const uint64_t kb = K - k0 < KC ? K - k0 : KC;
            for (uint64_t js = 0; js < nb; js += NR) /* B as [strip][k][NR], zeros past column N */
                for (uint64_t k = 0; k < kb; k++) {
                    float *dst = Bp + js * kb + k * NR;
                    const uint64_t j = j0 + js, w = j >= N ? 0 : N - j < NR ? N - j : NR;
                    memcpy(dst, B + (k0 + k) * ldb + j, w * sizeof(float));
                    memset(dst + w, 0, (NR - w) * sizeof(float));
                }
            for (uint64_t r = 0; r < Rp; r += MR) {
                for (uint64_t k = 0; k < kb; k++) /* A as [k][MR], zeros past row R */
                    for (uint64_t i = 0; i < MR; i++) Ap[k * MR + i] = r + i < R ? A[(r + i) * lda + k0 + k] : 0.0f;
                for (uint64_t js = 0; js < nb; js += NR) micro(kb, Ap, Bp + js * kb, acc + r * Np + j0 + js, Np, k0 == 0);
            }
        }
    }
    for (uint64_t r = 0; r < R; r++)
        for (uint64_t j = 0; j < N; j++) C[r * ldc + j] = sub ? C[r * ldc + j] - acc[r * Np + j] : acc[r * Np + j];
    free(acc);
    free(Bp);
    free(Ap);
    return 0;
}
#endif

double sq_la_dot(sq_isa isa, const double *a, const double *b, uint64_t n) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) return dot_avx512(a, b, n);
    if (isa == SQ_ISA_AVX2) return dot_avx2(a, b, n);
#endif
    (void)isa;
    return dot_portable(a, b, n);
}

int sq_la_matmul_f32(sq_isa isa, int sub, uint64_t R, uint64_t N, uint64_t K, const float *A, size_t lda,
                     const float *B, size_t ldb, float *C, size_t ldc) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) return matmul_tiled(mm_micro_avx512, 8, 32, sub, R, N, K, A, lda, B, ldb, C, ldc);
    if (isa == SQ_ISA_AVX2) return matmul_tiled(mm_micro_avx2, 6, 16, sub, R, N, K, A, lda, B, ldb, C, ldc);
#endif
    (void)isa;
    matmul_portable(sub, R, N, K, A, lda, B, ldb, C, ldc);
    return 0;
}

/* ---------------- Cholesky factor of the inverse ---------------- */
/* With P the reversal permutation, P·H·P = L·Lᵀ (L lower) gives H = R·Rᵀ
 * with R = P·L·P upper, so U = R⁻¹ = P·L⁻¹·P is upper with UᵀU = H⁻¹: one
 * Cholesky factorization and one triangular inverse, both blocked by NB so
 * that the rows they reread stay in cache. Every sum is a fixed sequence of
 * sq_la_dot calls over the segments of [start, end) that the global NB grid
 * cuts, in increasing order, so the result does not depend on the threads. */
#define NB 64 /* block of the factorization's grid */
#define IT 32 /* rows per task of the trailing update */
#define G 8   /* columns of the inverse per task (they share each row of L) */

typedef struct chol_ctx {
    sq_isa isa;
    double *A; /* lower: the reversed H, then L in place */
    double *X; /* rows j hold column j of L⁻¹ (X[j][i] = (L⁻¹)[i][j], i >= j) */
    uint64_t n, J, e, j;
} chol_ctx;

/* Σ_{k in [k0, k1)} a[k]·b[k] as the sum of one dot per NB-grid segment. */
static double seg_dot(sq_isa isa, const double *a, const double *b, uint64_t k0, uint64_t k1) {
    double acc = 0;
    for (uint64_t s = k0; s < k1;) {
        const uint64_t e = (s / NB + 1) * NB < k1 ? (s / NB + 1) * NB : k1;
        acc += sq_la_dot(isa, a + s, b + s, e - s);
        s = e;
    }
    return acc;
}

/* Column j of the current panel, rows [i0, i1) below the diagonal. */
static void panel_rows(void *p, uint64_t i0, uint64_t i1) {
    chol_ctx *c = p;
    const uint64_t n = c->n, J = c->J, j = c->j;
    const double *lj = c->A + j * n + J, d = c->A[j * n + j];
    for (uint64_t i = j + 1 + i0; i < j + 1 + i1; i++)
        c->A[i * n + j] = (c->A[i * n + j] - sq_la_dot(c->isa, c->A + i * n + J, lj, j - J)) / d;
}

/* Trailing update after panel [J, e): A[i][k] -= L[i][J:e]·L[k][J:e] for
 * e <= k <= i, rows in tasks of IT, columns in tiles of NB. */
static void trailing_rows(void *p, uint64_t t0, uint64_t t1) {
    chol_ctx *c = p;
    const uint64_t n = c->n, J = c->J, e = c->e;
    for (uint64_t t = t0; t < t1; t++) {
        const uint64_t r0 = e + t * IT, r1 = r0 + IT < n ? r0 + IT : n;
        for (uint64_t k0 = e; k0 < r1; k0 += NB)
            for (uint64_t i = r0; i < r1; i++) {
                const double *li = c->A + i * n + J;
                const uint64_t k1 = k0 + NB < i + 1 ? k0 + NB : i + 1;
                for (uint64_t k = k0; k < k1; k++) c->A[i * n + k] -= sq_la_dot(c->isa, li, c->A + k * n + J, e - J);
            }
    }
}

/* Columns of L⁻¹ in groups of G; task t takes a group from the front or the
 * back in turn, so contiguous task ranges get balanced work. */
static void inverse_groups(void *p, uint64_t t0, uint64_t t1) {
    chol_ctx *c = p;
    const uint64_t n = c->n, ng = (n + G - 1) / G;
    for (uint64_t t = t0; t < t1; t++) {
        const uint64_t g = t % 2 == 0 ? t / 2 : ng - 1 - t / 2, j0 = g * G, j1 = j0 + G < n ? j0 + G : n;
        for (uint64_t j = j0; j < j1; j++) c->X[j * n + j] = 1.0 / c->A[j * n + j];
        for (uint64_t i = j0 + 1; i < n; i++) {
            const double *li = c->A + i * n, d = c->A[i * n + i];
            for (uint64_t j = j0; j < j1 && j < i; j++) {
                double *xj = c->X + j * n;
                xj[i] = -seg_dot(c->isa, li, xj, j, i) / d;
            }
        }
    }
}

#define PAR_MIN 256 /* below this many rows a step is not worth splitting */

int sq_la_chol_inv_upper(sq_isa isa, const double *H, uint64_t n, double *U, double *work, int n_threads) {
    chol_ctx c = {isa, work, U, n, 0, 0, 0};
    for (uint64_t i = 0; i < n; i++) /* A = P·H·P, lower triangle (H's upper) */
        for (uint64_t j = 0; j <= i; j++) work[i * n + j] = H[(n - 1 - i) * n + (n - 1 - j)];
    for (uint64_t J = 0; J < n; J += NB) {
        const uint64_t e = J + NB < n ? J + NB : n;
        c.J = J;
        c.e = e;
        for (uint64_t j = J; j < e; j++) {
            const double *lj = work + j * n + J;
            const double d = work[j * n + j] - sq_la_dot(isa, lj, lj, j - J);
            if (!(d > 0) || !isfinite(d)) return -1;
            work[j * n + j] = sqrt(d);
            c.j = j;
            if (n - j - 1 >= PAR_MIN && n_threads > 1) sq_parallel_for(n_threads, n - j - 1, panel_rows, &c);
            else panel_rows(&c, 0, n - j - 1);
        }
        if (e < n) sq_parallel_for(n_threads, (n - e + IT - 1) / IT, trailing_rows, &c);
    }
    sq_parallel_for(n_threads, (n + G - 1) / G, inverse_groups, &c);
    /* U[i][j] = (L⁻¹)[n-1-i][n-1-j] = X[n-1-j][n-1-i]: a reflection across
     * the anti-diagonal, done in place by swapping pairs; zero below */
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = i; j < n; j++) {
            const uint64_t a = i * n + j, b = (n - 1 - j) * n + (n - 1 - i);
            if (a < b) {
                const double t = U[a];
                U[a] = U[b];
                U[b] = t;
            }
        }
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = 0; j < i; j++) U[i * n + j] = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!(U[i * n + i] > 0)) return -1;
        for (uint64_t j = i; j < n; j++)
            if (!isfinite(U[i * n + j])) return -1;
    }
    return 0;
}
