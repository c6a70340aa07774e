/* AVX2 and AVX-512 GEMV for mix (spec/codecs.md §14): each block's codes
 * are unpacked to bytes eight at a time (eight b-bit codes are b bytes, for
 * any width), widened to floats and multiplied into x; per block
 * y += s·Σq·x + m·Σx, as the portable kernel does, with other rounding. */
#include "codecs/codecs.h"
#include "codecs/mix/mix_format.h"
#include "codecs/mix/mix_kernels.h"

/* Codes [0, len) of a block into q; eight codes (b bytes) per step. */
static inline void unpack_block(const uint8_t *blk, uint32_t b, uint64_t len, uint8_t *q) {
    const uint64_t mask = (1u << b) - 1;
    uint64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = 0;
        memcpy(&v, blk + i / 8 * b, b);
        for (unsigned k = 0; k < 8; k++) q[i + k] = (uint8_t)(v >> (k * b) & mask);
    }
    for (; i < len; i++) q[i] = (uint8_t)sq_mix_code(blk, b, i);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 void sq_mix_gemv_avx2(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    uint8_t q[136];
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *wr = v->widths + r * v->wb, *blk = v->codes + v->row_ptr[r];
        __m256 acc = _mm256_setzero_ps();
        float tail = 0;
        for (uint64_t j = 0; j < v->nb; j++) {
            const uint32_t b = v->width[sq_mix_wcode(wr, j)];
            const uint64_t len = sq_mix_block_len(v->cols, v->B, j);
            const float *xb = x + j * v->B;
            unpack_block(blk, b, len, q);
            __m256 dq = _mm256_setzero_ps(), sx = _mm256_setzero_ps();
            uint64_t i = 0;
            for (; i + 8 <= len; i += 8) {
                __m128i c8 = _mm_loadl_epi64((const __m128i *)(q + i));
                __m256 qf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c8)), xv = _mm256_loadu_ps(xb + i);
                dq = _mm256_fmadd_ps(qf, xv, dq);
                sx = _mm256_add_ps(sx, xv);
            }
            float dqt = 0, sxt = 0;
            for (; i < len; i++) {
                dqt += (float)q[i] * xb[i];
                sxt += xb[i];
            }
            const float s = _cvtsh_ss(v->scales[r * v->nb + j]), m = _cvtsh_ss(v->mins[r * v->nb + j]);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(s), dq, acc);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(m), sx, acc);
            tail += s * dqt + m * sxt;
            blk += sq_mix_block_bytes(len, b);
        }
        y[r] = hsum8(acc) + tail;
    }
}

AVX512 void sq_mix_gemv_avx512(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    uint8_t q[136];
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *wr = v->widths + r * v->wb, *blk = v->codes + v->row_ptr[r];
        __m512 acc = _mm512_setzero_ps();
        float tail = 0;
        for (uint64_t j = 0; j < v->nb; j++) {
            const uint32_t b = v->width[sq_mix_wcode(wr, j)];
            const uint64_t len = sq_mix_block_len(v->cols, v->B, j);
            const float *xb = x + j * v->B;
            unpack_block(blk, b, len, q);
            __m512 dq = _mm512_setzero_ps(), sx = _mm512_setzero_ps();
            uint64_t i = 0;
            for (; i + 16 <= len; i += 16) {
                __m128i c16 = _mm_loadu_si128((const __m128i *)(q + i));
                __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c16)), xv = _mm512_loadu_ps(xb + i);
                dq = _mm512_fmadd_ps(qf, xv, dq);
                sx = _mm512_add_ps(sx, xv);
            }
            float dqt = 0, sxt = 0;
            for (; i < len; i++) {
                dqt += (float)q[i] * xb[i];
                sxt += xb[i];
            }
            const float s = _cvtsh_ss(v->scales[r * v->nb + j]), m = _cvtsh_ss(v->mins[r * v->nb + j]);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(s), dq, acc);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(m), sx, acc);
            tail += s * dqt + m * sxt;
            blk += sq_mix_block_bytes(len, b);
        }
        y[r] = _mm512_reduce_add_ps(acc) + tail;
    }
}

#else /* not x86-64: the dispatcher never selects these */
void sq_mix_gemv_avx2(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_mix_gemv_portable(v, x, y, r0, r1);
}
void sq_mix_gemv_avx512(const sq_mix_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_mix_gemv_portable(v, x, y, r0, r1);
}
#endif
