/* XᵀX accumulation in float64 with one result on every machine.
 *
 * The product of two float32 values is exact in float64 (24 + 24 significand
 * bits fit in 53), so x_i·x_j + c rounds once whether or not the hardware
 * fuses the multiply and the add. Every element is then summed over tokens
 * in increasing order, starting from the stored sum: the result depends only
 * on the inputs, not on the ISA, the vector width, the tiling or the thread
 * count, and C[i][j] == C[j][i] bit for bit. No BLAS is involved, so its
 * kernel choice (OPENBLAS_CORETYPE) cannot change a calibration file. */
#include "xtx_kernel.h"

#include <stddef.h>

#define TBLOCK 64 /* tokens per pass over a tile: keeps its two panels in L1/L2 */
#define PBLOCK 128 /* the same for packed panels: a column sliver (16 KiB) stays in L1 across a tile column */

/* Reference: C[i][j] += Σ_t x[t][i0+i] · x[t][j0+j], t in increasing order. */
static void xtx_portable(double *C, size_t ldc, const float *x, size_t ldx, uint32_t T, uint32_t i0, uint32_t ni,
                         uint32_t j0, uint32_t nj) {
    for (uint32_t t = 0; t < T; t++) {
        const float *row = x + (size_t)t * ldx;
        for (uint32_t i = 0; i < ni; i++) {
            const double a = row[i0 + i];
            double *c = C + (size_t)i * ldc;
            for (uint32_t j = 0; j < nj; j++) c[j] += a * (double)row[j0 + j];
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx2,fma,avx512f")))

/* 4 rows x 8 columns of C in registers over T tokens; a and b are the
 * packed panels (lda, ldb doubles per token). */
AVX2 static void micro_avx2(double *C, size_t ldc, const double *a, size_t lda, const double *b, size_t ldb, uint32_t T) {
    __m256d c[4][2];
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) c[r][h] = _mm256_loadu_pd(C + r * ldc + 4 * h);
    for (uint32_t t = 0; t < T; t++, a += lda, b += ldb) {
        __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
#pragma GCC unroll 8
        for (int r = 0; r < 4; r++) {
            __m256d ar = _mm256_broadcast_sd(a + r);
            c[r][0] = _mm256_fmadd_pd(ar, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_pd(ar, b1, c[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) _mm256_storeu_pd(C + r * ldc + 4 * h, c[r][h]);
}

/* 8 rows x 16 columns of C in registers over T tokens. */
AVX512 static void micro_avx512(double *C, size_t ldc, const double *a, size_t lda, const double *b, size_t ldb,
                                uint32_t T) {
    __m512d c[8][2];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) c[r][h] = _mm512_loadu_pd(C + r * ldc + 8 * h);
    for (uint32_t t = 0; t < T; t++, a += lda, b += ldb) {
        __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            __m512d ar = _mm512_set1_pd(a[r]);
            c[r][0] = _mm512_fmadd_pd(ar, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_pd(ar, b1, c[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) _mm512_storeu_pd(C + r * ldc + 8 * h, c[r][h]);
}

typedef void (*micro_fn)(double *, size_t, const double *, size_t, const double *, size_t, uint32_t);

/* Full register tiles with the micro-kernel over panels of TBLOCK tokens
 * converted to float64 once; the ragged right and bottom edges with the
 * reference loop (same per-element order, same bits). */
static void xtx_tiled(micro_fn micro, uint32_t MR, uint32_t NR, double *C, size_t ldc, const float *x, size_t ldx,
                      uint32_t T, uint32_t i0, uint32_t ni, uint32_t j0, uint32_t nj) {
    const uint32_t mi = ni - ni % MR, mj = nj - nj % NR;
    double pa[TBLOCK * SQ_XTX_MAX_TILE], pb[TBLOCK * SQ_XTX_MAX_TILE];
    for (uint32_t t0 = 0; t0 < T; t0 += TBLOCK) {
        const uint32_t tb = T - t0 < TBLOCK ? T - t0 : TBLOCK;
        const float *xb = x + (size_t)t0 * ldx;
        for (uint32_t t = 0; t < tb; t++) {
            for (uint32_t i = 0; i < mi; i++) pa[(size_t)t * mi + i] = xb[(size_t)t * ldx + i0 + i];
            for (uint32_t j = 0; j < mj; j++) pb[(size_t)t * mj + j] = xb[(size_t)t * ldx + j0 + j];
        }
        for (uint32_t i = 0; i < mi; i += MR)
            for (uint32_t j = 0; j < mj; j += NR) micro(C + (size_t)i * ldc + j, ldc, pa + i, mi, pb + j, mj, tb);
        if (mj < nj) xtx_portable(C + mj, ldc, xb, ldx, tb, i0, mi, j0 + mj, nj - mj);
        if (mi < ni) xtx_portable(C + (size_t)mi * ldc, ldc, xb, ldx, tb, i0 + mi, ni - mi, j0, nj);
    }
}

/* The same tiles reading x packed in column panels (sq_xtx_pack): each
 * register tile streams its rows and columns at a stride of 16 doubles,
 * so no token's row maps to the cache set of the previous ones (x itself
 * has a stride of n doubles, a multiple of 4 KiB for the usual widths). */
static void xtx_panels(micro_fn micro, uint32_t MR, uint32_t NR, double *C, size_t ldc, const float *x, const double *xp,
                       size_t ldx, uint32_t T, uint32_t i0, uint32_t ni, uint32_t j0, uint32_t nj) {
    const uint32_t mi = ni - ni % MR, mj = nj - nj % NR;
    for (uint32_t t0 = 0; t0 < T; t0 += PBLOCK) {
        const uint32_t tb = T - t0 < PBLOCK ? T - t0 : PBLOCK;
        /* columns outer: a column sliver (tb x 16 doubles) stays in L1 while
         * the row slivers, half as many bytes each, stream from L2 */
        for (uint32_t j = 0; j < mj; j += NR) {
            const uint32_t gj = j0 + j;
            const double *b = xp + ((size_t)(gj / SQ_XTX_PANEL) * T + t0) * SQ_XTX_PANEL + gj % SQ_XTX_PANEL;
            for (uint32_t i = 0; i < mi; i += MR) {
                const uint32_t gi = i0 + i;
                if (gi >= gj + NR) break; /* wholly below the diagonal: the lower triangle is the upper one's copy */
                const double *a = xp + ((size_t)(gi / SQ_XTX_PANEL) * T + t0) * SQ_XTX_PANEL + gi % SQ_XTX_PANEL;
                micro(C + (size_t)i * ldc + j, ldc, a, SQ_XTX_PANEL, b, SQ_XTX_PANEL, tb);
            }
        }
        if (mj < nj) xtx_portable(C + mj, ldc, x + (size_t)t0 * ldx, ldx, tb, i0, mi, j0 + mj, nj - mj);
        if (mi < ni) xtx_portable(C + (size_t)mi * ldc, ldc, x + (size_t)t0 * ldx, ldx, tb, i0 + mi, ni - mi, j0, nj);
    }
}

/* 4 rows x 16 NP columns of C in registers over T tokens: the rows'
 * values broadcast from their panel (a), the columns read from NP
 * consecutive panels (b, pstride doubles apart). Four broadcasts feed up
 * to 24 fused multiply-adds: broadcasts, not FMAs, bound the narrow tiles. */
AVX512 static inline __attribute__((always_inline)) void rows4_avx512(const int NP, double *C, size_t ldc, const double *a,
                                                                      const double *b, size_t pstride, uint32_t T) {
    __m512d c[4][6];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 6
        for (int h = 0; h < 2 * NP; h++) c[r][h] = _mm512_loadu_pd(C + r * ldc + 8 * h);
    for (uint32_t t = 0; t < T; t++, a += SQ_XTX_PANEL, b += SQ_XTX_PANEL) {
        __m512d v[6];
#pragma GCC unroll 6
        for (int h = 0; h < 2 * NP; h++) v[h] = _mm512_loadu_pd(b + (h / 2) * pstride + 8 * (h % 2));
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512d ar = _mm512_set1_pd(a[r]);
#pragma GCC unroll 6
            for (int h = 0; h < 2 * NP; h++) c[r][h] = _mm512_fmadd_pd(ar, v[h], c[r][h]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 6
        for (int h = 0; h < 2 * NP; h++) _mm512_storeu_pd(C + r * ldc + 8 * h, c[r][h]);
}

typedef void (*rows4_fn)(double *, size_t, const double *, const double *, size_t, uint32_t);
AVX512 static void rows4x16(double *C, size_t ldc, const double *a, const double *b, size_t ps, uint32_t T) {
    rows4_avx512(1, C, ldc, a, b, ps, T);
}
AVX512 static void rows4x32(double *C, size_t ldc, const double *a, const double *b, size_t ps, uint32_t T) {
    rows4_avx512(2, C, ldc, a, b, ps, T);
}
AVX512 static void rows4x48(double *C, size_t ldc, const double *a, const double *b, size_t ps, uint32_t T) {
    rows4_avx512(3, C, ldc, a, b, ps, T);
}

#define WBLOCK 3 /* panels per column block of the AVX-512 tiles */

/* The panel tiles with AVX-512: column blocks of up to 3 panels, each kept
 * in L1 over a token block while the 4-row slivers stream past it; on the
 * diagonal, a sliver skips the block's panels wholly left of its rows. */
static void xtx_panels_avx512(double *C, size_t ldc, const float *x, const double *xp, size_t ldx, uint32_t T,
                              uint32_t i0, uint32_t ni, uint32_t j0, uint32_t nj) {
    static const rows4_fn kern[WBLOCK + 1] = {NULL, rows4x16, rows4x32, rows4x48};
    const uint32_t mi = ni - ni % 4, mj = nj - nj % SQ_XTX_PANEL;
    const size_t ps = (size_t)T * SQ_XTX_PANEL;
    for (uint32_t t0 = 0; t0 < T; t0 += PBLOCK) {
        const uint32_t tb = T - t0 < PBLOCK ? T - t0 : PBLOCK;
        for (uint32_t j = 0; j < mj; j += WBLOCK * SQ_XTX_PANEL) {
            const uint32_t gj = j0 + j, np = (mj - j) / SQ_XTX_PANEL < WBLOCK ? (mj - j) / SQ_XTX_PANEL : WBLOCK;
            const double *b = xp + (gj / SQ_XTX_PANEL) * ps + (size_t)t0 * SQ_XTX_PANEL;
            for (uint32_t i = 0; i < mi; i += 4) {
                const uint32_t gi = i0 + i;
                if (gi >= gj + np * SQ_XTX_PANEL) break; /* wholly below the diagonal */
                const uint32_t skip = gi > gj ? (gi - gj) / SQ_XTX_PANEL : 0; /* panels wholly left of the diagonal */
                const double *a = xp + (gi / SQ_XTX_PANEL) * ps + (size_t)t0 * SQ_XTX_PANEL + gi % SQ_XTX_PANEL;
                kern[np - skip](C + (size_t)i * ldc + j + skip * SQ_XTX_PANEL, ldc, a, b + skip * ps, ps, tb);
            }
        }
        if (mj < nj) xtx_portable(C + mj, ldc, x + (size_t)t0 * ldx, ldx, tb, i0, mi, j0 + mj, nj - mj);
        if (mi < ni) xtx_portable(C + (size_t)mi * ldc, ldc, x + (size_t)t0 * ldx, ldx, tb, i0 + mi, ni - mi, j0, nj);
    }
}
#endif

#if defined(__x86_64__) || defined(__i386__)
/* Whole panels (16 columns inside x) widened 16 at a time; the conversion
 * is exact, so the bytes are the scalar loop's. */
AVX512 static void pack_avx512(const float *x, size_t ldx, uint32_t T, uint32_t g0, uint32_t g1, double *xp) {
    for (uint32_t g = g0; g < g1; g++)
        for (uint32_t t = 0; t < T; t++) {
            double *d = xp + ((size_t)g * T + t) * SQ_XTX_PANEL;
            const float *s = x + (size_t)t * ldx + (size_t)g * SQ_XTX_PANEL;
            _mm512_storeu_pd(d, _mm512_cvtps_pd(_mm256_loadu_ps(s)));
            _mm512_storeu_pd(d + 8, _mm512_cvtps_pd(_mm256_loadu_ps(s + 8)));
        }
}
#endif

void sq_xtx_pack(const float *x, size_t ldx, uint32_t T, uint32_t n, uint32_t g0, uint32_t g1, double *xp) {
#if defined(__x86_64__) || defined(__i386__)
    if (sq_isa_active() >= SQ_ISA_AVX512) {
        const uint32_t whole = n / SQ_XTX_PANEL < g1 ? n / SQ_XTX_PANEL : g1; /* panels with no column past n */
        if (g0 < whole) pack_avx512(x, ldx, T, g0, whole, xp);
        if (g0 < whole) g0 = whole;
    }
#endif
    for (uint32_t g = g0; g < g1; g++)
        for (uint32_t t = 0; t < T; t++) {
            double *d = xp + ((size_t)g * T + t) * SQ_XTX_PANEL;
            const float *s = x + (size_t)t * ldx + (size_t)g * SQ_XTX_PANEL;
            for (uint32_t c = 0; c < SQ_XTX_PANEL; c++) d[c] = g * SQ_XTX_PANEL + c < n ? (double)s[c] : 0.0;
        }
}

void sq_xtx_accumulate_panels(sq_isa isa, double *C, size_t ldc, const float *x, const double *xp, size_t ldx,
                              uint32_t T, uint32_t i0, uint32_t ni, uint32_t j0, uint32_t nj) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= SQ_ISA_AVX512) {
        xtx_panels_avx512(C, ldc, x, xp, ldx, T, i0, ni, j0, nj);
        return;
    }
    if (isa == SQ_ISA_AVX2) {
        xtx_panels(micro_avx2, 4, 8, C, ldc, x, xp, ldx, T, i0, ni, j0, nj);
        return;
    }
#endif
    (void)xp;
    xtx_portable(C, ldc, x, ldx, T, i0, ni, j0, nj);
}

void sq_xtx_accumulate(sq_isa isa, double *C, size_t ldc, const float *x, size_t ldx, uint32_t T, uint32_t i0,
                       uint32_t ni, uint32_t j0, uint32_t nj) {
#if defined(__x86_64__) || defined(__i386__)
    if (ni > SQ_XTX_MAX_TILE || nj > SQ_XTX_MAX_TILE) isa = SQ_ISA_PORTABLE; /* panels are on the stack */
    if (isa >= SQ_ISA_AVX512) {
        xtx_tiled(micro_avx512, 8, 16, C, ldc, x, ldx, T, i0, ni, j0, nj);
        return;
    }
    if (isa == SQ_ISA_AVX2) {
        xtx_tiled(micro_avx2, 4, 8, C, ldc, x, ldx, T, i0, ni, j0, nj);
        return;
    }
#endif
    xtx_portable(C, ldc, x, ldx, T, i0, ni, j0, nj);
}
