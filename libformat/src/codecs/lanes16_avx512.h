/* sq_lanes16_sum (codecs.h) on a zmm: the same adds in the same order. */
#ifndef SQUISH_CODECS_LANES16_AVX512_H
#define SQUISH_CODECS_LANES16_AVX512_H

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static inline float sq_lanes16_sum_avx512(__m512 a) {
    const __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    return _mm_cvtss_f32(_mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1)));
}
#endif

#endif
