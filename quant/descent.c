/* The gradient for the coordinate descent (descent.h). */
#include "descent.h"

#include "linalg.h"

#include <math.h>

#define CHUNK 256 /* G columns per pass over H: R x 256 doubles (128 KiB for 64 rows) stay in L2 */

/* The definition, one axpy per (k, row): any ISA's fused axpy gives its bits. */
static void gradient_axpy(sq_isa isa, const double *E, uint64_t R, uint64_t K, const double *H, double lam, double *G) {
    for (uint64_t j0 = 0; j0 < K; j0 += CHUNK) {
        const uint64_t nj = K - j0 < CHUNK ? K - j0 : CHUNK;
        for (uint64_t r = 0; r < R; r++)
            for (uint64_t j = 0; j < nj; j++) G[r * K + j0 + j] = lam * E[r * K + j0 + j];
        for (uint64_t k = 0; k < K; k++)
            for (uint64_t r = 0; r < R; r++) {
                const double ek = E[r * K + k];
                if (ek != 0) sq_la_axpy_f64(isa, G + r * K + j0, ek, H + k * K + j0, nj);
            }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx2,fma,avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))

/* Register tiles of up to 4 rows x 32 columns (AVX-512) or 4 x 12 (AVX2)
 * held across the whole k loop, so each step loads one row of H's panel
 * for up to 16 fused multiply-adds instead of loading and storing G once per
 * product. Each element still gets lam e_j, then fma(e_k, H[k][j], .) in
 * increasing k, skipping e_k = 0: gradient_axpy's bits. H's column panel
 * (K x 32 doubles) is copied out once, zero-padded, and reused by every row
 * tile: read in place, each k step was a row of H K doubles further, a new
 * page for K >= 512, so a pass over the panel missed the TLB on every step
 * (perf put this function at half of GPTQ's time on 4096-wide layers).
 * The k loop runs in blocks of KB rows of the panel (256 KiB, so they stay
 * in L2 across the row tiles); between blocks a tile waits in G, exactly,
 * and every element's chain of multiply-adds is the same. */
#define KB 1024
/* One row's 32 columns (four registers) across the k loop. */
#define ROW512(a0, a1, a2, a3, e)                                                                                              \
    if ((e) != 0) {                                                                                                            \
        const __m512d ev = _mm512_set1_pd(e);                                                                                  \
        a0 = _mm512_fmadd_pd(ev, h0, a0);                                                                                      \
        a1 = _mm512_fmadd_pd(ev, h1, a1);                                                                                      \
        a2 = _mm512_fmadd_pd(ev, h2, a2);                                                                                      \
        a3 = _mm512_fmadd_pd(ev, h3, a3);                                                                                      \
    }
#define INIT512(a, r, q)                                                                                                       \
    a = k0 ? _mm512_maskz_loadu_pd(m[q], G + (r) * K + j0 + 8 * (q)) : _mm512_mul_pd(lv, _mm512_maskz_loadu_pd(m[q], E + (r) * K + j0 + 8 * (q)))
#define STORE512(a, r, q) _mm512_mask_storeu_pd(G + (r) * K + j0 + 8 * (q), m[q], a)

AVX512 static void tile4_avx512(const double *E, uint64_t K, const double *P, double lam, double *G, uint64_t j0, const __mmask8 m[4],
                         uint64_t k0, uint64_t k1) {
    const __m512d lv = _mm512_set1_pd(lam);
    __m512d a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
    INIT512(a00, 0, 0); INIT512(a01, 0, 1); INIT512(a02, 0, 2); INIT512(a03, 0, 3);
    INIT512(a10, 1, 0); INIT512(a11, 1, 1); INIT512(a12, 1, 2); INIT512(a13, 1, 3);
    INIT512(a20, 2, 0); INIT512(a21, 2, 1); INIT512(a22, 2, 2); INIT512(a23, 2, 3);
    INIT512(a30, 3, 0); INIT512(a31, 3, 1); INIT512(a32, 3, 2); INIT512(a33, 3, 3);
    for (uint64_t k = k0; k < k1; k++) {
        const double *hk = P + 32 * k;
        const __m512d h0 = _mm512_load_pd(hk), h1 = _mm512_load_pd(hk + 8);
        const __m512d h2 = _mm512_load_pd(hk + 16), h3 = _mm512_load_pd(hk + 24);
        ROW512(a00, a01, a02, a03, E[k]);
        ROW512(a10, a11, a12, a13, E[K + k]);
        ROW512(a20, a21, a22, a23, E[2 * K + k]);
        ROW512(a30, a31, a32, a33, E[3 * K + k]);
    }
    STORE512(a00, 0, 0); STORE512(a01, 0, 1); STORE512(a02, 0, 2); STORE512(a03, 0, 3);
    STORE512(a10, 1, 0); STORE512(a11, 1, 1); STORE512(a12, 1, 2); STORE512(a13, 1, 3);
    STORE512(a20, 2, 0); STORE512(a21, 2, 1); STORE512(a22, 2, 2); STORE512(a23, 2, 3);
    STORE512(a30, 3, 0); STORE512(a31, 3, 1); STORE512(a32, 3, 2); STORE512(a33, 3, 3);
}

AVX512 static void tile1_avx512(const double *E, uint64_t K, const double *P, double lam, double *G, uint64_t j0, const __mmask8 m[4],
                         uint64_t k0, uint64_t k1) {
    const __m512d lv = _mm512_set1_pd(lam);
    __m512d a00, a01, a02, a03;
    INIT512(a00, 0, 0); INIT512(a01, 0, 1); INIT512(a02, 0, 2); INIT512(a03, 0, 3);
    for (uint64_t k = k0; k < k1; k++) {
        const double *hk = P + 32 * k;
        const __m512d h0 = _mm512_load_pd(hk), h1 = _mm512_load_pd(hk + 8);
        const __m512d h2 = _mm512_load_pd(hk + 16), h3 = _mm512_load_pd(hk + 24);
        ROW512(a00, a01, a02, a03, E[k]);
    }
    STORE512(a00, 0, 0); STORE512(a01, 0, 1); STORE512(a02, 0, 2); STORE512(a03, 0, 3);
}

AVX512 static int gradient_avx512(const double *E, uint64_t R, uint64_t K, const double *H, double lam, double *G) {
    double *P = aligned_alloc(64, K * 32 * sizeof(double));
    if (!P) return -1;
    for (uint64_t j0 = 0; j0 < K; j0 += 32) {
        __mmask8 m[4];
        for (int q = 0; q < 4; q++) {
            const uint64_t c = j0 + 8 * (uint64_t)q, n = c >= K ? 0 : K - c > 8 ? 8 : K - c;
            m[q] = (__mmask8)((1u << n) - 1);
        }
        for (uint64_t k = 0; k < K; k++)
            for (int q = 0; q < 4; q++) _mm512_store_pd(P + 32 * k + 8 * q, _mm512_maskz_loadu_pd(m[q], H + k * K + j0 + 8 * q));
        for (uint64_t k0 = 0; k0 < K; k0 += KB) {
            const uint64_t k1 = k0 + KB < K ? k0 + KB : K;
            uint64_t r = 0;
            for (; r + 4 <= R; r += 4) tile4_avx512(E + r * K, K, P, lam, G + r * K, j0, m, k0, k1);
            for (; r < R; r++) tile1_avx512(E + r * K, K, P, lam, G + r * K, j0, m, k0, k1);
        }
    }
    free(P);
    return 0;
}

AVX2 static inline __m256i mask4(uint64_t n) { /* the first n of 4 lanes */
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)n), _mm256_setr_epi64x(0, 1, 2, 3));
}

#define ROW256(a0, a1, a2, e)                                                                                                  \
    if ((e) != 0) {                                                                                                            \
        const __m256d ev = _mm256_set1_pd(e);                                                                                  \
        a0 = _mm256_fmadd_pd(ev, h0, a0);                                                                                      \
        a1 = _mm256_fmadd_pd(ev, h1, a1);                                                                                      \
        a2 = _mm256_fmadd_pd(ev, h2, a2);                                                                                      \
    }
#define INIT256(a, r, q)                                                                                                       \
    a = k0 ? _mm256_maskload_pd(G + (r) * K + j0 + 4 * (q), m[q]) : _mm256_mul_pd(lv, _mm256_maskload_pd(E + (r) * K + j0 + 4 * (q), m[q]))
#define STORE256(a, r, q) _mm256_maskstore_pd(G + (r) * K + j0 + 4 * (q), m[q], a)

AVX2 static void tile4_avx2(const double *E, uint64_t K, const double *P, double lam, double *G, uint64_t j0, const __m256i m[3],
                       uint64_t k0, uint64_t k1) {
    const __m256d lv = _mm256_set1_pd(lam);
    __m256d a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32;
    INIT256(a00, 0, 0); INIT256(a01, 0, 1); INIT256(a02, 0, 2);
    INIT256(a10, 1, 0); INIT256(a11, 1, 1); INIT256(a12, 1, 2);
    INIT256(a20, 2, 0); INIT256(a21, 2, 1); INIT256(a22, 2, 2);
    INIT256(a30, 3, 0); INIT256(a31, 3, 1); INIT256(a32, 3, 2);
    for (uint64_t k = k0; k < k1; k++) {
        const double *hk = P + 12 * k;
        const __m256d h0 = _mm256_load_pd(hk), h1 = _mm256_load_pd(hk + 4), h2 = _mm256_load_pd(hk + 8);
        ROW256(a00, a01, a02, E[k]);
        ROW256(a10, a11, a12, E[K + k]);
        ROW256(a20, a21, a22, E[2 * K + k]);
        ROW256(a30, a31, a32, E[3 * K + k]);
    }
    STORE256(a00, 0, 0); STORE256(a01, 0, 1); STORE256(a02, 0, 2);
    STORE256(a10, 1, 0); STORE256(a11, 1, 1); STORE256(a12, 1, 2);
    STORE256(a20, 2, 0); STORE256(a21, 2, 1); STORE256(a22, 2, 2);
    STORE256(a30, 3, 0); STORE256(a31, 3, 1); STORE256(a32, 3, 2);
}

AVX2 static void tile1_avx2(const double *E, uint64_t K, const double *P, double lam, double *G, uint64_t j0, const __m256i m[3],
                       uint64_t k0, uint64_t k1) {
    const __m256d lv = _mm256_set1_pd(lam);
    __m256d a00, a01, a02;
    INIT256(a00, 0, 0); INIT256(a01, 0, 1); INIT256(a02, 0, 2);
    for (uint64_t k = k0; k < k1; k++) {
        const double *hk = P + 12 * k;
        const __m256d h0 = _mm256_load_pd(hk), h1 = _mm256_load_pd(hk + 4), h2 = _mm256_load_pd(hk + 8);
        ROW256(a00, a01, a02, E[k]);
    }
    STORE256(a00, 0, 0); STORE256(a01, 0, 1); STORE256(a02, 0, 2);
}

AVX2 static int gradient_avx2(const double *E, uint64_t R, uint64_t K, const double *H, double lam, double *G) {
    double *P = aligned_alloc(32, K * 12 * sizeof(double));
    if (!P) return -1;
    for (uint64_t j0 = 0; j0 < K; j0 += 12) {
        __m256i m[3];
        for (int q = 0; q < 3; q++) {
            const uint64_t c = j0 + 4 * (uint64_t)q;
            m[q] = mask4(c >= K ? 0 : K - c);
        }
        for (uint64_t k = 0; k < K; k++)
            for (int q = 0; q < 3; q++) _mm256_store_pd(P + 12 * k + 4 * q, _mm256_maskload_pd(H + k * K + j0 + 4 * q, m[q]));
        for (uint64_t k0 = 0; k0 < K; k0 += KB) {
            const uint64_t k1 = k0 + KB < K ? k0 + KB : K;
            uint64_t r = 0;
            for (; r + 4 <= R; r += 4) tile4_avx2(E + r * K, K, P, lam, G + r * K, j0, m, k0, k1);
            for (; r < R; r++) tile1_avx2(E + r * K, K, P, lam, G + r * K, j0, m, k0, k1);
        }
    }
    free(P);
    return 0;
}
#endif

void sq_descent_gradient(sq_isa isa, const double *E, uint64_t R, uint64_t K, const double *H, double lam, double *G) {
#if defined(__x86_64__)
    /* no memory for a panel: the definition, whose bits they give */
    if (isa >= SQ_ISA_AVX512 && !gradient_avx512(E, R, K, H, lam, G)) return;
    if (isa == SQ_ISA_AVX2 && !gradient_avx2(E, R, K, H, lam, G)) return;
#endif
    gradient_axpy(isa, E, R, K, H, lam, G);
}

int sq_descent_move(sq_isa isa, const double *H, uint64_t K, double lam, double *g, uint64_t oc, double d) {
    const double h = H[oc * K + oc] + lam;
    if (!(d * d * h - 2 * d * g[oc] < 0)) return 0;
    sq_la_axpy_f64(isa, g, -d, H + oc * K, K);
    g[oc] = fma(-d, lam, g[oc]);
    return 1;
}
