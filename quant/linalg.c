/* Deterministic dense linear algebra (see linalg.h for the contract). */
#include "linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- dot product (float64) ---------------- */
static double dot_portable(const double *a, const double *b, uint64_t n) {
    double l[8] = {0};
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) l[k] = fma(a[i + k], b[i + k], l[k]);
    double s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
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
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd(); /* lanes 0-3, 4-7 */
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        lo = _mm256_fmadd_pd(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i), lo);
        hi = _mm256_fmadd_pd(_mm256_loadu_pd(a + i + 4), _mm256_loadu_pd(b + i + 4), hi);
    }
    __m256d v = _mm256_add_pd(lo, hi);                                                   /* l_k + l_{k+4} */
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));      /* (v0+v2, v1+v3) */
    double s = _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
    for (; i < n; i++) s = fma(a[i], b[i], s);
    return s;
}

AVX512 static double dot_avx512(const double *a, const double *b, uint64_t n) {
    __m512d l = _mm512_setzero_pd();
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) l = _mm512_fmadd_pd(_mm512_loadu_pd(a + i), _mm512_loadu_pd(b + i), l);
    __m256d v = _mm256_add_pd(_mm512_castpd512_pd256(l), _mm512_extractf64x4_pd(l, 1));
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    double s = _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));
    for (; i < n; i++) s = fma(a[i], b[i], s);
    return s;
}

/* 4 rows x 16 columns of C over all of K. */
AVX2 static void mm_micro_avx2(int sub, uint64_t K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                               size_t ldc) {
    __m256 c[4][2];
    for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (uint64_t k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);
        for (int r = 0; r < 4; r++) {
            const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int h = 0; h < 2; h++) {
            float *o = C + r * ldc + 8 * h;
            _mm256_storeu_ps(o, sub ? _mm256_sub_ps(_mm256_loadu_ps(o), c[r][h]) : c[r][h]);
        }
}

/* 8 rows x 32 columns of C over all of K. */
AVX512 static void mm_micro_avx512(int sub, uint64_t K, const float *A, size_t lda, const float *B, size_t ldb,
                                   float *C, size_t ldc) {
    __m512 c[8][2];
    for (int r = 0; r < 8; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (uint64_t k = 0; k < K; k++) {
        const __m512 b0 = _mm512_loadu_ps(B + k * ldb), b1 = _mm512_loadu_ps(B + k * ldb + 16);
        for (int r = 0; r < 8; r++) {
            const __m512 a = _mm512_set1_ps(A[r * lda + k]);
            c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
        }
    }
    for (int r = 0; r < 8; r++)
        for (int h = 0; h < 2; h++) {
            float *o = C + r * ldc + 16 * h;
            _mm512_storeu_ps(o, sub ? _mm512_sub_ps(_mm512_loadu_ps(o), c[r][h]) : c[r][h]);
        }
}

typedef void (*mm_micro_fn)(int, uint64_t, const float *, size_t, const float *, size_t, float *, size_t);

/* Register tiles with the micro-kernel; ragged edges with the portable loop,
 * which computes each element the same way. */
static void matmul_tiled(mm_micro_fn micro, uint64_t MR, uint64_t NR, int sub, uint64_t R, uint64_t N, uint64_t K,
                         const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    const uint64_t mr = R - R % MR, nr = N - N % NR;
    for (uint64_t r = 0; r < mr; r += MR)
        for (uint64_t j = 0; j < nr; j += NR) micro(sub, K, A + r * lda, lda, B + j, ldb, C + r * ldc + j, ldc);
    if (nr < N) matmul_portable(sub, mr, N - nr, K, A, lda, B + nr, ldb, C + nr, ldc);
    if (mr < R) matmul_portable(sub, R - mr, N, K, A + mr * lda, lda, B, ldb, C + mr * ldc, ldc);
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

void sq_la_matmul_f32(sq_isa isa, int sub, uint64_t R, uint64_t N, uint64_t K, const float *A, size_t lda,
                      const float *B, size_t ldb, float *C, size_t ldc) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) {
        matmul_tiled(mm_micro_avx512, 8, 32, sub, R, N, K, A, lda, B, ldb, C, ldc);
        return;
    }
    if (isa == SQ_ISA_AVX2) {
        matmul_tiled(mm_micro_avx2, 4, 16, sub, R, N, K, A, lda, B, ldb, C, ldc);
        return;
    }
#endif
    (void)isa;
    matmul_portable(sub, R, N, K, A, lda, B, ldb, C, ldc);
}

/* ---------------- Cholesky factor of the inverse ---------------- */
typedef struct chol_ctx {
    sq_isa isa;
    const double *H;
    double *R, *Ut;
    uint64_t n, j;
} chol_ctx;

/* R[i][j] for i in [i0, i1) < j: column j of the reversed factorization. */
static void chol_column(void *p, uint64_t i0, uint64_t i1) {
    chol_ctx *c = p;
    const uint64_t n = c->n, j = c->j;
    const double *rj = c->R + j * n + j + 1;
    for (uint64_t i = i0; i < i1; i++)
        c->R[i * n + j] = (c->H[i * n + j] - sq_la_dot(c->isa, c->R + i * n + j + 1, rj, n - j - 1)) / c->R[j * n + j];
}

/* Columns [j0, j1) of U = R⁻¹, each stored as a row of Ut (Ut[j][i] = U[i][j]). */
static void inverse_columns(void *p, uint64_t j0, uint64_t j1) {
    chol_ctx *c = p;
    const uint64_t n = c->n;
    for (uint64_t j = j0; j < j1; j++) {
        double *uj = c->Ut + j * n;
        uj[j] = 1.0 / c->R[j * n + j];
        for (uint64_t i = j; i-- > 0;)
            uj[i] = -sq_la_dot(c->isa, c->R + i * n + i + 1, uj + i + 1, j - i) / c->R[i * n + i];
    }
}

#define PAR_MIN 256 /* below this many rows a column is not worth splitting */

int sq_la_chol_inv_upper(sq_isa isa, const double *H, uint64_t n, double *U, double *work, int n_threads) {
    chol_ctx c = {isa, H, work, U, n, 0};
    /* H = R·Rᵀ, R upper, from the last column to the first */
    for (uint64_t j = n; j-- > 0;) {
        const double *rj = work + j * n + j + 1;
        const double d = H[j * n + j] - sq_la_dot(isa, rj, rj, n - j - 1);
        if (!(d > 0) || !isfinite(d)) return -1;
        work[j * n + j] = sqrt(d);
        c.j = j;
        if (j >= PAR_MIN && n_threads > 1) sq_parallel_for(n_threads, j, chol_column, &c);
        else chol_column(&c, 0, j);
    }
    sq_parallel_for(n_threads, n, inverse_columns, &c);
    /* U from Ut: transpose in place, zero below the diagonal */
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = i + 1; j < n; j++) {
            U[i * n + j] = U[j * n + i];
            U[j * n + i] = 0;
        }
    for (uint64_t i = 0; i < n; i++) {
        if (!(U[i * n + i] > 0)) return -1;
        for (uint64_t j = i; j < n; j++)
            if (!isfinite(U[i * n + j])) return -1;
    }
    return 0;
}
