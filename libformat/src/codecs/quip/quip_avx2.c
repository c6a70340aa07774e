/* AVX2 GEMV of the quip codec: one E8P group of 8 weights is one ymm,
 * base[A] with its sign pattern XORed in and the ±1/4 shift added, times
 * 8 activations. Four rows at a time (four fixed accumulators) share the
 * activation loads. No FMA:
 * the products and sums are the portable kernel's, lane for lane, so the
 * result is bit-identical (tests/test_quip.c). */
#include <pthread.h>

#include "codecs/codecs.h"
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,f16c")))

static uint32_t signmask[256][8]; /* 0x80000000 where sign[S][i] = -1 */
static pthread_once_t mask_once = PTHREAD_ONCE_INIT;
static void build_masks(void) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    for (int S = 0; S < 256; S++)
        for (int i = 0; i < 8; i++) signmask[S][i] = t->sign[S][i] < 0 ? 0x80000000u : 0;
}

AVX2 static inline __m256 e8p_value(const sq_e8p_tables *t, uint16_t c) {
    const unsigned A = c >> 8, S = c & 0xFF;
    __m256 b = _mm256_loadu_ps(t->base[A]);
    b = _mm256_xor_ps(b, _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)signmask[S])));
    return _mm256_add_ps(b, _mm256_set1_ps(t->shift[S]));
}

AVX2 static inline float hsum(__m256 a) {
    float v[8];
    _mm256_storeu_ps(v, a);
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Four rows (c[k] = row k's codes; rows past the matrix repeat one) of an
 * E8P stage: out[k] = that row's dot. */
AVX2 static void e8p_rows4(const sq_e8p_tables *t, const uint16_t *const c[4], uint64_t G, const float *x, float out[4]) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint64_t g = 0; g < G; g++) {
        const __m256 xv = _mm256_loadu_ps(x + 8 * g);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(e8p_value(t, c[0][g]), xv));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(e8p_value(t, c[1][g]), xv));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(e8p_value(t, c[2][g]), xv));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(e8p_value(t, c[3][g]), xv));
    }
    out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);
}

/* The same for an 8-bit stage with value table tab (E81B or E8R). */
AVX2 static void tab_rows4(const float (*tab)[8], const uint8_t *const c[4], uint64_t G, const float *x, float out[4]) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint64_t g = 0; g < G; g++) {
        const __m256 xv = _mm256_loadu_ps(x + 8 * g);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(tab[c[0][g]]), xv));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(tab[c[1][g]]), xv));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(tab[c[2][g]]), xv));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(tab[c[3][g]]), xv));
    }
    out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);
}

AVX2 void sq_quip_gemv_avx2(const sq_tview *tv, const float *x, float *y, uint64_t r0, uint64_t r1) {
    pthread_once(&mask_once, build_masks);
    sq_quip_view v;
    sq_quip_view_from_tview(tv, &v);
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = v.cols / 8;
    const uint32_t S = sq_quip_stages(v.bits, v.nested);
    for (uint64_t r = r0; r < r1; r += 4) {
        const int n = r1 - r < 4 ? (int)(r1 - r) : 4;
        float d[3][4];
        for (uint32_t s = 0; s < S; s++) {
            const sq_quip_book book = sq_quip_stage_book(v.bits, v.nested, s);
            const void *codes = sq_quip_stage_codes(&v, s);
            if (book == SQ_QUIP_E8P) {
                const uint16_t *c[4];
                for (int k = 0; k < 4; k++) c[k] = (const uint16_t *)codes + (r + (uint64_t)(k < n ? k : 0)) * G;
                e8p_rows4(t, c, G, x, d[s]);
            } else {
                const uint8_t *c[4];
                for (int k = 0; k < 4; k++) c[k] = (const uint8_t *)codes + (r + (uint64_t)(k < n ? k : 0)) * G;
                tab_rows4(book == SQ_QUIP_E81B ? t->e81b : t->e8r, c, G, x, d[s]);
            }
        }
        for (int k = 0; k < n; k++) { /* the portable kernel's order: stage 0's product, then the others added */
            float s = sq_f16_to_f32(v.scales[r + (uint64_t)k]) * d[0][k];
            for (uint32_t j = 1; j < S; j++) s += sq_f16_to_f32(v.scales[j * v.rows + r + (uint64_t)k]) * d[j][k];
            y[r + (uint64_t)k] = s;
        }
    }
}
#endif
