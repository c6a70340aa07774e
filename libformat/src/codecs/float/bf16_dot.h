/* The bf16 dot product of each instruction-set path, in pieces, so that the
 * bf16 codec's GEMV (bf16_x86.c, codec_float.c) and the TCA-TBE GEMV that
 * decodes its blocks in registers (tca_tbe/) add in the same order and give
 * the same bits. Per path, over a row of n values:
 *   portable  8 partial sums over steps of 8 (acc[k] += w[i+k]*x[i+k],
 *             a multiply then an add), the n % 8 tail into s, then
 *             s += acc[0] ... acc[7];
 *   avx2      4 accumulators of 8 lanes over chunks of 32 (fused
 *             multiply-add; acc0 takes the even values of the chunk's first
 *             16, acc1 their odd values, acc2 and acc3 those of its last 16),
 *             then steps of 8 in order into acc0, then
 *             s = hsum((acc0 + acc1) + (acc2 + acc3)), then the tail one by
 *             one (multiply, add);
 *   avx512    the same with 16 lanes, chunks of 64 and steps of 16.
 * A caller may feed a row in segments whose lengths are multiples of the
 * path's main step (8, 32, 64): the sums are the same as in one pass. */
#ifndef SQUISH_BF16_DOT_H
#define SQUISH_BF16_DOT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "squish/fp.h"

typedef struct sq_bf16_dot8 {
    float acc[8];
} sq_bf16_dot8;

/* Portable: the full steps of 8 of w[0..n) (n a multiple of 8). */
static inline void sq_bf16_dot8_steps(sq_bf16_dot8 *d, const uint16_t *w, const float *x, uint64_t n) {
    for (uint64_t i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) d->acc[k] += sq_bf16_to_f32(w[i + k]) * x[i + k];
}
/* Portable: the last piece of a row (any length): its steps, its tail, the sum. */
static inline float sq_bf16_dot8_finish(sq_bf16_dot8 *d, const uint16_t *w, const float *x, uint64_t n) {
    uint64_t i = n & ~(uint64_t)7;
    sq_bf16_dot8_steps(d, w, x, i);
    float s = 0;
    for (; i < n; i++) s += sq_bf16_to_f32(w[i]) * x[i];
    for (int k = 0; k < 8; k++) s += d->acc[k];
    return s;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define SQ_BF16_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SQ_BF16_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* The SIMD steps take a pair of bf16 values from each 32-bit lane with one
 * shift (the even value, in the low half) or one and (the odd value, the
 * high half is already the float), so they meet x in that order: x is
 * permuted once per call (sq_bf16_xperm_*), every whole chunk (32 values
 * for avx2, 64 for avx512) as the even then the odd values of its first
 * half (16 or 32 values), then the even and the odd values of its second
 * half; the values after the last whole chunk stay in place. */
static inline void sq_bf16_xperm(const float *x, uint64_t n, uint64_t chunk, float *xp) {
    const uint64_t full = n / chunk * chunk, half = chunk / 2, q = chunk / 4;
    for (uint64_t i = 0; i < full; i += half)
        for (uint64_t k = 0; k < q; k++) {
            xp[i + k] = x[i + 2 * k];
            xp[i + q + k] = x[i + 2 * k + 1];
        }
    memcpy(xp + full, x + full, (size_t)(n - full) * sizeof *x);
}
#define SQ_BF16_CHUNK_AVX2 32
#define SQ_BF16_CHUNK_AVX512 64
/* Rows longer than this permute x on the heap; when even that fails the
 * kernels permute it per row, SQ_BF16_XSEG values at a time (the same sums). */
#define SQ_BF16_XBUF 8192
#define SQ_BF16_XSEG 1024
/* x permuted for a path's chunks into buf (n <= SQ_BF16_XBUF) or the heap
 * (*owned, freed by the caller); NULL when the heap has no room. */
static inline float *sq_bf16_xperm_get(const float *x, uint64_t n, uint64_t chunk, float *buf, float **owned) {
    float *p = buf;
    *owned = NULL;
    if (n > SQ_BF16_XBUF && !(p = *owned = malloc((size_t)n * sizeof *p))) return NULL;
    sq_bf16_xperm(x, n, chunk, p);
    return p;
}

SQ_BF16_AVX2 static inline float sq_bf16_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* 8 bf16 values (8 x u16 in an __m128i) as 8 floats, in order */
SQ_BF16_AVX2 static inline __m256 sq_bf16x8_avx2(__m128i v) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}
typedef struct sq_bf16_dot_avx2 {
    __m256 a[4];
} sq_bf16_dot_avx2;
SQ_BF16_AVX2 static inline void sq_bf16_dot_avx2_init(sq_bf16_dot_avx2 *d) {
    for (int k = 0; k < 4; k++) d->a[k] = _mm256_setzero_ps();
}
/* one chunk of 32 values given as two vectors of 16 bf16 each; xp permuted */
SQ_BF16_AVX2 static inline void sq_bf16_dot_avx2_step_v(sq_bf16_dot_avx2 *d, __m256i w0, __m256i w1, const float *xp) {
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    d->a[0] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)), _mm256_loadu_ps(xp), d->a[0]);
    d->a[1] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(w0, hi)), _mm256_loadu_ps(xp + 8), d->a[1]);
    d->a[2] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(w1, 16)), _mm256_loadu_ps(xp + 16), d->a[2]);
    d->a[3] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(w1, hi)), _mm256_loadu_ps(xp + 24), d->a[3]);
}
SQ_BF16_AVX2 static inline void sq_bf16_dot_avx2_step(sq_bf16_dot_avx2 *d, const uint16_t *w, const float *xp) {
    sq_bf16_dot_avx2_step_v(d, _mm256_loadu_si256((const __m256i *)w), _mm256_loadu_si256((const __m256i *)(w + 16)), xp);
}
/* the rest of a row from w, xp: whole chunks, then steps of 8 and the tail in order */
SQ_BF16_AVX2 static inline float sq_bf16_dot_avx2_finish(sq_bf16_dot_avx2 *d, const uint16_t *w, const float *xp, uint64_t n) {
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32) sq_bf16_dot_avx2_step(d, w + i, xp + i);
    for (; i + 8 <= n; i += 8)
        d->a[0] = _mm256_fmadd_ps(sq_bf16x8_avx2(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(xp + i), d->a[0]);
    float s = sq_bf16_hsum256(_mm256_add_ps(_mm256_add_ps(d->a[0], d->a[1]), _mm256_add_ps(d->a[2], d->a[3])));
    for (; i < n; i++) s += sq_bf16_to_f32(w[i]) * xp[i];
    return s;
}

SQ_BF16_AVX512 static inline float sq_bf16_hsum512(__m512 v) {
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return sq_bf16_hsum256(_mm256_add_ps(lo, hi));
}
/* 16 bf16 values (16 x u16 in an __m256i) as 16 floats, in order */
SQ_BF16_AVX512 static inline __m512 sq_bf16x16_avx512(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}
typedef struct sq_bf16_dot_avx512 {
    __m512 a[4];
} sq_bf16_dot_avx512;
SQ_BF16_AVX512 static inline void sq_bf16_dot_avx512_init(sq_bf16_dot_avx512 *d) {
    for (int k = 0; k < 4; k++) d->a[k] = _mm512_setzero_ps();
}
/* one chunk of 64 values given as two vectors of 32 bf16 each; xp permuted */
SQ_BF16_AVX512 static inline void sq_bf16_dot_avx512_step_v(sq_bf16_dot_avx512 *d, __m512i w0, __m512i w1, const float *xp) {
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
    d->a[0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(xp), d->a[0]);
    d->a[1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(w0, hi)), _mm512_loadu_ps(xp + 16), d->a[1]);
    d->a[2] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)), _mm512_loadu_ps(xp + 32), d->a[2]);
    d->a[3] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(w1, hi)), _mm512_loadu_ps(xp + 48), d->a[3]);
}
SQ_BF16_AVX512 static inline void sq_bf16_dot_avx512_step(sq_bf16_dot_avx512 *d, const uint16_t *w, const float *xp) {
    sq_bf16_dot_avx512_step_v(d, _mm512_loadu_si512(w), _mm512_loadu_si512(w + 32), xp);
}
SQ_BF16_AVX512 static inline float sq_bf16_dot_avx512_finish(sq_bf16_dot_avx512 *d, const uint16_t *w, const float *xp,
                                                            uint64_t n) {
    uint64_t i = 0;
    for (; i + 64 <= n; i += 64) sq_bf16_dot_avx512_step(d, w + i, xp + i);
    for (; i + 16 <= n; i += 16)
        d->a[0] = _mm512_fmadd_ps(sq_bf16x16_avx512(_mm256_loadu_si256((const __m256i *)(w + i))), _mm512_loadu_ps(xp + i),
                                  d->a[0]);
    float s = sq_bf16_hsum512(_mm512_add_ps(_mm512_add_ps(d->a[0], d->a[1]), _mm512_add_ps(d->a[2], d->a[3])));
    for (; i < n; i++) s += sq_bf16_to_f32(w[i]) * xp[i];
    return s;
}
#endif /* __x86_64__ */
#endif
