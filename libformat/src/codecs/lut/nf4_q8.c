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
 * Sums stay exact in int32 (a lane adds at most eight products, 8 * 127 *
 * 28776 < 2^31); the AVX2 lanes (four products, < 2^24) convert to float
 * exactly, the AVX-512 ones within 2^-24 of their value. */
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

/* Both tables in each 128-bit lane, for vpshufb. */
AVX2 static void nf4_i16_tables(__m256i *tl, __m256i *th) {
    uint8_t lo[16], hi[16];
    nf4_i16_bytes(lo, hi);
    *tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lo));
    *th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hi));
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

/* AVX2: a chunk pair (A, B) per step, its 32 code bytes in one load (A in
 * the low 128-bit lane, B in the high one). The low nibbles index codes
 * 0-15 of both chunks, the high nibbles codes 16-31; each lookup gives two
 * registers of int16 words (unpacklo/hi of the table's low and high bytes),
 * so four vpmaddwd take the pair's 64 weights against activations laid out
 * once per call to match: int32 lanes 0-3 hold chunk A, lanes 4-7 chunk B,
 * and a vector (dA x4, dB x4) times the block maxima (one per lane half at
 * g32, else one for both: pairs never straddle blocks) scales them, one
 * multiply-add per pair at any block size. Sums of a lane: eight products,
 * < 8 * 127 * 28776 < 2^25, converted to float within 2^-24 of their value
 * (as the AVX-512 kernel). Fewer operations per weight than a chunk at a
 * time (one load, shift and mask pair, and no lane insert per 64 weights). */
typedef struct pair_x {
    __m256i w[4]; /* int16: [A 0-7 | B 0-7], [A 8-15 | B 8-15], [A 16-23 | B 16-23], [A 24-31 | B 24-31] */
} pair_x;

AVX2 static inline __attribute__((always_inline)) __m256i pair_dot(const uint8_t *p, __m256i tl, __m256i th, const pair_x *x) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)p), m = _mm256_set1_epi8(15);
    const __m256i il = _mm256_and_si256(v, m), ih = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    const __m256i ll = _mm256_shuffle_epi8(tl, il), lh = _mm256_shuffle_epi8(th, il);
    const __m256i hl = _mm256_shuffle_epi8(tl, ih), hh = _mm256_shuffle_epi8(th, ih);
    const __m256i s0 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi8(ll, lh), x->w[0]),
                                        _mm256_madd_epi16(_mm256_unpackhi_epi8(ll, lh), x->w[1]));
    const __m256i s1 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi8(hl, hh), x->w[2]),
                                        _mm256_madd_epi16(_mm256_unpackhi_epi8(hl, hh), x->w[3]));
    return _mm256_add_epi32(s0, s1);
}

/* One chunk's activations as int16 into lane half h (0: A, 1: B) of a pair_x. */
static void pair_x_chunk(const int8_t *q, int h, pair_x *x) {
    int16_t *w = (int16_t *)x->w;
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 8; j++) w[16 * k + 8 * h + j] = q[8 * k + j];
}

AVX2 void sq_nf4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, 4), nc = sq_nchunks(cols), cpg = gl / SQ_CHUNK, np = nc / 2;
    const int dq = !!(t->params[SQ_P_FLAGS] & SQ_PF_DQ);
    const uint8_t *codes = t->part[0];
    /* pairs may not straddle groups: groups of one chunk (a scale per lane
     * half) or of an even number of chunks, which NF4's blocks of 32-256
     * always are; anything else takes the portable kernel */
    const int g32 = cpg == 1, lg = cpg ? __builtin_ctzll(cpg) : 0;
    pair_x *xw = (g32 || cpg % 2 == 0) ? aligned_alloc(64, (size_t)(np + 1) * sizeof(pair_x)) : NULL;
    __m256 *dx = aligned_alloc(64, (size_t)(np + 2) / 2 * 64);
    float *sc = dq ? malloc((size_t)ng * sizeof(float)) : NULL;
    if (!xw || !dx || (dq && !sc)) {
        free(xw);
        free(dx);
        free(sc);
        sq_nf4_gemv_q8(t, x, y, r0, r1);
        return;
    }
    for (uint64_t p = 0; p < np; p++) {
        pair_x_chunk(x->q + 2 * p * SQ_CHUNK, 0, &xw[p]);
        pair_x_chunk(x->q + (2 * p + 1) * SQ_CHUNK, 1, &xw[p]);
        dx[p] = _mm256_setr_m128(_mm_set1_ps(x->d[2 * p]), _mm_set1_ps(x->d[2 * p + 1]));
    }
    __m256i tl, th;
    nf4_i16_tables(&tl, &th);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        const float *s = (const float *)t->part[1] + r * ng; /* the row's block maxima */
        if (dq) {
            for (uint64_t g = 0; g < ng; g++) sc[g] = nf4_scale(t, dq, r * ng + g);
            s = sc;
        }
        __m256 tot0 = _mm256_setzero_ps(), tot1 = _mm256_setzero_ps();
        float tail = 0;
        {
            uint64_t p = 0;
            for (; p + 2 <= np; p += 2) {
                _mm_prefetch((const char *)(row + p * 32) + 1024, _MM_HINT_T0);
                const __m256 s0 = g32 ? _mm256_setr_m128(_mm_set1_ps(s[2 * p]), _mm_set1_ps(s[2 * p + 1])) : _mm256_set1_ps(s[(2 * p) >> lg]);
                const __m256 s1 = g32 ? _mm256_setr_m128(_mm_set1_ps(s[2 * p + 2]), _mm_set1_ps(s[2 * p + 3])) : _mm256_set1_ps(s[(2 * p + 2) >> lg]);
                tot0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot(row + p * 32, tl, th, &xw[p])), _mm256_mul_ps(dx[p], s0), tot0);
                tot1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot(row + p * 32 + 32, tl, th, &xw[p + 1])), _mm256_mul_ps(dx[p + 1], s1), tot1);
            }
            if (p < np) {
                const __m256 s0 = g32 ? _mm256_setr_m128(_mm_set1_ps(s[2 * p]), _mm_set1_ps(s[2 * p + 1])) : _mm256_set1_ps(s[(2 * p) >> lg]);
                tot0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_dot(row + p * 32, tl, th, &xw[p])), _mm256_mul_ps(dx[p], s0), tot0);
            }
        }
        if (nc & 1) { /* the odd last chunk */
            const uint64_t c = nc - 1;
            __m256i xa, xb;
            chunk_x16(x->q + c * SQ_CHUNK, &xa, &xb);
            tail = hsum8(_mm256_cvtepi32_ps(chunk_dot(row + c * 16, tl, th, xa, xb))) * x->d[c] * s[c / cpg];
        }
        y[r] = (hsum8(_mm256_add_ps(tot0, tot1)) + tail) * (1.0f / NF4_K);
    }
    free(xw);
    free(dx);
    free(sc);
}

/* AVX-512: four chunks (64 code bytes, 128 weights) per step, with no
 * unpacking. vpermw looks up the int16 table with the low 5 bits of each
 * 16-bit word, so with the table repeated (T[i] = nf4_i16[i & 15]) the
 * words of the code bytes, shifted right by 0, 4, 8 and 12, look up the low
 * nibble of the even byte, its high nibble, the odd byte's low and high
 * nibbles: four registers of 32 weights each, and no masking. In every one,
 * words 8c..8c+7 (int32 lanes 4c..4c+3) belong to chunk c of the four, so
 * the four vpdpwssd products add into one register whose 128-bit lane c is
 * chunk c. The activations are rearranged once per call to match
 * (even/odd values of each half of a chunk), with each chunk's scale
 * broadcast to its lane. */
typedef struct quad_x {
    _Alignas(64) int16_t lo_even[32];
    int16_t hi_even[32], lo_odd[32], hi_odd[32];
} quad_x;

AVX512 static inline __attribute__((always_inline)) __m512i quad_dot(const uint8_t *p, __m512i tab, const quad_x *x) {
    const __m512i v = _mm512_loadu_si512((const void *)p);
    _mm_prefetch((const char *)p + 4096, _MM_HINT_T0); /* as int_q8_planes.c's PF_AHEAD */
    __m512i acc = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_permutexvar_epi16(v, tab),
                                      _mm512_load_si512((const void *)x->lo_even));
    acc = _mm512_dpwssd_epi32(acc, _mm512_permutexvar_epi16(_mm512_srli_epi16(v, 4), tab), _mm512_load_si512((const void *)x->hi_even));
    acc = _mm512_dpwssd_epi32(acc, _mm512_permutexvar_epi16(_mm512_srli_epi16(v, 8), tab), _mm512_load_si512((const void *)x->lo_odd));
    return _mm512_dpwssd_epi32(acc, _mm512_permutexvar_epi16(_mm512_srli_epi16(v, 12), tab),
                               _mm512_load_si512((const void *)x->hi_odd));
}

/* One chunk's 32 activations as the words quad_dot multiplies: byte b of a
 * chunk holds value b (low nibble) and b + 16 (high nibble). */
static void quad_x_chunk(const int8_t *q, int c, quad_x *x) {
    int16_t *le = x->lo_even + 8 * c, *he = x->hi_even + 8 * c, *lo = x->lo_odd + 8 * c, *ho = x->hi_odd + 8 * c;
    for (int j = 0; j < 8; j++) {
        le[j] = q[2 * j];
        lo[j] = q[2 * j + 1];
        he[j] = q[16 + 2 * j];
        ho[j] = q[16 + 2 * j + 1];
    }
}

AVX512 void sq_nf4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, 4), nc = sq_nchunks(cols), nq = nc / 4, cpg = gl / SQ_CHUNK;
    const int dq = !!(t->params[SQ_P_FLAGS] & SQ_PF_DQ);
    const uint8_t *codes = t->part[0];
    quad_x *xw = aligned_alloc(64, (size_t)(nq + 1) * sizeof(quad_x));
    __m512 *dx = aligned_alloc(64, (size_t)(nq + 1) * 64);
    float *sc = dq ? malloc((size_t)ng * sizeof(float)) : NULL;
    if (!xw || !dx || (dq && !sc)) {
        free(xw);
        free(dx);
        free(sc);
        sq_nf4_gemv_q8_avx2(t, x, y, r0, r1);
        return;
    }
    for (uint64_t q = 0; q < nq; q++) {
        for (int c = 0; c < 4; c++) quad_x_chunk(x->q + (4 * q + (uint64_t)c) * SQ_CHUNK, c, &xw[q]);
        dx[q] = _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                      _mm512_castps128_ps512(_mm_loadu_ps(x->d + 4 * q)));
    }
    int16_t t32[32];
    for (int i = 0; i < 32; i++) t32[i] = nf4_i16[i & 15];
    const __m512i tab = _mm512_loadu_si512((const void *)t32);
    /* lane l of a quad belongs to chunk l / 4, whose scale is (l / 4) / cpg places on (groups of up to 4 chunks) */
    const uint64_t per = cpg < 4 ? 4 / cpg : 1;
    const __mmask16 smask = (__mmask16)((1u << per) - 1);
    int32_t si[16];
    for (int l = 0; l < 16; l++) si[l] = cpg < 4 ? (int)((uint64_t)(l / 4) / cpg) : 0;
    const __m512i sidx = _mm512_loadu_si512((const void *)si);
    __m256i tl2, th2;
    nf4_i16_tables(&tl2, &th2);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        const float *s = (const float *)t->part[1] + r * ng;
        if (dq) {
            for (uint64_t g = 0; g < ng; g++) sc[g] = nf4_scale(t, dq, r * ng + g);
            s = sc;
        }
        __m512 tot0 = _mm512_setzero_ps(), tot1 = _mm512_setzero_ps();
        uint64_t q = 0;
        for (; q + 2 <= nq; q += 2) {
            const __m512 s0 = _mm512_permutexvar_ps(sidx, _mm512_maskz_loadu_ps(smask, s + 4 * q / cpg));
            const __m512 s1 = _mm512_permutexvar_ps(sidx, _mm512_maskz_loadu_ps(smask, s + 4 * (q + 1) / cpg));
            tot0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(quad_dot(row + q * 64, tab, &xw[q])), _mm512_mul_ps(dx[q], s0), tot0);
            tot1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(quad_dot(row + q * 64 + 64, tab, &xw[q + 1])), _mm512_mul_ps(dx[q + 1], s1), tot1);
        }
        if (q < nq) {
            const __m512 s0 = _mm512_permutexvar_ps(sidx, _mm512_maskz_loadu_ps(smask, s + 4 * q / cpg));
            tot0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(quad_dot(row + q * 64, tab, &xw[q])), _mm512_mul_ps(dx[q], s0), tot0);
        }
        float total = _mm512_reduce_add_ps(_mm512_add_ps(tot0, tot1));
        for (uint64_t c = 4 * nq; c < nc; c++) { /* the last 1-3 chunks, as the AVX2 kernel takes them */
            __m256i xa, xb;
            chunk_x16(x->q + c * SQ_CHUNK, &xa, &xb);
            const __m256i d = chunk_dot(row + c * 16, tl2, th2, xa, xb);
            total += hsum8(_mm256_cvtepi32_ps(d)) * x->d[c] * s[c / cpg];
        }
        y[r] = total * (1.0f / NF4_K);
    }
    free(xw);
    free(dx);
    free(sc);
}

#else /* not x86-64: never selected */
void sq_nf4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_nf4_gemv_q8(t, x, y, r0, r1);
}
void sq_nf4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_nf4_gemv_q8(t, x, y, r0, r1);
}
#endif
