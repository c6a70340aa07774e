/* NF4 GEMV with int8 activations (sq_act_q8): the portable kernel and the
 * AVX2 and AVX-512 ones.
 *
 * NF4's values are not small integers, so the SIMD kernels multiply the
 * activations by the table scaled to int16, nf4_i16[q] = round(NF4[q] * K),
 * with vpmaddwd (AVX2) or vpdpwssd (AVX-512 VNNI) and divide by K at the end.
 * K = 28776 is the integer below 2^15 that minimizes the largest relative
 * error of a non-zero entry: 3.3e-5 (K = 32767 gives 1.5e-4), so each
 * product is within 3.3e-5 |w x| of the exact one, inside the 1e-4 sum|w x|
 * the q8 kernels are tested to (tests/test_codecs.c). The portable kernel
 * keeps the exact f32 table and only rounds the activations.
 *
 * Sums stay exact in int32 and in float: a lane adds at most four products,
 * 4 * 127 * 28776 < 2^24. */
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/lut/lut.h"

#define NF4_K 28776.0f
static const int16_t nf4_i16[16] = {-28776, -20034, -15110, -11364, -8185, -5317, -2620, 0,
                                    2290,   4631,   7082,   9724,   12682, 16190, 20804, 28776};

/* Block maximum of group i (row-major over rows x groups), as the decoder sees it. */
static inline float nf4_scale(const sq_tview *t, int dq, uint64_t i) {
    if (!dq) return ((const float *)t->part[1])[i];
    return (float)((const int8_t *)t->part[1])[i] * ((const float *)t->part[2])[i / SQ_NF4_DQ_BLOCK] +
           ((const float *)t->part[3])[0];
}

/* y = sum over groups of absmax * sum over chunks of d_chunk * (NF4[q] . xq), in f32. */
void sq_nf4_gemv_q8(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const float *tab = sq_codec_value_table(t->codec, NULL);
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, 4);
    const int dq = !!(t->params[SQ_P_FLAGS] & SQ_PF_DQ);
    const uint8_t *codes = t->part[0];
    for (uint64_t r = r0; r < r1; r++) {
        float total = 0;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            float acc = 0;
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                sq_unpack_chunk(4, codes + r * rb + (i / SQ_CHUNK) * 16, q);
                float dot = 0;
                for (int k = 0; k < SQ_CHUNK; k++) dot += tab[q[k]] * (float)x->q[i + (uint64_t)k];
                acc += x->d[i / SQ_CHUNK] * dot;
            }
            total += nf4_scale(t, dq, r * ng + g) * acc;
        }
        y[r] = total;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The table's low and high bytes, for two vpshufb lookups whose results
 * vpunpck{l,h}bw interleave into int16 words. */
static void nf4_i16_bytes(uint8_t lo[16], uint8_t hi[16]) {
    for (int i = 0; i < 16; i++) {
        lo[i] = (uint8_t)((uint16_t)nf4_i16[i] & 0xff);
        hi[i] = (uint8_t)((uint16_t)nf4_i16[i] >> 8);
    }
}

/* 32 activations of one chunk as int16 words in the order the weights come
 * out of a chunk's lookup: [unpacklo, unpackhi] of the bytes 0-15 | 16-31. */
AVX2 static inline void chunk_x16(const int8_t *q, __m256i *xa, __m256i *xb) {
    const __m256i v = _mm256_load_si256((const __m256i *)q), s = _mm256_cmpgt_epi8(_mm256_setzero_si256(), v);
    *xa = _mm256_unpacklo_epi8(v, s);
    *xb = _mm256_unpackhi_epi8(v, s);
}

/* The integer dot of one chunk's 32 codes with xa/xb, in eight int32 lanes. */
AVX2 static inline __m256i chunk_dot(const uint8_t *p, __m256i tl, __m256i th, __m256i xa, __m256i xb) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(15);
    const __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    const __m256i wl = _mm256_shuffle_epi8(tl, idx), wh = _mm256_shuffle_epi8(th, idx);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi8(wl, wh), xa),
                            _mm256_madd_epi16(_mm256_unpackhi_epi8(wl, wh), xb));
}

AVX2 void sq_nf4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, 4), nc = sq_nchunks(cols), cpg = gl / SQ_CHUNK;
    const int dq = !!(t->params[SQ_P_FLAGS] & SQ_PF_DQ);
    const uint8_t *codes = t->part[0];
    __m256i *xw = aligned_alloc(64, (size_t)nc * 64); /* the activations as words, once for all rows */
    if (!xw) {
        sq_nf4_gemv_q8(t, x, y, r0, r1);
        return;
    }
    for (uint64_t c = 0; c < nc; c++) chunk_x16(x->q + c * SQ_CHUNK, &xw[2 * c], &xw[2 * c + 1]);
    uint8_t lo[16], hi[16];
    nf4_i16_bytes(lo, hi);
    const __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lo));
    const __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hi));
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m256 tot = _mm256_setzero_ps();
        for (uint64_t g = 0; g < ng; g++) {
            const uint64_t c0 = g * cpg, c1 = c0 + cpg < nc ? c0 + cpg : nc;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            uint64_t c = c0;
            for (; c + 2 <= c1; c += 2) {
                _mm_prefetch((const char *)(row + c * 16) + 1024, _MM_HINT_T0);
                __m256i d0 = chunk_dot(row + c * 16, tl, th, xw[2 * c], xw[2 * c + 1]);
                __m256i d1 = chunk_dot(row + c * 16 + 16, tl, th, xw[2 * c + 2], xw[2 * c + 3]);
                a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), _mm256_set1_ps(x->d[c]), a0);
                a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), _mm256_set1_ps(x->d[c + 1]), a1);
            }
            if (c < c1)
                a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(chunk_dot(row + c * 16, tl, th, xw[2 * c], xw[2 * c + 1])),
                                     _mm256_set1_ps(x->d[c]), a0);
            tot = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(nf4_scale(t, dq, r * ng + g)), tot);
        }
        y[r] = hsum8(tot) * (1.0f / NF4_K);
    }
    free(xw);
}

/* AVX-512: a chunk pair per register. The pair's 32 code bytes give the
 * nibble lanes [A.lo B.lo A.hi B.hi] (A, B the two chunks; lo = values
 * 0-15, hi = 16-31), looked up and interleaved into words as in the AVX2
 * kernel; the activations are laid out to match once per call. Int32 lanes
 * 0-3 and 8-11 hold chunk A, 4-7 and 12-15 chunk B. */
/* The integer dot of a chunk pair's 32 code bytes with its activation words, in 16 int32 lanes. */
AVX512 static inline __attribute__((always_inline)) __m512i pair_dot(const uint8_t *p, __m512i tl, __m512i th, const __m512i *xw) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)p), m4 = _mm256_set1_epi8(15);
    const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m4)),
                                           _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), 1);
    const __m512i wl = _mm512_shuffle_epi8(tl, idx), wh = _mm512_shuffle_epi8(th, idx);
    return _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_unpacklo_epi8(wl, wh), xw[0]),
                               _mm512_unpackhi_epi8(wl, wh), xw[1]);
}

#define PAIR_B 0xf0f0
AVX512 void sq_nf4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, 4), nc = sq_nchunks(cols), np = nc / 2, cpg = gl / SQ_CHUNK;
    const int dq = !!(t->params[SQ_P_FLAGS] & SQ_PF_DQ);
    const uint8_t *codes = t->part[0];
    __m512i *xw = aligned_alloc(64, (size_t)(np + 1) * 128);
    __m512 *dx = aligned_alloc(64, (size_t)(np + 1) * 64);
    if (!xw || !dx) {
        free(xw);
        free(dx);
        sq_nf4_gemv_q8_avx2(t, x, y, r0, r1);
        return;
    }
    for (uint64_t p = 0; p < np; p++) {
        __m512i v = _mm512_load_si512((const void *)(x->q + p * 64));     /* A.lo A.hi B.lo B.hi */
        v = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));            /* A.lo B.lo A.hi B.hi */
        const __m512i s = _mm512_movm_epi8(_mm512_movepi8_mask(v));         /* sign bytes */
        xw[2 * p] = _mm512_unpacklo_epi8(v, s);
        xw[2 * p + 1] = _mm512_unpackhi_epi8(v, s);
        dx[p] = _mm512_mask_blend_ps(PAIR_B, _mm512_set1_ps(x->d[2 * p]), _mm512_set1_ps(x->d[2 * p + 1]));
    }
    uint8_t lo[16], hi[16];
    nf4_i16_bytes(lo, hi);
    const __m512i tl = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)lo));
    const __m512i th = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)hi));
    const __m256i tl2 = _mm512_castsi512_si256(tl), th2 = _mm512_castsi512_si256(th);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        const uint64_t gi = r * ng;
        __m512 tot0 = _mm512_setzero_ps(), tot1 = _mm512_setzero_ps();
        if (cpg == 1) { /* every chunk its own block maximum */
            for (uint64_t p = 0; p < np; p++) {
                _mm_prefetch((const char *)(row + p * 32) + 1024, _MM_HINT_T0);
                const __m512 s = _mm512_mask_blend_ps(PAIR_B, _mm512_set1_ps(nf4_scale(t, dq, gi + 2 * p)),
                                                      _mm512_set1_ps(nf4_scale(t, dq, gi + 2 * p + 1)));
                const __m512 f = _mm512_mul_ps(dx[p], s);
                if (p & 1) tot1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pair_dot(row + p * 32, tl, th, xw + 2 * p)), f, tot1);
                else tot0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pair_dot(row + p * 32, tl, th, xw + 2 * p)), f, tot0);
            }
        } else { /* groups of an even number of chunks: pairs never straddle two */
            for (uint64_t g = 0; g < ng; g++) {
                const uint64_t p0 = g * cpg / 2, p1 = p0 + cpg / 2 < np ? p0 + cpg / 2 : np;
                __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
                uint64_t p = p0;
                for (; p + 2 <= p1; p += 2) {
                    _mm_prefetch((const char *)(row + p * 32) + 1024, _MM_HINT_T0);
                    a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pair_dot(row + p * 32, tl, th, xw + 2 * p)), dx[p], a0);
                    a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pair_dot(row + (p + 1) * 32, tl, th, xw + 2 * (p + 1))), dx[p + 1], a1);
                }
                if (p < p1) a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pair_dot(row + p * 32, tl, th, xw + 2 * p)), dx[p], a0);
                const __m512 s = _mm512_set1_ps(nf4_scale(t, dq, gi + g));
                if (g & 1) tot1 = _mm512_fmadd_ps(_mm512_add_ps(a0, a1), s, tot1);
                else tot0 = _mm512_fmadd_ps(_mm512_add_ps(a0, a1), s, tot0);
            }
        }
        float total = _mm512_reduce_add_ps(_mm512_add_ps(tot0, tot1));
        if (nc & 1) { /* the odd last chunk, as the AVX2 kernel takes it */
            __m256i xa, xb;
            chunk_x16(x->q + (nc - 1) * SQ_CHUNK, &xa, &xb);
            const __m256i d = chunk_dot(row + (nc - 1) * 16, tl2, th2, xa, xb);
            total += hsum8(_mm256_cvtepi32_ps(d)) * x->d[nc - 1] * nf4_scale(t, dq, gi + (nc - 1) / cpg);
        }
        y[r] = total * (1.0f / NF4_K);
    }
    free(xw);
    free(dx);
}

#else /* not x86-64: never selected */
void sq_nf4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_nf4_gemv_q8(t, x, y, r0, r1);
}
void sq_nf4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_nf4_gemv_q8(t, x, y, r0, r1);
}
#endif
