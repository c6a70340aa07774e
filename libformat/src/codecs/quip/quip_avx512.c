/* AVX-512 GEMV of the quip codec: two rows per zmm, one E8P (or E81B / E8R)
 * group of 8 weights of each in its 256-bit half, so each lane still sums
 * its row's products in the portable kernel's order (group after group):
 * the result is the portable kernel's, bit for bit (tests/test_quip_codec.c).
 * The E8P values are built exactly (they are small dyadic numbers): base,
 * sign-bit and shift rows of two codes inserted into the halves, XOR, add.
 * Eight rows (four accumulators) share each activation load. No FMA (the
 * portable kernel multiplies, then adds). The kernel is bound by the
 * per-group table lookups, not the vector width: on the Zen 4 it was
 * written on it runs at the AVX2 kernel's speed. */
#include <pthread.h>

#include "codecs/codecs.h"
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl")))

static uint32_t signbits[256][8]; /* 0x80000000 where sign[S][i] = -1 */
static float shiftv[256][8];      /* shift[S] in every lane */
static pthread_once_t mask_once = PTHREAD_ONCE_INIT;
static void build_masks(void) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    for (int S = 0; S < 256; S++)
        for (int i = 0; i < 8; i++) {
            signbits[S][i] = t->sign[S][i] < 0 ? 0x80000000u : 0;
            shiftv[S][i] = t->shift[S];
        }
}

/* Two 8-float table rows as the low and high halves of a zmm. */
AVX512 static inline __m512 pair(const float *lo, const float *hi) {
    const __m512d l = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(lo)));
    return _mm512_castpd_ps(_mm512_insertf64x4(l, _mm256_castps_pd(_mm256_loadu_ps(hi)), 1));
}

/* E8P values of codes c0 (low half) and c1 (high half): b with the sign
 * bits XORed in, plus the shift (exact: small dyadic numbers). */
AVX512 static inline __m512 e8p_pair(const sq_e8p_tables *t, uint16_t c0, uint16_t c1) {
    const unsigned S0 = c0 & 0xFF, S1 = c1 & 0xFF;
    const __m512 b = pair(t->base[c0 >> 8], t->base[c1 >> 8]);
    const __m512 sg = pair((const float *)signbits[S0], (const float *)signbits[S1]);
    const __m512 v = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(b), _mm512_castps_si512(sg)));
    return _mm512_add_ps(v, pair(shiftv[S0], shiftv[S1]));
}

/* Eight rows (c[k] = row k's codes; rows past the matrix repeat one) of one
 * stage: out[k] = that row's dot, the portable kernel's final sum. */
AVX512 static void finish8(__m512 a0, __m512 a1, __m512 a2, __m512 a3, float out[8]) {
    float a[64];
    _mm512_storeu_ps(a, a0);
    _mm512_storeu_ps(a + 16, a1);
    _mm512_storeu_ps(a + 32, a2);
    _mm512_storeu_ps(a + 48, a3);
    for (int k = 0; k < 8; k++) {
        const float *l = a + 8 * k;
        out[k] = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    }
}

AVX512 static void e8p_rows8(const sq_e8p_tables *t, const uint16_t *const c[8], uint64_t G, const float *x, float out[8]) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint64_t g = 0; g < G; g++) {
        const __m512 xv = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(x + 8 * g))));
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(e8p_pair(t, c[0][g], c[1][g]), xv));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(e8p_pair(t, c[2][g], c[3][g]), xv));
        a2 = _mm512_add_ps(a2, _mm512_mul_ps(e8p_pair(t, c[4][g], c[5][g]), xv));
        a3 = _mm512_add_ps(a3, _mm512_mul_ps(e8p_pair(t, c[6][g], c[7][g]), xv));
    }
    finish8(a0, a1, a2, a3, out);
}

/* The same for an 8-bit stage with value table tab (E81B or E8R). */
AVX512 static void tab_rows8(const float (*tab)[8], const uint8_t *const c[8], uint64_t G, const float *x, float out[8]) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint64_t g = 0; g < G; g++) {
        const __m512 xv = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(x + 8 * g))));
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(pair(tab[c[0][g]], tab[c[1][g]]), xv));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(pair(tab[c[2][g]], tab[c[3][g]]), xv));
        a2 = _mm512_add_ps(a2, _mm512_mul_ps(pair(tab[c[4][g]], tab[c[5][g]]), xv));
        a3 = _mm512_add_ps(a3, _mm512_mul_ps(pair(tab[c[6][g]], tab[c[7][g]]), xv));
    }
    finish8(a0, a1, a2, a3, out);
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
            const void *codes = sq_quip_stage_codes(&v, s);
            if (book == SQ_QUIP_E8P) {
                const uint16_t *c[8];
                for (int k = 0; k < 8; k++) c[k] = (const uint16_t *)codes + (r + (uint64_t)(k < n ? k : 0)) * G;
                e8p_rows8(t, c, G, x, d[s]);
            } else {
                const uint8_t *c[8];
                for (int k = 0; k < 8; k++) c[k] = (const uint8_t *)codes + (r + (uint64_t)(k < n ? k : 0)) * G;
                tab_rows8(book == SQ_QUIP_E81B ? t->e81b : t->e8r, c, G, x, d[s]);
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
