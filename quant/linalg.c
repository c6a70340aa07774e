/* Deterministic dense linear algebra (see linalg.h for the contract). */
#include "linalg.h"

#include <math.h>
#include <stdatomic.h>
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


/* ---------------- tiles of fixed-order dots (linalg_dot_tile.h) ---------------- */
#define TC 16 /* columns per dot tile */
#define TR 4  /* rows per dot tile */
typedef void (*dot_tile_fn)(uint64_t len, const double *const *a, const double *Bp, double *out);
#define TILE_ATTR
#define VT double
#define VW 1
#define V_ZERO 0.0
#define V_LOAD(p) (*(p))
#define V_BCAST(x) (x)
#define V_FMA(x, y, z) fma(x, y, z)
#define V_ADD(x, y) ((x) + (y))
#define V_STORE(p, v) (*(p) = (v))
#define V_PIN(v) (void)(v)
#define V_BARRIER() (void)0
#define V_SUB(x, y) ((x) - (y))
#define V_DIV(x, y) ((x) / (y))
#define TILE_PANEL tile_panel_portable
#define TILE_LANE tile_lane_portable
#define TILE_G64 tile_g64_portable
#define TILE_PUT tile_put_portable
#define TILE_ADDM tile_addm_portable
#define TILE_ADDR tile_addr_portable
#define TILE_G tile_g_portable
#define TILE_ONE tile_one_portable
#define TILE_BODY tile_body_portable
#define TILE_R4_64 tile_r4_64_portable
#define TILE_R1 tile_r1_portable
#include "linalg_dot_tile.h"
#include "linalg_tile_undef.h"

/* ---------------- w[j] -= e·u[j] (float32, product rounded, then the difference) ---------------- */
static void sub_scaled_portable(float *w, float e, const float *u, uint64_t n) {
    for (uint64_t j = 0; j < n; j++) w[j] -= e * u[j];
}

static void axpy_f64_portable(double *y, double a, const double *x, uint64_t n) {
    for (uint64_t j = 0; j < n; j++) y[j] = fma(a, x[j], y[j]);
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


#define TILE_ATTR AVX2
#define VT __m256d
#define VW 4
#define V_ZERO _mm256_setzero_pd()
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_BCAST(x) _mm256_set1_pd(x)
#define V_FMA(x, y, z) _mm256_fmadd_pd(x, y, z)
#define V_ADD(x, y) _mm256_add_pd(x, y)
#define V_STORE(p, v) _mm256_storeu_pd(p, v)
#define V_PIN(v) __asm__ volatile("" : "+x"(v))
#define V_BARRIER() __asm__ volatile("" ::: "memory")
#define V_SUB(x, y) _mm256_sub_pd(x, y)
#define V_DIV(x, y) _mm256_div_pd(x, y)
#define TILE_PANEL tile_panel_avx2
#define TILE_LANE tile_lane_avx2
#define TILE_G64 tile_g64_avx2
#define TILE_PUT tile_put_avx2
#define TILE_ADDM tile_addm_avx2
#define TILE_ADDR tile_addr_avx2
#define TILE_G tile_g_avx2
#define TILE_ONE tile_one_avx2
#define TILE_BODY tile_body_avx2
#define TILE_R4_64 tile_r4_64_avx2
#define TILE_R1 tile_r1_avx2
#include "linalg_dot_tile.h"
#include "linalg_tile_undef.h"

#define TILE_ATTR AVX512
#define VT __m512d
#define VW 8
#define V_ZERO _mm512_setzero_pd()
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_BCAST(x) _mm512_set1_pd(x)
#define V_FMA(x, y, z) _mm512_fmadd_pd(x, y, z)
#define V_ADD(x, y) _mm512_add_pd(x, y)
#define V_STORE(p, v) _mm512_storeu_pd(p, v)
#define V_PIN(v) __asm__ volatile("" : "+v"(v))
#define V_BARRIER() __asm__ volatile("" ::: "memory")
#define V_SUB(x, y) _mm512_sub_pd(x, y)
#define V_DIV(x, y) _mm512_div_pd(x, y)
#define TILE_PANEL tile_panel_avx512
#define TILE_LANE tile_lane_avx512
#define TILE_G64 tile_g64_avx512
#define TILE_PUT tile_put_avx512
#define TILE_ADDM tile_addm_avx512
#define TILE_ADDR tile_addr_avx512
#define TILE_G tile_g_avx512
#define TILE_ONE tile_one_avx512
#define TILE_BODY tile_body_avx512
#define TILE_R4_64 tile_r4_64_avx512
#define TILE_R1 tile_r1_avx512
#include "linalg_dot_tile.h"
#include "linalg_tile_undef.h"

AVX2 static void sub_scaled_avx2(float *w, float e, const float *u, uint64_t n) {
    const __m256 ev = _mm256_set1_ps(e);
    uint64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(w + j, _mm256_sub_ps(_mm256_loadu_ps(w + j), _mm256_mul_ps(ev, _mm256_loadu_ps(u + j))));
    for (; j < n; j++) w[j] -= e * u[j];
}

AVX2 static void axpy_f64_avx2(double *y, double a, const double *x, uint64_t n) {
    const __m256d av = _mm256_set1_pd(a);
    uint64_t j = 0;
    for (; j + 4 <= n; j += 4) _mm256_storeu_pd(y + j, _mm256_fmadd_pd(av, _mm256_loadu_pd(x + j), _mm256_loadu_pd(y + j)));
    for (; j < n; j++) y[j] = fma(a, x[j], y[j]);
}

AVX512 static void axpy_f64_avx512(double *y, double a, const double *x, uint64_t n) {
    const __m512d av = _mm512_set1_pd(a);
    uint64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm512_storeu_pd(y + j, _mm512_fmadd_pd(av, _mm512_loadu_pd(x + j), _mm512_loadu_pd(y + j)));
    if (j < n) {
        const __mmask8 m = (__mmask8)((1u << (n - j)) - 1);
        _mm512_mask_storeu_pd(y + j, m, _mm512_fmadd_pd(av, _mm512_maskz_loadu_pd(m, x + j), _mm512_maskz_loadu_pd(m, y + j)));
    }
}

AVX512 static void sub_scaled_avx512(float *w, float e, const float *u, uint64_t n) {
    const __m512 ev = _mm512_set1_ps(e);
    uint64_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(w + j, _mm512_sub_ps(_mm512_loadu_ps(w + j), _mm512_mul_ps(ev, _mm512_loadu_ps(u + j))));
    if (j < n) {
        const __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
        const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, w + j), _mm512_mul_ps(ev, _mm512_maskz_loadu_ps(m, u + j)));
        _mm512_mask_storeu_ps(w + j, m, d);
    }
}

enum { MM_FIRST, MM_CONT, MM_SUB }; /* MM_SUB: the tile's sums are subtracted from acc */

/* Micro-kernels over packed panels: acc[MR][NR] (row stride ldacc) starts
 * at zero (mode MM_FIRST, MM_SUB) or at its stored partial sums (MM_CONT),
 * adds kb products per
 * element in k order; Ap holds A as [k][MR], Bp holds B as [k][NR]. Storing
 * and reloading a float partial sum is exact, so blocking over k leaves every
 * element's sequence of fused multiply-adds unchanged. The loops over the
 * tile are unrolled so that -O2 keeps the accumulators in registers. */
AVX2 static void mm_micro_avx2(uint64_t kb, const float *Ap, const float *Bp, float *acc, size_t ldacc, int mode) {
    const int first = mode != MM_CONT;
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
        for (int h = 0; h < 2; h++) {
            float *o = acc + r * ldacc + 8 * h;
            _mm256_storeu_ps(o, mode == MM_SUB ? _mm256_sub_ps(_mm256_loadu_ps(o), c[r][h]) : c[r][h]);
        }
}

AVX512 static void mm_micro_avx512(uint64_t kb, const float *Ap, const float *Bp, float *acc, size_t ldacc, int mode) {
    const int first = mode != MM_CONT;
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
        for (int h = 0; h < 2; h++) {
            float *o = acc + r * ldacc + 16 * h;
            _mm512_storeu_ps(o, mode == MM_SUB ? _mm512_sub_ps(_mm512_loadu_ps(o), c[r][h]) : c[r][h]);
        }
}

typedef void (*mm_micro_fn)(uint64_t, const float *, const float *, float *, size_t, int);

#define KC 128 /* k per packed panel: a B strip (KC x 32 floats) stays in L1 */
#define NC 256 /* columns per packed panel (a multiple of every NR) */
#define MAX_MR 8

/* Register tiles over packed panels (B: KC x NC, A: MR x KC per row strip),
 * summed into a scratch copy of C padded to whole tiles; ragged edges are
 * zero-padded in the panels, so every element, edge or not, gets the same
 * sequence of fused multiply-adds as in the portable loop. */
/* B (K x N) as strips of NR columns, [strip][k][NR], zeros past column N. */
static void pack_strips(uint64_t NR, uint64_t K, uint64_t N, const float *B, size_t ldb, float *Bp) {
    for (uint64_t j = 0; j < N; j += NR) {
        const uint64_t w = N - j < NR ? N - j : NR;
        for (uint64_t k = 0; k < K; k++) {
            float *dst = Bp + j * K + k * NR;
            memcpy(dst, B + k * ldb + j, w * sizeof(float));
            memset(dst + w, 0, (NR - w) * sizeof(float));
        }
    }
}

/* K <= KC over B packed by pack_strips: each element's whole sum stays in
 * the registers of one tile, so the tiles write C directly (edge tiles
 * through a small buffer); each B strip is read once, for every row strip. */
static int matmul_strips(mm_micro_fn micro, uint64_t MR, uint64_t NR, int sub, uint64_t R, uint64_t N, uint64_t K,
                         const float *A, size_t lda, const float *Bp, float *C, size_t ldc) {
    const uint64_t Rp = (R + MR - 1) / MR * MR;
    float *Ap = malloc((Rp * K + 1) * sizeof(float)), tile[MAX_MR * 32];
    if (!Ap) return -1;
    for (uint64_t r = 0; r < Rp; r += MR) /* A as [strip][k][MR], zeros past row R */
        for (uint64_t k = 0; k < K; k++)
            for (uint64_t i = 0; i < MR; i++) Ap[r * K + k * MR + i] = r + i < R ? A[(r + i) * lda + k] : 0.0f;
    for (uint64_t j = 0; j < N; j += NR)
        for (uint64_t r = 0; r < R; r += MR) {
            if (r + MR <= R && j + NR <= N) {
                micro(K, Ap + r * K, Bp + j * K, C + r * ldc + j, ldc, sub ? MM_SUB : MM_FIRST);
                continue;
            }
            micro(K, Ap + r * K, Bp + j * K, tile, NR, MM_FIRST);
            for (uint64_t i = 0; i < MR && r + i < R; i++)
                for (uint64_t q = 0; q < NR && j + q < N; q++) {
                    float *c = C + (r + i) * ldc + j + q;
                    *c = sub ? *c - tile[i * NR + q] : tile[i * NR + q];
                }
        }
    free(Ap);
    return 0;
}

static int matmul_one_panel(mm_micro_fn micro, uint64_t MR, uint64_t NR, int sub, uint64_t R, uint64_t N, uint64_t K,
                            const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    float *Bp = malloc(((N + NR - 1) / NR * NR * K + 1) * sizeof(float));
    if (!Bp) return -1;
    pack_strips(NR, K, N, B, ldb, Bp);
    const int rc = matmul_strips(micro, MR, NR, sub, R, N, K, A, lda, Bp, C, ldc);
    free(Bp);
    return rc;
}

static int matmul_tiled(mm_micro_fn micro, uint64_t MR, uint64_t NR, int sub, uint64_t R, uint64_t N, uint64_t K,
                         const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    if (K > 0 && K <= KC) return matmul_one_panel(micro, MR, NR, sub, R, N, K, A, lda, B, ldb, C, ldc);
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
                for (uint64_t js = 0; js < nb; js += NR) micro(kb, Ap, Bp + js * kb, acc + r * Np + j0 + js, Np, k0 == 0 ? MM_FIRST : MM_CONT);
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

void sq_la_sub_scaled_f32(sq_isa isa, float *w, float e, const float *u, uint64_t n) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) {
        sub_scaled_avx512(w, e, u, n);
        return;
    }
    if (isa == SQ_ISA_AVX2) {
        sub_scaled_avx2(w, e, u, n);
        return;
    }
#endif
    (void)isa;
    sub_scaled_portable(w, e, u, n);
}

void sq_la_axpy_f64(sq_isa isa, double *y, double a, const double *x, uint64_t n) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) {
        axpy_f64_avx512(y, a, x, n);
        return;
    }
    if (isa == SQ_ISA_AVX2) {
        axpy_f64_avx2(y, a, x, n);
        return;
    }
#endif
    (void)isa;
    axpy_f64_portable(y, a, x, n);
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

/* The strips' width per ISA (the micro-kernel's NR); 0: row-major, untiled. */
static uint64_t strip_width(sq_isa isa) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) return 32;
    if (isa == SQ_ISA_AVX2) return 16;
#endif
    (void)isa;
    return 0;
}

uint64_t sq_la_packed_floats(sq_isa isa, uint64_t K, uint64_t N) {
    const uint64_t NR = strip_width(isa);
    return NR ? (N + NR - 1) / NR * NR * K : N * K;
}

void sq_la_pack_f32(sq_isa isa, uint64_t K, uint64_t N, const float *B, size_t ldb, float *Bp) {
    const uint64_t NR = strip_width(isa);
    if (NR) {
        pack_strips(NR, K, N, B, ldb, Bp);
        return;
    }
    for (uint64_t k = 0; k < K; k++) memcpy(Bp + k * N, B + k * ldb, N * sizeof(float));
}

int sq_la_matmul_packed_f32(sq_isa isa, int sub, uint64_t R, uint64_t N, uint64_t K, const float *A, size_t lda,
                            const float *Bp, float *C, size_t ldc) {
    if (K == 0 || K > SQ_LA_PACKED_MAX_K) return -1;
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) return matmul_strips(mm_micro_avx512, 8, 32, sub, R, N, K, A, lda, Bp, C, ldc);
    if (isa == SQ_ISA_AVX2) return matmul_strips(mm_micro_avx2, 6, 16, sub, R, N, K, A, lda, Bp, C, ldc);
#endif
    (void)isa;
    matmul_portable(sub, R, N, K, A, lda, Bp, N, C, ldc);
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

typedef void (*panel_fn)(double *T, const double *D, size_t ldd, uint64_t w);
typedef void (*tile64_fn)(const double *const *a, const double *Bp, double *out, size_t ldo, int mode);
typedef struct dot_tiles {
    tile64_fn r4_64;
    dot_tile_fn r1;
    panel_fn panel;
} dot_tiles;

static dot_tiles tiles_for(sq_isa isa) {
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX512) return (dot_tiles){tile_r4_64_avx512, tile_r1_avx512, tile_panel_avx512};
    if (isa == SQ_ISA_AVX2) return (dot_tiles){tile_r4_64_avx2, tile_r1_avx2, tile_panel_avx2};
#endif
    (void)isa;
    return (dot_tiles){tile_r4_64_portable, tile_r1_portable, tile_panel_portable};
}

typedef struct chol_ctx {
    sq_isa isa;
    dot_tiles tl;
    double *A;  /* lower: the reversed H, then L in place */
    double *X;  /* rows j hold column j of L⁻¹ (X[j][i] = (L⁻¹)[i][j], i >= j) */
    double *Pk; /* the panel L[e:n][J:e] as tiles of TC rows, [k][TC] each; NULL: untiled */
    double *Lr; /* the same panel row-major, NB per row: rows n apart share L1 sets at n = 4096 */
    uint64_t n, J, e;
    atomic_uint_fast64_t next; /* the next task a worker takes */
    uint64_t tasks;
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

/* The panel's rows [e, n) below its diagonal block, TC rows per task: each
 * row's values need only its own earlier ones and the factored diagonal
 * block, so the rows go in parallel with one barrier per panel (not one per
 * column). The rows are solved transposed, which is also the packed tile
 * the trailing update reads (Pk), and copied row-major into Lr. */
static void panel_task(chol_ctx *c, uint64_t t) {
    const uint64_t n = c->n, J = c->J, e = c->e, w = e - J, i0 = e + t * TC;
    double T[NB * TC];
    for (uint64_t m = 0; m < w; m++)
        for (uint64_t r = 0; r < TC; r++) T[m * TC + r] = i0 + r < n ? c->A[(i0 + r) * n + J + m] : 0.0;
    c->tl.panel(T, c->A + J * n + J, n, w);
    for (uint64_t r = 0; r < TC && i0 + r < n; r++)
        for (uint64_t m = 0; m < w; m++) c->A[(i0 + r) * n + J + m] = T[m * TC + r];
    if (!c->Pk) return;
    memcpy(c->Pk + t * TC * NB, T, NB * TC * sizeof(double)); /* w = NB whenever rows follow */
    for (uint64_t r = 0; r < TC && i0 + r < n; r++)
        for (uint64_t m = 0; m < NB; m++) c->Lr[(i0 + r - e) * NB + m] = T[m * TC + r];
}

static void panel_worker(void *p, uint64_t w0, uint64_t w1) {
    chol_ctx *c = p;
    (void)w0, (void)w1;
    for (uint64_t t; (t = atomic_fetch_add(&c->next, 1)) < c->tasks;) panel_task(c, t);
}

/* Trailing update after panel [J, e): A[i][k] -= L[i][J:e]·L[k][J:e] for
 * e <= k <= i (one whole NB segment each), rows in tasks of IT taken
 * heaviest first, columns in dot tiles of TC over the packed panel. */
static void trailing_task(chol_ctx *c, uint64_t t) {
    const uint64_t n = c->n, J = c->J, e = c->e;
    const uint64_t r0 = e + t * IT, r1 = r0 + IT < n ? r0 + IT : n;
    if (!c->Pk) { /* untiled: the same dots one at a time */
        for (uint64_t k0 = e; k0 < r1; k0 += NB)
            for (uint64_t i = r0; i < r1; i++) {
                const double *li = c->A + i * n + J;
                const uint64_t k1 = k0 + NB < i + 1 ? k0 + NB : i + 1;
                for (uint64_t k = k0; k < k1; k++) c->A[i * n + k] -= sq_la_dot(c->isa, li, c->A + k * n + J, e - J);
            }
        return;
    }
    double out[TR * TC];
    for (uint64_t k0 = e; k0 < r1; k0 += TC) {
        const double *Bp = c->Pk + (k0 - e) * NB;
        for (uint64_t i0 = k0 > r0 ? r0 + (k0 - r0) / TR * TR : r0; i0 < r1; i0 += TR) {
            const double *a[TR];
            for (uint64_t r = 0; r < TR; r++) a[r] = c->Lr + ((i0 + r < r1 ? i0 + r : r1 - 1) - e) * NB;
            if (i0 + TR <= r1 && k0 + TC <= i0 + 1) { /* a whole tile below the diagonal */
                c->tl.r4_64(a, Bp, c->A + i0 * n + k0, n, -1);
                continue;
            }
            c->tl.r4_64(a, Bp, out, TC, 0);
            for (uint64_t r = 0; r < TR && i0 + r < r1; r++) {
                const uint64_t i = i0 + r;
                for (uint64_t q = 0; q < TC && k0 + q <= i; q++) c->A[i * n + k0 + q] -= out[r * TC + q];
            }
        }
    }
}

static void trailing_worker(void *p, uint64_t w0, uint64_t w1) {
    chol_ctx *c = p;
    (void)w0, (void)w1;
    for (uint64_t t; (t = atomic_fetch_add(&c->next, 1)) < c->tasks;) trailing_task(c, c->tasks - 1 - t);
}

/* Columns [j0, j1) of L⁻¹ (one NB block), untiled: row by row, each value
 * one seg_dot. */
static void inverse_group_untiled(chol_ctx *c, uint64_t j0, uint64_t j1, uint64_t i_end) {
    const uint64_t n = c->n;
    for (uint64_t i = j0 + 1; i < i_end; i++) {
        const double *li = c->A + i * n, d = c->A[i * n + i];
        for (uint64_t j = j0; j < j1 && j < i; j++) {
            double *xj = c->X + j * n;
            xj[i] = -seg_dot(c->isa, li, xj, j, i) / d;
        }
    }
}

/* Columns [j0, j1) of L⁻¹ (one NB block) with dot tiles. Below the block's
 * diagonal square, X[j][i] = -(Σ over the NB-grid segments of [j, i), in
 * order) / L[i][i]: the first segment [j, j0 + NB) by tiles over TC rows,
 * the whole segments by tiles over row blocks of NB and the columns packed
 * in groups of TC (Xp), the last, partial one [I, i) row by row, since it
 * reads the values just computed. acc holds NB x NB partial sums, Lt and Lb
 * NB x NB values of L (Lb a contiguous copy of the block the tiles read: rows
 * n apart would share a few L1 sets). */
static void inverse_group_tiled(chol_ctx *c, uint64_t j0, uint64_t j1, double *Xp, double *acc, double *Lt, double *Lb) {
    const uint64_t n = c->n, nc = j1 - j0, ng = (nc + TC - 1) / TC, base = j0 + NB, len = n - base;
    const double *A = c->A;
    double *X = c->X, out[TR * TC];
    inverse_group_untiled(c, j0, j1, base < n ? base : n);
    for (uint64_t I = base; I < n; I += NB) {
        const uint64_t I1 = I + NB < n ? I + NB : n;
        /* first segments: TC rows at a time (L's block transposed into Lt)
         * against each column's own start, as one dot per element */
        for (uint64_t g = 0; g * TC < I1 - I; g++)
            for (uint64_t m = 0; m < NB; m++)
                for (uint64_t k = 0; k < TC; k++)
                    Lt[(g * NB + m) * TC + k] = I + g * TC + k < I1 ? A[(I + g * TC + k) * n + j0 + m] : 0.0;
        for (uint64_t j = j0; j < j1; j++) {
            const double *xa[TR] = {X + j * n + j, X + j * n + j, X + j * n + j, X + j * n + j};
            for (uint64_t g = 0; g * TC < I1 - I; g++) {
                c->tl.r1(base - j, xa, Lt + (g * NB + j - j0) * TC, out);
                for (uint64_t k = 0; k < TC && I + g * TC + k < I1; k++) acc[(g * TC + k) * NB + j - j0] = 0.0 + out[k];
            }
        }
        for (uint64_t q = base; q < I; q += NB) {
            for (uint64_t i = I; i < I1; i++) memcpy(Lb + (i - I) * NB, A + i * n + q, NB * sizeof(double));
            if (q + NB < I) /* the next block, to L2 while this one's tiles run (each row its own page) */
                for (uint64_t i = I; i < I1; i++)
                    for (uint64_t m = 0; m < NB; m += 8) __builtin_prefetch(A + i * n + q + NB + m, 0, 2);
            for (uint64_t g = 0; g < ng; g++) {
                const double *Bp = Xp + (g * len + q - base) * TC;
                for (uint64_t i0 = I; i0 < I1; i0 += TR) {
                    const double *a[TR];
                    for (uint64_t r = 0; r < TR; r++) a[r] = Lb + ((i0 + r < I1 ? i0 + r : I1 - 1) - I) * NB;
                    if (i0 + TR <= I1 && (g + 1) * TC <= nc) {
                        c->tl.r4_64(a, Bp, acc + (i0 - I) * NB + g * TC, NB, 1);
                        continue;
                    }
                    c->tl.r4_64(a, Bp, out, TC, 0);
                    for (uint64_t r = 0; r < TR && i0 + r < I1; r++)
                        for (uint64_t k = 0; k < TC && g * TC + k < nc; k++)
                            acc[(i0 + r - I) * NB + g * TC + k] += out[r * TC + k];
                }
            }
        }
        for (uint64_t i = I; i < I1; i++) {
            const double *a[TR], d = A[i * n + i];
            for (uint64_t r = 0; r < TR; r++) a[r] = A + i * n + I;
            for (uint64_t g = 0; g < ng; g++) {
                double *xp = Xp + (g * len + I - base) * TC, *ac = acc + (i - I) * NB + g * TC;
                if (i > I) {
                    c->tl.r1(i - I, a, xp, out);
                    for (uint64_t k = 0; k < TC && g * TC + k < nc; k++) ac[k] += out[k];
                }
                for (uint64_t k = 0; k < TC; k++) {
                    const double x = g * TC + k < nc ? -ac[k] / d : 0.0;
                    if (g * TC + k < nc) X[(j0 + g * TC + k) * n + i] = x;
                    xp[(i - I) * TC + k] = x;
                }
            }
        }
    }
}

/* Workers take NB-column blocks of L⁻¹, the widest (first) first. */
static void inverse_worker(void *p, uint64_t w0, uint64_t w1) {
    chol_ctx *c = p;
    const uint64_t n = c->n;
    (void)w0, (void)w1;
    double *Xp = malloc((n + TC) * NB * sizeof(double)), *acc = malloc(NB * NB * sizeof(double));
    double *Lt = malloc(NB * NB * sizeof(double)), *Lb = malloc(NB * NB * sizeof(double));
    for (uint64_t t; (t = atomic_fetch_add(&c->next, 1)) < c->tasks;) {
        const uint64_t j0 = t * NB, j1 = j0 + NB < n ? j0 + NB : n;
        for (uint64_t j = j0; j < j1; j++) c->X[j * n + j] = 1.0 / c->A[j * n + j];
        if (Xp && acc && Lt && Lb) inverse_group_tiled(c, j0, j1, Xp, acc, Lt, Lb);
        else inverse_group_untiled(c, j0, j1, n); /* no memory for the tiles: the same values */
    }
    free(Xp);
    free(acc);
    free(Lt);
    free(Lb);
}


int sq_la_chol_inv_upper(sq_isa isa, const double *H, uint64_t n, double *U, double *work, int n_threads) {
    chol_ctx c = {.isa = isa, .tl = tiles_for(isa), .A = work, .X = U, .n = n};
    c.Pk = n > NB ? malloc((n + TC) * NB * sizeof(double)) : NULL; /* NULL: untiled, the same values */
    c.Lr = c.Pk ? malloc(n * NB * sizeof(double)) : NULL;
    if (!c.Lr) {
        free(c.Pk);
        c.Pk = NULL;
    }
    for (uint64_t i = 0; i < n; i++) /* A = P·H·P, lower triangle (H's upper) */
        for (uint64_t j = 0; j <= i; j++) work[i * n + j] = H[(n - 1 - i) * n + (n - 1 - j)];
    for (uint64_t J = 0; J < n; J += NB) {
        const uint64_t e = J + NB < n ? J + NB : n;
        c.J = J;
        c.e = e;
        for (uint64_t j = J; j < e; j++) {
            const double *lj = work + j * n + J;
            double d = work[j * n + j] - sq_la_dot(isa, lj, lj, j - J);
            if (!(d > 0) || !isfinite(d)) {
                free(c.Pk);
                free(c.Lr);
                return -1;
            }
            work[j * n + j] = d = sqrt(d);
            for (uint64_t i = j + 1; i < e; i++) /* the diagonal block's rows */
                work[i * n + j] = (work[i * n + j] - sq_la_dot(isa, work + i * n + J, lj, j - J)) / d;
        }
        if (e < n) {
            c.tasks = (n - e + TC - 1) / TC;
            atomic_store(&c.next, 0);
            sq_parallel_for(n_threads, n_threads, panel_worker, &c);
            c.tasks = (n - e + IT - 1) / IT;
            atomic_store(&c.next, 0);
            sq_parallel_for(n_threads, n_threads, trailing_worker, &c);
        }
    }
    free(c.Pk);
    free(c.Lr);
    c.tasks = (n + NB - 1) / NB;
    atomic_store(&c.next, 0);
    sq_parallel_for(n_threads, n_threads, inverse_worker, &c);
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
