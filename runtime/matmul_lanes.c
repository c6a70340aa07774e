/* The exact batched product as eight per-lane GEMMs (matmul_lanes.h).
 *
 * Packed layouts for a geometry of RB rows x TT tokens (AVX-512: 64 x 6,
 * AVX2: 16 x 6), K8 = K rounded down to a multiple of 8, Kp = K8 / 8:
 *   activations, per tile g of TT tokens (zero past token T), K * TT floats:
 *     [l][k'][TT] = x[TT g + j][8 k' + l] for the 8 lanes, then
 *     [kt][TT]    = x[TT g + j][K8 + kt] for the tail;
 *   weights, per block of RB rows (zero past row nr), K * RB floats:
 *     [l][k'][RB] = w[r][8 k' + l], then [kt][RB] = w[r][K8 + kt].
 * A register tile is RB rows x TT tokens: per step of k', RB / 16 (AVX2:
 * RB / 8) weight vectors and TT broadcasts feed RB TT / 16 fused
 * multiply-adds. Loads, not FMAs, bound a step with few weight vectors: on
 * AVX-512, 4 vectors x 6 tokens take 10 loads per 24 FMAs where 2 x 12
 * took 14. */
#include "matmul_lanes.h"

#include <math.h>

uint32_t sq_lanes_rows(sq_isa isa) { return isa >= SQ_ISA_AVX512 ? 64 : 16; }
uint32_t sq_lanes_tokens(sq_isa isa) {
    (void)isa;
    return 6;
}

size_t sq_lanes_x_floats(sq_isa isa, uint32_t T, uint64_t K) {
    const uint32_t TT = sq_lanes_tokens(isa);
    return (size_t)((T + TT - 1) / TT) * TT * K;
}
size_t sq_lanes_w_floats(sq_isa isa, uint64_t K) { return (size_t)sq_lanes_rows(isa) * K; }

#if defined(__x86_64__)
#include <immintrin.h>
/* sq_lanes_pack_x for whole tiles of 6 tokens: per k', the 6 tokens' 8
 * floats transposed in registers into the 8 lanes' 6 floats (the stores
 * of 8 spill 2 zeros into k' + 1, rewritten next; the last k' is masked). */
__attribute__((target("avx2"))) static void pack_x_avx2(const float *x, uint64_t K, uint64_t g0, uint64_t g1, float *xp) {
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8;
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    for (uint64_t g = g0; g < g1; g++) {
        float *d = xp + g * 6 * K;
        const float *s = x + g * 6 * K;
        for (uint64_t k = 0; k < Kp; k++) {
            __m256 r[8], t[8], u[8];
            for (int j = 0; j < 6; j++) r[j] = _mm256_loadu_ps(s + j * K + 8 * k);
            r[6] = r[7] = _mm256_setzero_ps();
            for (int j = 0; j < 8; j += 2) {
                t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
                t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
            }
            for (int q = 0; q < 8; q += 4) {
                u[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
                u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xEE);
                u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
                u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
            }
            __m256 c[8]; /* lane l: the column l of the 6 tokens */
            for (int l = 0; l < 4; l++) {
                c[l] = _mm256_permute2f128_ps(u[l], u[4 + l], 0x20);
                c[4 + l] = _mm256_permute2f128_ps(u[l], u[4 + l], 0x31);
            }
            for (int l = 0; l < 8; l++) {
                float *o = d + ((uint64_t)l * Kp + k) * 6;
                if (k + 1 < Kp) _mm256_storeu_ps(o, c[l]);
                else _mm256_maskstore_ps(o, six, c[l]);
            }
        }
        for (uint32_t j = 0; j < 6; j++)
            for (uint64_t k = K8; k < K; k++) d[k * 6 + j] = s[j * K + k]; /* the tail follows the lanes */
    }
}
#endif

void sq_lanes_pack_x(sq_isa isa, const float *x, uint32_t T, uint64_t K, uint64_t g0, uint64_t g1, float *xp) {
    const uint32_t TT = sq_lanes_tokens(isa);
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8;
#if defined(__x86_64__)
    if (isa >= SQ_ISA_AVX2 && TT == 6) { /* whole tiles; a last, partial one below */
        const uint64_t whole = T / TT < g1 ? T / TT : g1;
        if (g0 < whole) pack_x_avx2(x, K, g0, whole, xp);
        if (g0 < whole) g0 = whole;
    }
#endif
    for (uint64_t g = g0; g < g1; g++) {
        float *d = xp + g * TT * K;
        for (uint32_t j = 0; j < TT; j++) {
            const uint64_t t = g * TT + j;
            const float *s = t < T ? x + t * K : NULL;
            for (uint32_t l = 0; l < 8; l++) {
                float *dl = d + (uint64_t)l * Kp * TT + j;
                for (uint64_t k = 0; k < Kp; k++) dl[k * TT] = s ? s[8 * k + l] : 0.0f;
            }
            for (uint64_t k = K8; k < K; k++) d[k * TT + j] = s ? s[k] : 0.0f; /* the tail follows the lanes */
        }
    }
}

/* Packs the positions at of [at0, K) with at % Kp >= kp0 (or past K8). */
static void pack_w_from(uint32_t RB, const float *wb, uint32_t nr, uint64_t K, uint64_t kp0, float *wp) {
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8;
    for (uint64_t at = 0; at < K; at++) { /* written in order; the block's rows are read from cache */
        if (at < K8 && at % Kp < kp0) continue;
        const uint64_t k = at < K8 ? at % Kp * 8 + at / Kp : at;
        float *d = wp + at * RB;
        for (uint32_t r = 0; r < nr; r++) d[r] = wb[(uint64_t)r * K + k];
        for (uint32_t r = nr; r < RB; r++) d[r] = 0.0f;
    }
}

static void pack_w(uint32_t RB, const float *wb, uint32_t nr, uint64_t K, float *wp) { pack_w_from(RB, wb, nr, K, 0, wp); }

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx2,fma,avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))

int sq_lanes_available(sq_isa isa) { return isa >= SQ_ISA_AVX2; }

#define RB 64
#define TT 6
#define NV (RB / 16) /* weight vectors per step */

/* One lane's chains for the tile: a[h][j] over k' in increasing order. */
AVX512 static inline __attribute__((always_inline)) void lane(const float *w, const float *x, uint64_t Kp, __m512 a[NV][TT]) {
#pragma GCC unroll 6
    for (int j = 0; j < TT; j++)
#pragma GCC unroll 4
        for (int h = 0; h < NV; h++) a[h][j] = _mm512_setzero_ps();
    for (uint64_t k = 0; k < Kp; k++, w += RB, x += TT) {
        __m512 wv[NV];
#pragma GCC unroll 4
        for (int h = 0; h < NV; h++) wv[h] = _mm512_loadu_ps(w + 16 * h);
#pragma GCC unroll 6
        for (int j = 0; j < TT; j++) {
            const __m512 b = _mm512_set1_ps(x[j]);
#pragma GCC unroll 4
            for (int h = 0; h < NV; h++) a[h][j] = _mm512_fmadd_ps(wv[h], b, a[h][j]);
        }
    }
}

/* s = a (store) or s = s + a */
AVX512 static inline __attribute__((always_inline)) void put(float *s, __m512 a[NV][TT], int add) {
#pragma GCC unroll 6
    for (int j = 0; j < TT; j++)
#pragma GCC unroll 4
        for (int h = 0; h < NV; h++) {
            float *p = s + (j * NV + h) * 16;
            _mm512_store_ps(p, add ? _mm512_add_ps(_mm512_load_ps(p), a[h][j]) : a[h][j]);
        }
}

AVX512 static void add_into(float *s, const float *o) {
    for (int i = 0; i < NV * TT; i++) _mm512_store_ps(s + i * 16, _mm512_add_ps(_mm512_load_ps(s + i * 16), _mm512_load_ps(o + i * 16)));
}

/* The lane sums combined as the definition's tree, then the tail. */
AVX512 static void tile(const float *wp, const float *xg, uint64_t K, float *y, uint64_t N, const __mmask16 m[NV],
                        uint32_t nt) {
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8;
    _Alignas(64) float A[NV * TT * 16], B[NV * TT * 16], C[NV * TT * 16];
    __m512 a[NV][TT];
#define LANE(l) lane(wp + (uint64_t)(l) * Kp * RB, xg + (uint64_t)(l) * Kp * TT, Kp, a)
    LANE(0), put(A, a, 0);
    LANE(4), put(A, a, 1); /* l0 + l4 */
    LANE(2), put(B, a, 0);
    LANE(6), put(B, a, 1); /* l2 + l6 */
    add_into(A, B);
    LANE(1), put(B, a, 0);
    LANE(5), put(B, a, 1); /* l1 + l5 */
    LANE(3), put(C, a, 0);
    LANE(7), put(C, a, 1); /* l3 + l7 */
    add_into(B, C);
    add_into(A, B);
#undef LANE
    for (uint64_t k = K8; k < K; k++) /* the tail: product, then sum */
        for (int j = 0; j < TT; j++) {
            const __m512 b = _mm512_set1_ps(xg[k * TT + j]);
            for (int h = 0; h < NV; h++) {
                float *p = A + (j * NV + h) * 16;
                _mm512_store_ps(p, _mm512_add_ps(_mm512_load_ps(p), _mm512_mul_ps(_mm512_loadu_ps(wp + k * RB + 16 * h), b)));
            }
        }
    for (uint32_t j = 0; j < nt; j++)
        for (int h = 0; h < NV; h++)
            if (m[h]) _mm512_mask_storeu_ps(y + j * N + 16 * h, m[h], _mm512_load_ps(A + (j * NV + h) * 16));
}

/* In-register transpose of 16 rows of 16 floats: r[i][j] becomes r[j][i]. */
AVX512 static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) { /* per 128-bit lane: r0[0] r1[0] r0[1] r1[1] and r0[2] r1[2] r0[3] r1[3] */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[4g + e]: per lane L, rows 4g..4g+3 of column 4L + e */
        const __m512d a0 = _mm512_castps_pd(t[4 * g]), a1 = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d b0 = _mm512_castps_pd(t[4 * g + 2]), b1 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
    }
    for (int e = 0; e < 4; e++) { /* gather the four row groups of column 4L + e */
        const __m512 x0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88), x1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xDD);
        const __m512 y0 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88), y1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xDD);
        r[e] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[8 + e] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[4 + e] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

/* pack_w for RB = 64 by 16 x 16 transposes: columns 16m..16m+15 of 16 rows
 * are lanes 0..7 of k' = 2m and 2m + 1; the rest (an odd last k', the
 * tail) by the scalar loop. */
AVX512 static void pack_w64(const float *wb, uint32_t nr, uint64_t K, float *wp) {
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8, pairs = Kp / 2;
    for (uint32_t g = 0; g < 64; g += 16)
        for (uint64_t m = 0; m < pairs; m++) {
            __m512 r[16];
            for (uint32_t i = 0; i < 16; i++)
                r[i] = g + i < nr ? _mm512_loadu_ps(wb + (uint64_t)(g + i) * K + 16 * m) : _mm512_setzero_ps();
            transpose16(r);
            for (uint32_t c = 0; c < 16; c++) /* column 16m + c = 8 (2m + c / 8) + c % 8 */
                _mm512_store_ps(wp + ((c % 8) * Kp + 2 * m + c / 8) * 64 + g, r[c]);
        }
    pack_w_from(64, wb, nr, K, 2 * pairs, wp);
}

static void block_avx512(const float *wb, uint32_t nr, uint64_t K, const float *xp, uint32_t T, float *y, uint64_t N,
                         uint64_t r0, float *wp) {
    pack_w64(wb, nr, K, wp);
    __mmask16 m[NV]; /* rows of the block that exist, per vector */
    for (uint32_t h = 0; h < NV; h++)
        m[h] = (__mmask16)(nr >= 16 * (h + 1) ? 0xffffu : nr <= 16 * h ? 0 : (1u << (nr - 16 * h)) - 1);
    for (uint32_t t0 = 0; t0 < T; t0 += TT)
        tile(wp, xp + (uint64_t)(t0 / TT) * TT * K, K, y + (uint64_t)t0 * N + r0, N, m, T - t0 < TT ? T - t0 : TT);
}
#undef RB
#undef TT
#undef NV

/* AVX2: 16 rows (two 8-float vectors) x 6 tokens, 12 accumulators. */
#define RB 16
#define TT 6
AVX2 static inline __attribute__((always_inline)) void lane2(const float *w, const float *x, uint64_t Kp, __m256 a[2][TT]) {
#pragma GCC unroll 6
    for (int j = 0; j < TT; j++) a[0][j] = a[1][j] = _mm256_setzero_ps();
    for (uint64_t k = 0; k < Kp; k++, w += RB, x += TT) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 6
        for (int j = 0; j < TT; j++) {
            const __m256 b = _mm256_broadcast_ss(x + j);
            a[0][j] = _mm256_fmadd_ps(w0, b, a[0][j]);
            a[1][j] = _mm256_fmadd_ps(w1, b, a[1][j]);
        }
    }
}

AVX2 static inline __attribute__((always_inline)) void put2(float *s, __m256 a[2][TT], int add) {
#pragma GCC unroll 6
    for (int j = 0; j < TT; j++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            float *p = s + (j * 2 + h) * 8;
            _mm256_store_ps(p, add ? _mm256_add_ps(_mm256_load_ps(p), a[h][j]) : a[h][j]);
        }
}

AVX2 static void add_into2(float *s, const float *o) {
    for (int i = 0; i < 2 * TT; i++) _mm256_store_ps(s + i * 8, _mm256_add_ps(_mm256_load_ps(s + i * 8), _mm256_load_ps(o + i * 8)));
}

AVX2 static void tile2(const float *wp, const float *xg, uint64_t K, float *y, uint64_t N, __m256i m0, __m256i m1,
                       uint32_t nt) {
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8;
    _Alignas(32) float A[2 * TT * 8], B[2 * TT * 8], C[2 * TT * 8];
    __m256 a[2][TT];
#define LANE(l) lane2(wp + (uint64_t)(l) * Kp * RB, xg + (uint64_t)(l) * Kp * TT, Kp, a)
    LANE(0), put2(A, a, 0);
    LANE(4), put2(A, a, 1);
    LANE(2), put2(B, a, 0);
    LANE(6), put2(B, a, 1);
    add_into2(A, B);
    LANE(1), put2(B, a, 0);
    LANE(5), put2(B, a, 1);
    LANE(3), put2(C, a, 0);
    LANE(7), put2(C, a, 1);
    add_into2(B, C);
    add_into2(A, B);
#undef LANE
    for (uint64_t k = K8; k < K; k++)
        for (int j = 0; j < TT; j++) {
            const __m256 b = _mm256_broadcast_ss(xg + k * TT + j);
            for (int h = 0; h < 2; h++) {
                float *p = A + (j * 2 + h) * 8;
                _mm256_store_ps(p, _mm256_add_ps(_mm256_load_ps(p), _mm256_mul_ps(_mm256_loadu_ps(wp + k * RB + 8 * h), b)));
            }
        }
    for (uint32_t j = 0; j < nt; j++) {
        _mm256_maskstore_ps(y + j * N, m0, _mm256_load_ps(A + j * 16));
        _mm256_maskstore_ps(y + j * N + 8, m1, _mm256_load_ps(A + j * 16 + 8));
    }
}

AVX2 static void block_avx2(const float *wb, uint32_t nr, uint64_t K, const float *xp, uint32_t T, float *y, uint64_t N,
                            uint64_t r0, float *wp) {
    pack_w(RB, wb, nr, K, wp);
    const __m256i lane_ix = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr), lane_ix);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nr - 8), lane_ix);
    for (uint32_t t0 = 0; t0 < T; t0 += TT)
        tile2(wp, xp + (uint64_t)(t0 / TT) * TT * K, K, y + (uint64_t)t0 * N + r0, N, m0, m1, T - t0 < TT ? T - t0 : TT);
}
#undef RB
#undef TT

void sq_lanes_block(sq_isa isa, const float *wb, uint32_t nr, uint64_t K, const float *xp, uint32_t T, float *y,
                    uint64_t N, uint64_t r0, float *wp) {
    if (isa >= SQ_ISA_AVX512) block_avx512(wb, nr, K, xp, T, y, N, r0, wp);
    else block_avx2(wb, nr, K, xp, T, y, N, r0, wp);
}

#else

int sq_lanes_available(sq_isa isa) {
    (void)isa;
    return 0;
}

/* Not reached (sq_lanes_available is 0): the same sums in scalar code. */
void sq_lanes_block(sq_isa isa, const float *wb, uint32_t nr, uint64_t K, const float *xp, uint32_t T, float *y,
                    uint64_t N, uint64_t r0, float *wp) {
    const uint32_t RB = sq_lanes_rows(isa), TT = sq_lanes_tokens(isa);
    const uint64_t K8 = K / 8 * 8, Kp = K8 / 8;
    pack_w(RB, wb, nr, K, wp);
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t r = 0; r < nr; r++) {
            const float *xg = xp + (uint64_t)(t / TT) * TT * K;
            float l[8];
            for (int q = 0; q < 8; q++) {
                l[q] = 0.0f;
                for (uint64_t k = 0; k < Kp; k++)
                    l[q] = fmaf(wp[((uint64_t)q * Kp + k) * RB + r], xg[((uint64_t)q * Kp + k) * TT + t % TT], l[q]);
            }
            float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
            for (uint64_t k = K8; k < K; k++) {
                float p = wp[k * RB + r] * xg[k * TT + t % TT];
                s += p;
            }
            y[(uint64_t)t * N + r0 + r] = s;
        }
}

#endif
