/* AVX-512 GEMV of the quip codec: two rows per zmm, one E8P (or E81B / E8R)
 * group of 8 weights of each in its 256-bit half, so each lane still sums
 * its row's products in the portable kernel's order (group after group):
 * the result is the portable kernel's, bit for bit (tests/test_quip_codec.c).
 * The E8P values are built exactly (they are small dyadic numbers): base
 * rows inserted into the halves, the sign pattern applied as a negation
 * under a lane mask, the ±1/4 shift blended per half. Eight rows share
 * each activation load. No FMA (the portable kernel multiplies, then adds). */
#include <pthread.h>

#include "codecs/codecs.h"
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl")))

static uint8_t negmask[256]; /* bit i set where sign[S][i] = -1 */
static pthread_once_t mask_once = PTHREAD_ONCE_INIT;
static void build_masks(void) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    for (int S = 0; S < 256; S++) {
        unsigned m = 0;
        for (int i = 0; i < 8; i++) m |= (t->sign[S][i] < 0 ? 1u : 0u) << i;
        negmask[S] = (uint8_t)m;
    }
}

/* Two 8-float table rows as the low and high halves of a zmm. */
AVX512 static inline __m512 pair(const float *lo, const float *hi) {
    const __m512d l = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(lo)));
    return _mm512_castpd_ps(_mm512_insertf64x4(l, _mm256_castps_pd(_mm256_loadu_ps(hi)), 1));
}

/* E8P values of codes c0 (low half) and c1 (high half). */
AVX512 static inline __m512 e8p_pair(const sq_e8p_tables *t, uint16_t c0, uint16_t c1, __m512 quarter) {
    const unsigned S0 = c0 & 0xFF, S1 = c1 & 0xFF;
    const __m512 b = pair(t->base[c0 >> 8], t->base[c1 >> 8]);
    const __mmask16 neg = (__mmask16)(negmask[S0] | (unsigned)negmask[S1] << 8);
    const __mmask16 minus = (__mmask16)((t->shift[S0] < 0 ? 0x00FFu : 0) | (t->shift[S1] < 0 ? 0xFF00u : 0));
    const __m512 v = _mm512_mask_sub_ps(b, neg, _mm512_setzero_ps(), b); /* ±b */
    return _mm512_add_ps(v, _mm512_mask_sub_ps(quarter, minus, _mm512_setzero_ps(), quarter)); /* + (±1/4) */
}

/* Rows r..r+n-1 (n <= 8) of one stage: out[k] = that row's dot; tab is the
 * 8-bit stage's table or NULL for an E8P stage. Rows past n repeat row r
 * (computed, not stored). */
AVX512 static void stage_rows(const sq_e8p_tables *t, const void *codes, const float (*tab)[8], uint64_t r, int n,
                              uint64_t G, const float *x, float out[8]) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const __m512 quarter = _mm512_set1_ps(0.25f);
    uint64_t row[8];
    for (int k = 0; k < 8; k++) row[k] = (r + (uint64_t)(k < n ? k : 0)) * G;
    const int np = (n + 1) / 2;
    for (uint64_t g = 0; g < G; g++) {
        const __m512 xv = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(x + 8 * g))));
        for (int p = 0; p < np; p++) {
            __m512 v;
            if (tab) {
                const uint8_t *c = codes;
                v = pair(tab[c[row[2 * p] + g]], tab[c[row[2 * p + 1] + g]]);
            } else {
                const uint16_t *c = codes;
                v = e8p_pair(t, c[row[2 * p] + g], c[row[2 * p + 1] + g], quarter);
            }
            acc[p] = _mm512_add_ps(acc[p], _mm512_mul_ps(v, xv));
        }
    }
    for (int p = 0; p < np; p++) {
        float a[16];
        _mm512_storeu_ps(a, acc[p]);
        for (int h = 0; h < 2 && 2 * p + h < n; h++) { /* the portable kernel's final sum */
            const float *l = a + 8 * h;
            out[2 * p + h] = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        }
    }
}

AVX512 void sq_quip_gemv_avx512(const sq_tview *tv, const float *x, float *y, uint64_t r0, uint64_t r1) {
    pthread_once(&mask_once, build_masks);
    sq_quip_view v;
    sq_quip_view_from_tview(tv, &v);
    const sq_e8p_tables *t = sq_e8p_tables_get();
    const uint64_t G = v.cols / 8;
    const uint32_t S = sq_quip_stages(v.bits, v.nested);
    for (uint64_t r = r0; r < r1; r += 8) {
        const int n = r1 - r < 8 ? (int)(r1 - r) : 8;
        float d[3][8];
        for (uint32_t s = 0; s < S; s++) {
            const sq_quip_book book = sq_quip_stage_book(v.bits, v.nested, s);
            stage_rows(t, sq_quip_stage_codes(&v, s), book == SQ_QUIP_E8P ? NULL : book == SQ_QUIP_E81B ? t->e81b : t->e8r,
                       r, n, G, x, d[s]);
        }
        for (int k = 0; k < n; k++) { /* the portable kernel's order: stage 0's product, then the others added */
            float s = sq_f16_to_f32(v.scales[r + (uint64_t)k]) * d[0][k];
            for (uint32_t j = 1; j < S; j++) s += sq_f16_to_f32(v.scales[j * v.rows + r + (uint64_t)k]) * d[j][k];
            y[r + (uint64_t)k] = s;
        }
    }
}
#endif
