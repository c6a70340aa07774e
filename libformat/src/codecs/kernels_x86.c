/* AVX2 and AVX-512 GEMV kernels, beside the portable ones they are tested
 * against (tests/test_kernels.c). Compiled with per-function target
 * attributes; chosen at run time by sq_isa_active(). */
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/int/int_q8_planes.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* Scale loads with F16C instead of the portable bit manipulation. */
AVX2 static inline float scale_load(uint32_t dt, const void *base, uint64_t i) {
    if (dt == SQ_DT_F16) return _cvtsh_ss(((const uint16_t *)base)[i]);
    if (dt == SQ_DT_BF16) return sq_bf16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

/* sd[c] = (group scale of chunk c) x (activation scale of chunk c) for the
 * row's nc chunks of groups of 32 (scales from index i0), eight at a time:
 * the same products the kernels formed one by one, without a scalar
 * conversion and multiply per chunk in their loops. */
AVX2 static void row_scale_products(uint32_t dt, const void *base, uint64_t i0, const float *d, uint64_t nc, float *sd) {
    uint64_t c = 0;
    for (; c + 8 <= nc; c += 8) {
        __m256 sv;
        if (dt == SQ_DT_F16) sv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i0 + c)));
        else if (dt == SQ_DT_BF16)
            sv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i0 + c))), 16));
        else sv = _mm256_loadu_ps((const float *)base + i0 + c);
        _mm256_storeu_ps(sd + c, _mm256_mul_ps(sv, _mm256_loadu_ps(d + c)));
    }
    for (; c < nc; c++) sd[c] = scale_load(dt, base, i0 + c) * d[c];
}

/* x copied into a buffer padded with zeros to whole chunks, so the last
 * (partial) chunk of a row needs no special case: padded codes meet x = 0. */
static float *padded_x(const float *x, uint64_t cols) {
    uint64_t n = sq_nchunks(cols) * SQ_CHUNK;
    float *p = aligned_alloc(64, (size_t)n * sizeof(float));
    if (!p) return NULL;
    memcpy(p, x, (size_t)cols * sizeof(float));
    memset(p + cols, 0, (size_t)(n - cols) * sizeof(float));
    return p;
}

/* 32 codes of one chunk as 32 bytes, element i in byte i. */
AVX2 static inline __m256i unpack32(int bits, const uint8_t *p) {
    switch (bits) {
    case 8: return _mm256_loadu_si256((const __m256i *)p);
    case 4: {
        __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(15);
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    }
    default: { /* 2 and 3 bits: low two bits in the 2-bit layout */
        /* the 8 bytes in each qword, shifted by 0, 2, 4, 6: three vector operations */
        uint64_t b;
        memcpy(&b, p, 8);
        __m256i lo = _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x((long long)b), _mm256_setr_epi64x(0, 2, 4, 6)),
                                      _mm256_set1_epi8(3));
        if (bits == 2) return lo;
        uint32_t hb;
        memcpy(&hb, p + 8, 4);
        /* byte i takes bit i of hb: broadcast, pick byte i/8, test bit i%8 */
        __m256i v = _mm256_set1_epi32((int)hb);
        const __m256i sel = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll, 0x0101010101010101ll, 0);
        v = _mm256_shuffle_epi8(v, sel);
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
        v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
        return _mm256_or_si256(lo, _mm256_and_si256(v, _mm256_set1_epi8(4)));
    }
    }
}

static int int_bits_of(const sq_codec *c) { return (int)c->bits; }

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline __attribute__((always_inline)) void int_gemv_bits_avx2(const int bits, const sq_tview *t, const float *x0,
                                                                          float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    float *x = padded_x(x0, cols);
    if (!x) { sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x0, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m256 total = _mm256_setzero_ps();
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            __m256i z = _mm256_set1_epi32(asym ? zeros[r * ng + g] : 1 << (bits - 1));
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                _mm_prefetch((const char *)(row + (i / SQ_CHUNK) * cb) + 2048, _MM_HINT_T0);
                __m256i q = unpack32(bits, row + (i / SQ_CHUNK) * cb);
                __m128i ql = _mm256_castsi256_si128(q), qh = _mm256_extracti128_si256(q, 1);
                __m256 f0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(ql), z));
                __m256 f1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(ql, 8)), z));
                __m256 f2 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(qh), z));
                __m256 f3 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(qh, 8)), z));
                a0 = _mm256_fmadd_ps(f0, _mm256_load_ps(x + i), a0);
                a1 = _mm256_fmadd_ps(f1, _mm256_load_ps(x + i + 8), a1);
                a0 = _mm256_fmadd_ps(f2, _mm256_load_ps(x + i + 16), a0);
                a1 = _mm256_fmadd_ps(f3, _mm256_load_ps(x + i + 24), a1);
            }
            __m256 s = _mm256_set1_ps(scale_load(sdt, t->part[1], r * ng + g));
            total = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), s, total);
        }
        y[r] = hsum256(total);
    }
    free(x);
}

AVX512 static inline __attribute__((always_inline)) void int_gemv_bits_avx512(const int bits, const sq_tview *t,
                                                                              const float *x0, float *y, uint64_t r0,
                                                                              uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    float *x = padded_x(x0, cols);
    if (!x) { sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x0, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m512 total = _mm512_setzero_ps();
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            __m512i z = _mm512_set1_epi32(asym ? zeros[r * ng + g] : 1 << (bits - 1));
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                _mm_prefetch((const char *)(row + (i / SQ_CHUNK) * cb) + 2048, _MM_HINT_T0);
                __m256i q = unpack32(bits, row + (i / SQ_CHUNK) * cb);
                __m512 f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(q)), z));
                __m512 f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(q, 1)), z));
                a0 = _mm512_fmadd_ps(f0, _mm512_load_ps(x + i), a0);
                a1 = _mm512_fmadd_ps(f1, _mm512_load_ps(x + i + 16), a1);
            }
            total = _mm512_fmadd_ps(_mm512_add_ps(a0, a1), _mm512_set1_ps(scale_load(sdt, t->part[1], r * ng + g)), total);
        }
        y[r] = _mm512_reduce_add_ps(total);
    }
    free(x);
}

/* Zero-point term of the integer-activation kernels: for each group g,
 * G_g = sum over its chunks c of d_c * sum_c. Depends on x only, so it is
 * computed once per call; a row then subtracts s_g * z_g * G_g. */
static float *group_act_sums(const sq_act_q8 *x, uint64_t cols, uint64_t gs, uint64_t ng) {
    float *gsum = malloc((size_t)ng * sizeof(float));
    if (!gsum) return NULL;
    for (uint64_t g = 0; g < ng; g++) {
        float s = 0;
        for (uint64_t i = g * gs; i < (g + 1) * gs && i < cols; i += SQ_CHUNK) s += x->d[i / SQ_CHUNK] * (float)x->sum[i / SQ_CHUNK];
        gsum[g] = s;
    }
    return gsum;
}

/* Integer-activation kernel. Codes become signed bytes (q - 2^(b-1) for 8-bit,
 * plain q for 2/3/4-bit) so that _mm256_maddubs_epi16 (u8 x s8 -> i16 pairs)
 * cannot saturate: |w| <= 128 with the sign trick, or w <= 15 unsigned. */
AVX2 static inline __attribute__((always_inline)) void int_gemv_q8_bits(const int bits, const sq_tview *t,
                                                                        const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const int off8 = bits == 8 ? 128 : 0; /* int8 codes are shifted to signed */
    const __m256i ones16 = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
    float *gsum = group_act_sums(x, cols, gs, ng);
    if (!gsum) { sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m256 total = _mm256_setzero_ps();
        float corr = 0;
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            /* two independent accumulators hide the FMA latency */
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                uint64_t c = i / SQ_CHUNK;
                /* software prefetch: one GEMV touches each weight once, so help the
                 * hardware prefetcher across page boundaries */
                _mm_prefetch((const char *)(row + c * cb) + 2048, _MM_HINT_T0);
                __m256i w = unpack32(bits, row + c * cb);
                __m256i xq = _mm256_load_si256((const __m256i *)(x->q + i));
                __m256i p;
                if (off8) {
                    w = _mm256_xor_si256(w, flip); /* q - 128 as s8 */
                    p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w));
                } else {
                    p = _mm256_maddubs_epi16(w, xq);
                }
                __m256 d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones16));
                if (c & 1) acc1 = _mm256_fmadd_ps(d, _mm256_broadcast_ss(x->d + c), acc1);
                else acc0 = _mm256_fmadd_ps(d, _mm256_broadcast_ss(x->d + c), acc0);
            }
            __m256 acc = _mm256_add_ps(acc0, acc1);
            float s = scale_load(sdt, t->part[1], r * ng + g);
            int z = (asym ? zeros[r * ng + g] : 1 << (bits - 1)) - off8;
            total = _mm256_fmadd_ps(acc, _mm256_set1_ps(s), total);
            corr += s * (float)z * gsum[g];
        }
        y[r] = hsum256(total) - corr;
    }
    free(gsum);
}

/* Groups of 32 (the Q4_0/Q8_0/Q4_1 classes) with AVX2: every chunk is its
 * own group, so the kernel above would pay its per-group steps once per 32
 * codes. Here the zero-point term -z * sum joins the chunk's integer dot in
 * lane 0 before the conversion, and each chunk costs one conversion and one
 * FMA by (group scale x activation scale); two accumulators alternate by
 * chunk to hide the FMA latency. */
AVX2 static inline __attribute__((always_inline)) void int_gemv_q8_g32_avx2(const int bits, const sq_tview *t, const sq_act_q8 *x,
                                                                            float *y, uint64_t r0, uint64_t r1) {
    const uint64_t nc = sq_nchunks(t->cols), rb = sq_row_bytes(t->cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const int off8 = bits == 8 ? 128 : 0, mid = 1 << (bits - 1);
    const __m256i ones16 = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
    float *sd = malloc((size_t)(nc + 8) * sizeof(float));
    int32_t *zs = malloc((size_t)(nc + 8) * sizeof(int32_t)); /* the row's zero-point terms -z * sum */
    if (!sd || !zs) {
        free(sd);
        free(zs);
        int_gemv_q8_bits(bits, t, x, y, r0, r1);
        return;
    }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        row_scale_products(sdt, t->part[1], r * nc, x->d, nc, sd);
        if (asym || !off8) {
            uint64_t c = 0;
            for (; asym && c + 8 <= nc; c += 8) {
                const __m256i z = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(zeros + r * nc + c))),
                                                   _mm256_set1_epi32(off8));
                _mm256_storeu_si256((__m256i *)(zs + c), _mm256_mullo_epi32(z, _mm256_sub_epi32(_mm256_setzero_si256(),
                                                                                                _mm256_loadu_si256((const __m256i *)(x->sum + c)))));
            }
            for (; c < nc; c++) zs[c] = -((asym ? zeros[r * nc + c] : mid) - off8) * x->sum[c];
        }
        for (uint64_t c = 0; c < nc; c++) {
            _mm_prefetch((const char *)(row + c * cb) + 1024, _MM_HINT_T0);
            __m256i w = unpack32(bits, row + c * cb);
            const __m256i xq = _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK));
            __m256i pr;
            if (off8) {
                w = _mm256_xor_si256(w, flip); /* q - 128 as s8 */
                pr = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w));
            } else {
                pr = _mm256_maddubs_epi16(w, xq);
            }
            __m256i d32 = _mm256_madd_epi16(pr, ones16);
            if (asym || !off8) /* symmetric int8 codes shifted by 128 have no zero-point term */
                d32 = _mm256_add_epi32(d32, _mm256_zextsi128_si256(_mm_cvtsi32_si128(zs[c])));
            const __m256 f = _mm256_broadcast_ss(sd + c);
            if (c & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), f, acc1);
            else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), f, acc0);
        }
        y[r] = hsum256(_mm256_add_ps(acc0, acc1));
    }
    free(sd);
    free(zs);
}

/* A chunk pair's codes (A, B) as [A.lo B.lo] and [A.hi B.hi], lo = values
 * 0-15, hi = 16-31. 4-bit: one 32-byte load, the nibbles masked. 2-bit:
 * the pair's 16 bytes as qwords (A, A, B, B), shifted by (0, 2, 0, 2) and
 * (4, 6, 4, 6) (unpack32's layout, chunk by chunk). */
AVX2 static inline __attribute__((always_inline)) void unpack_pair(int bits, const uint8_t *p, __m256i *lo, __m256i *hi) {
    if (bits == 4) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)p), m = _mm256_set1_epi8(15);
        *lo = _mm256_and_si256(v, m);
        *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
        return;
    }
    const __m256i v = _mm256_permute4x64_epi64(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)), 0x50), m = _mm256_set1_epi8(3);
    *lo = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 2, 0, 2)), m);
    *hi = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(4, 6, 4, 6)), m);
}

/* 4- and 2-bit codes, AVX2, a chunk pair (A, B) per step: unpack_pair's
 * registers meet activations laid out the same way once per call, so no
 * code byte is shuffled. The two vpmaddubsw results add up in int16 (at
 * most 4 * 15 * 127), one vpmaddwd gives chunk A in
 * int32 lanes 0-3 and chunk B in lanes 4-7, and a vector of activation
 * scales (dA x4, dB x4) per pair scales both. Groups of 32 or 64: the
 * zero-point term -z * sum starts lanes 0 and 4 and each pair's factor
 * carries the group scales (groups of 32: the scale x activation-scale
 * products of the row, made eight at a time); larger groups (whole pairs)
 * subtract s_g z_g G_g per group as int_gemv_q8_bits does. An odd last
 * chunk takes unpack32's path. */
AVX2 static inline __attribute__((always_inline)) void int_gemv_q8_pairs_avx2(const int bits, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t nc = sq_nchunks(cols), np = nc / 2, rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8), cpg = gs / SQ_CHUNK;
    /* groups of one or two chunks: each pair's lanes carry their groups' scales and zero points */
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0, g32 = cpg <= 2, gsh = cpg == 2;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    __m256i *xp = aligned_alloc(64, (size_t)(np + 1) * 64); /* per pair: [A0-15 B0-15], [A16-31 B16-31] */
    /* per pair: -sum_A in lane 0, -sum_B in lane 4; (dA x4, dB x4). C11 wants sizes in multiples of 64 */
    __m256i *ns = aligned_alloc(64, (size_t)(np + 2) / 2 * 64);
    __m256 *dx = aligned_alloc(64, (size_t)(np + 2) / 2 * 64);
    float *gsum = g32 ? NULL : group_act_sums(x, cols, gs, ng);
    float *sd = cpg == 1 ? malloc((size_t)(nc + 8) * sizeof(float)) : NULL; /* groups of 32: scale x activation scale */
    float *sbuf = gsh ? malloc((size_t)(ng + 8) * sizeof(float)) : NULL;      /* groups of 64: the row's scales */
    if (!xp || !ns || !dx || (!g32 && !gsum) || (cpg == 1 && !sd) || (gsh && !sbuf)) {
        free(xp); free(ns); free(dx); free(gsum); free(sd); free(sbuf);
        int_gemv_q8_bits(bits, t, x, y, r0, r1);
        return;
    }
    const __m256i lo4hi4 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    for (uint64_t p = 0; p < np; p++) {
        const __m256i a = _mm256_load_si256((const __m256i *)(x->q + p * 64)), b = _mm256_load_si256((const __m256i *)(x->q + p * 64 + 32));
        xp[2 * p] = _mm256_permute2x128_si256(a, b, 0x20);
        xp[2 * p + 1] = _mm256_permute2x128_si256(a, b, 0x31);
        /* asym: -sum_A and -sum_B as int16 words 0 and 8 (one vpmaddwd with the zero points gives the
         * zero-point terms in int32 lanes 0 and 4); sym: the terms themselves, -2^(b-1) sum, in those lanes */
        ns[p] = asym ? _mm256_setr_epi16((int16_t)-x->sum[2 * p], 0, 0, 0, 0, 0, 0, 0, (int16_t)-x->sum[2 * p + 1], 0, 0, 0, 0, 0, 0, 0)
                     : _mm256_setr_epi32(-x->sum[2 * p] * (1 << (bits - 1)), 0, 0, 0, -x->sum[2 * p + 1] * (1 << (bits - 1)), 0, 0, 0);
        dx[p] = _mm256_setr_m128(_mm_set1_ps(x->d[2 * p]), _mm_set1_ps(x->d[2 * p + 1]));
    }
    const int zmid = 1 << (bits - 1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        float corr = 0;
#define PAIR_DOT(P)                                                                                                  \
        __m256i wlo, whi;                                                                                            \
        unpack_pair(bits, row + (P) * 2 * cb, &wlo, &whi);                                                           \
        const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(wlo, xp[2 * (P)]), _mm256_maddubs_epi16(whi, xp[2 * (P) + 1]))
        if (g32) {
            if (sd) row_scale_products(sdt, t->part[1], r * nc, x->d, nc, sd);
            const float *srow = gsh ? sq_int_row_scales(sdt, t->part[1], r * ng, ng, sbuf) : NULL;
            for (uint64_t p = 0; p < np; p++) {
                _mm_prefetch((const char *)(row + p * 2 * cb) + 1024, _MM_HINT_T0);
                PAIR_DOT(p);
                __m256i zt = ns[p]; /* the zero-point terms (sym: precomputed) */
                if (asym && gsh) {
                    zt = _mm256_madd_epi16(ns[p], _mm256_set1_epi16(zeros[r * ng + p]));
                } else if (asym) {
                    uint16_t zz;
                    memcpy(&zz, zeros + r * nc + 2 * p, 2);
                    zt = _mm256_madd_epi16(ns[p], _mm256_cvtepu8_epi16(_mm_set_epi64x(zz >> 8, zz & 0xff)));
                }
                const __m256i d32 = _mm256_add_epi32(_mm256_madd_epi16(p16, ones16), zt);
                const __m256 f = gsh ? _mm256_mul_ps(dx[p], _mm256_broadcast_ss(srow + p))
                                     : _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(sd + 2 * p)))), lo4hi4);
                if (p & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), f, acc1);
                else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), f, acc0);
            }
        } else {
            for (uint64_t g = 0; g < ng; g++) {
                const uint64_t p0 = g * cpg / 2, p1 = p0 + cpg / 2 < np ? p0 + cpg / 2 : np;
                __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
                for (uint64_t p = p0; p < p1; p++) {
                    _mm_prefetch((const char *)(row + p * 2 * cb) + 1024, _MM_HINT_T0);
                    PAIR_DOT(p);
                    const __m256 d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones16));
                    if (p & 1) a1 = _mm256_fmadd_ps(d, dx[p], a1);
                    else a0 = _mm256_fmadd_ps(d, dx[p], a0);
                }
                const float sc = scale_load(sdt, t->part[1], r * ng + g);
                const int z = asym ? zeros[r * ng + g] : zmid;
                if (g & 1) acc1 = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(sc), acc1);
                else acc0 = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(sc), acc0);
                corr += sc * (float)z * gsum[g];
            }
        }
#undef PAIR_DOT
        float tot = hsum256(_mm256_add_ps(acc0, acc1));
        if (nc & 1) { /* the odd last chunk; in a larger group its zero-point term is in corr already */
            const uint64_t c = nc - 1, g = c / cpg;
            const __m256i pr = _mm256_maddubs_epi16(unpack32(bits, row + c * cb), _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK)));
            const __m256i m = _mm256_madd_epi16(pr, ones16);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
            int32_t dot = _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
            const float sc = scale_load(sdt, t->part[1], r * ng + g);
            if (g32) dot -= (asym ? zeros[r * ng + g] : zmid) * x->sum[c];
            tot += (float)dot * x->d[c] * sc;
        }
        y[r] = tot - corr;
    }
    free(xp); free(ns); free(dx); free(gsum); free(sd); free(sbuf);
}

/* one instance per bit width, so the unpack is resolved at compile time */
AVX2 void sq_int_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const int g32 = sq_group_cols(t->params, t->cols) == SQ_CHUNK;
    switch (int_bits_of(t->codec)) {
    case 8: if (g32) int_gemv_q8_g32_avx2(8, t, x, y, r0, r1); else int_gemv_q8_bits(8, t, x, y, r0, r1); break;
    case 4: /* pairs need groups of 32 or of whole pairs (a per-row group of any width may not be) */
        if (g32 || sq_group_cols(t->params, t->cols) % (2 * SQ_CHUNK) == 0) int_gemv_q8_pairs_avx2(4, t, x, y, r0, r1);
        else int_gemv_q8_bits(4, t, x, y, r0, r1);
        break;
    case 3:
        if (sq_int_gemv_q8_quads_avx2(3, t, x, y, r0, r1)) int_gemv_q8_bits(3, t, x, y, r0, r1);
        break;
    default:
        if (!sq_int_gemv_q8_quads_avx2(2, t, x, y, r0, r1)) break;
        if (g32 || sq_group_cols(t->params, t->cols) % (2 * SQ_CHUNK) == 0) int_gemv_q8_pairs_avx2(2, t, x, y, r0, r1);
        else int_gemv_q8_bits(2, t, x, y, r0, r1);
        break;
    }
}

#define INT_DISPATCH(ATTR, NAME, IMPL)                                                      \
    ATTR void NAME(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {    \
        switch (int_bits_of(t->codec)) {                                                \
        case 8: IMPL(8, t, x, y, r0, r1); break;                                            \
        case 4: IMPL(4, t, x, y, r0, r1); break;                                            \
        case 3: IMPL(3, t, x, y, r0, r1); break;                                            \
        default: IMPL(2, t, x, y, r0, r1); break;                                           \
        }                                                                                   \
    }
INT_DISPATCH(AVX2, sq_int_gemv_avx2, int_gemv_bits_avx2)
INT_DISPATCH(AVX512, sq_int_gemv_avx512, int_gemv_bits_avx512)

/* AVX-512 VNNI: vpdpbusd multiplies u8 codes by s8 activations and sums
 * groups of 4 into int32 lanes with no saturation, so int8 codes are used as
 * they are (zero point 128 for sym). Two chunks per 512-bit register; the
 * per-chunk activation scales are expanded once per call to line up with
 * the lanes. 8- and 4-bit codes; other widths use the AVX2 kernel. */
AVX512 static inline __m512i unpack64(int bits, const uint8_t *p) {
    if (bits == 8) return _mm512_loadu_si512((const void *)p);
    if (bits == 2) { /* each chunk's 8 bytes in four qwords, shifted by 0, 2, 4, 6 (unpack32's layout) */
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
        v = _mm512_permutexvar_epi64(_mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0), v);
        v = _mm512_srlv_epi64(v, _mm512_set_epi64(6, 4, 2, 0, 6, 4, 2, 0));
        return _mm512_and_si512(v, _mm512_set1_epi8(3));
    }
    __m256i v = _mm256_loadu_si256((const __m256i *)p), m = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m); /* [A.lo B.lo], [A.hi B.hi] */
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);                     /* A.lo B.lo A.hi B.hi */
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));                            /* A.lo A.hi B.lo B.hi */
}

/* Four chunks' codes as two registers of unpack64's layout (chunk pairs
 * (0,1) and (2,3)). 4-bit codes: one 64-byte load, the nibbles masked out
 * once for all four chunks, and one two-source permute per pair (unpack64
 * spends an insert and a shuffle per pair on the same bytes). */
AVX512 static inline __attribute__((always_inline)) void unpack128(int bits, const uint8_t *p, __m512i *w0, __m512i *w1) {
    if (bits == 8) {
        *w0 = _mm512_loadu_si512((const void *)p);
        *w1 = _mm512_loadu_si512((const void *)(p + 64));
        return;
    }
    if (bits != 4) {
        *w0 = unpack64(bits, p);
        *w1 = unpack64(bits, p + 2 * (SQ_CHUNK * bits / 8));
        return;
    }
    const __m512i v = _mm512_loadu_si512((const void *)p), m = _mm512_set1_epi8(15);
    const __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m); /* [A B C D].lo, [A B C D].hi */
    *w0 = _mm512_permutex2var_epi64(lo, _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0), hi);          /* A.lo A.hi B.lo B.hi */
    *w1 = _mm512_permutex2var_epi64(lo, _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4), hi);        /* C.lo C.hi D.lo D.hi */
}

/* Scales i..i+3 (any storage dtype) as four floats, exactly. */
AVX512 static inline __attribute__((always_inline)) __m128 scales4(uint32_t dt, const void *base, uint64_t i) {
    if (dt == SQ_DT_F16) {
        uint64_t u;
        memcpy(&u, (const uint16_t *)base + i, 8);
        return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)u));
    }
    if (dt == SQ_DT_BF16) {
        uint64_t u;
        memcpy(&u, (const uint16_t *)base + i, 8);
        return _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_cvtsi64_si128((long long)u)), 16));
    }
    return _mm_loadu_ps((const float *)base + i);
}

AVX512 static inline __attribute__((always_inline)) void int_gemv_q8_vnni(const int bits, const sq_tview *t, const sq_act_q8 *x,
                                                                          float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    float *gsum = group_act_sums(x, cols, gs, ng), *dexp = aligned_alloc(64, (size_t)(x->nblocks + 2) / 2 * 64); /* 8 floats per block; C11 wants a multiple of 64 */
    if (!gsum || !dexp) {
        free(gsum);
        free(dexp);
        sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
        return;
    }
    for (uint64_t c = 0; c < x->nblocks; c++)
        for (int k = 0; k < 8; k++) dexp[c * 8 + (uint64_t)k] = x->d[c];
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m512 total = _mm512_setzero_ps();
        float corr = 0;
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs / SQ_CHUNK, c1 = ((g + 1) * gs < cols ? (g + 1) * gs : cols + SQ_CHUNK - 1) / SQ_CHUNK;
            __m512 acc = _mm512_setzero_ps();
            uint64_t c = c0;
            for (; c + 4 <= c1; c += 4) { /* two pairs a step: unpack128, then each pair as below */
                _mm_prefetch((const char *)(row + c * cb) + 2048, _MM_HINT_T0);
                __m512i w0, w1;
                unpack128(bits, row + c * cb, &w0, &w1);
                __m512i d0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_load_si512((const void *)(x->q + c * SQ_CHUNK)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_load_ps(dexp + c * 8), acc);
                __m512i d1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w1, _mm512_load_si512((const void *)(x->q + c * SQ_CHUNK + 64)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_load_ps(dexp + c * 8 + 16), acc);
            }
            for (; c + 2 <= c1; c += 2) {
                _mm_prefetch((const char *)(row + c * cb) + 2048, _MM_HINT_T0);
                __m512i w = unpack64(bits, row + c * cb);
                __m512i xq = _mm512_load_si512((const void *)(x->q + c * SQ_CHUNK));
                __m512i d32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xq);
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32), _mm512_load_ps(dexp + c * 8), acc);
            }
            if (c < c1) { /* odd chunk at the end of the group */
                __m256i w = unpack32(bits, row + c * cb);
                __m256i xq = _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK));
                __m256i d32 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, xq);
                __m256 part = _mm256_mul_ps(_mm256_cvtepi32_ps(d32), _mm256_load_ps(dexp + c * 8));
                acc = _mm512_add_ps(acc, _mm512_zextps256_ps512(part)); /* upper 8 lanes add zero */
            }
            float sc = scale_load(sdt, t->part[1], r * ng + g);
            int z = asym ? zeros[r * ng + g] : 1 << (bits - 1);
            total = _mm512_fmadd_ps(acc, _mm512_set1_ps(sc), total);
            corr += sc * (float)z * gsum[g];
        }
        y[r] = _mm512_reduce_add_ps(total) - corr;
    }
    free(gsum);
    free(dexp);
}

/* Groups of 32 with symmetric codes (llama.cpp's Q4_0/Q8_0 class; 4- and
 * 2-bit rows of 4096 or more go to int_q8_planes.c): every
 * chunk is its own group, so the per-group work of the kernel above would
 * come once per 32 codes. Here two chunks share a register throughout: the
 * zero-point term -z * sum_c starts each chunk's vpdpbusd accumulator (in
 * its first lane), and one vector of (group scale x activation scale) per
 * chunk pair scales both halves, so a pair costs one vpdpbusd, one
 * conversion and two float operations. */
AVX512 static inline __attribute__((always_inline)) void int_gemv_q8_vnni_g32(const int bits, const sq_tview *t,
                                                                              const sq_act_q8 *x, float *y, uint64_t r0,
                                                                              uint64_t r1) {
    const uint64_t nc = sq_nchunks(t->cols), np = nc / 2, rb = sq_row_bytes(t->cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const uint8_t *codes = t->part[0];
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const int32_t z = 1 << (bits - 1);
    /* per chunk pair: the zero-point start (lanes 0 and 8) and the activation scales (lanes 0-7, 8-15) */
    __m512i *zs = aligned_alloc(64, (size_t)(np + 1) * 64);
    __m512 *dx = aligned_alloc(64, (size_t)(np + 1) * 64);
    if (!zs || !dx) {
        free(zs);
        free(dx);
        int_gemv_q8_vnni(bits, t, x, y, r0, r1);
        return;
    }
    for (uint64_t p = 0; p < np; p++) {
        zs[p] = _mm512_maskz_set1_epi32(0x0001, -z * x->sum[2 * p]);
        zs[p] = _mm512_mask_set1_epi32(zs[p], 0x0100, -z * x->sum[2 * p + 1]);
        dx[p] = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(x->d[2 * p]), _mm512_set1_ps(x->d[2 * p + 1]));
    }
    /* lanes 0-7 take a chunk pair's first scale, lanes 8-15 its second */
    const __m512i lo2 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i hi2 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m512 acc = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(); /* two FMA chains: one would bound the loop */
        uint64_t p = 0;
        /* two pairs (four chunks) a step: the same operations on each pair,
         * in the same order, as the one-pair loop below */
        for (; p + 2 <= np; p += 2) {
            _mm_prefetch((const char *)(row + 2 * p * cb) + 1024, _MM_HINT_T0);
            __m512i w0, w1;
            unpack128(bits, row + 2 * p * cb, &w0, &w1);
            const __m512 s4 = _mm512_castps128_ps512(scales4(sdt, t->part[1], r * nc + 2 * p));
            __m512i d0 = _mm512_dpbusd_epi32(zs[p], w0, _mm512_load_si512((const void *)(x->q + p * 64)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_mul_ps(_mm512_permutexvar_ps(lo2, s4), dx[p]), acc);
            __m512i d1 = _mm512_dpbusd_epi32(zs[p + 1], w1, _mm512_load_si512((const void *)(x->q + p * 64 + 64)));
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_mul_ps(_mm512_permutexvar_ps(hi2, s4), dx[p + 1]), acc1);
        }
        for (; p < np; p++) {
            __m512i w = unpack64(bits, row + 2 * p * cb);
            __m512i d32 = _mm512_dpbusd_epi32(zs[p], w, _mm512_load_si512((const void *)(x->q + p * 64)));
            __m512 s = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(scale_load(sdt, t->part[1], r * nc + 2 * p)),
                                            _mm512_set1_ps(scale_load(sdt, t->part[1], r * nc + 2 * p + 1)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32), _mm512_mul_ps(s, dx[p]), acc);
        }
        float tot = _mm512_reduce_add_ps(_mm512_add_ps(acc, acc1));
        if (nc & 1) { /* the odd last chunk */
            const uint64_t c = nc - 1;
            __m256i d32 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack32(bits, row + c * cb),
                                              _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK)));
            int32_t dot = _mm512_reduce_add_epi32(_mm512_zextsi256_si512(d32)) - z * x->sum[c];
            tot += (float)dot * (scale_load(sdt, t->part[1], r * nc + c) * x->d[c]);
        }
        y[r] = tot;
    }
    free(zs);
    free(dx);
}

/* Groups of 32 with asymmetric codes and groups of 64 to 256 in either form
 * (4- and 2-bit rows of 4096 or more go to int_q8_planes.c): the kernel
 * above with each chunk's own zero point, so no group ends a dependency
 * chain. The start of a chunk
 * pair's vpdpbusd accumulator is (z_a, z_b) times (-sum_a, -sum_b) in lanes
 * 0 and 8 (one vpmulld), and the scales are those of the chunks' groups. */
AVX512 static inline __attribute__((always_inline)) void int_gemv_q8_vnni_zp(const int bits, const int gshift, const sq_tview *t,
                                                                             const sq_act_q8 *x, float *y, uint64_t r0,
                                                                             uint64_t r1) {
    const uint64_t nc = sq_nchunks(t->cols), np = nc / 2, ng = sq_ngroups(t->params, t->cols);
    const uint64_t rb = sq_row_bytes(t->cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const int32_t mid = 1 << (bits - 1);
    __m512i *ns = aligned_alloc(64, (size_t)(np + 1) * 64); /* -sum of each chunk of a pair in lanes 0 and 8 */
    __m512 *dx = aligned_alloc(64, (size_t)(np + 1) * 64);
    if (!ns || !dx) {
        free(ns);
        free(dx);
        sq_int_gemv_q8_avx2(t, x, y, r0, r1);
        return;
    }
    for (uint64_t p = 0; p < np; p++) {
        ns[p] = _mm512_maskz_set1_epi32(0x0001, -x->sum[2 * p]);
        ns[p] = _mm512_mask_set1_epi32(ns[p], 0x0100, -x->sum[2 * p + 1]);
        if (!asym) ns[p] = _mm512_mullo_epi32(_mm512_set1_epi32(mid), ns[p]); /* the start itself: the same zero point in every row */
        dx[p] = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(x->d[2 * p]), _mm512_set1_ps(x->d[2 * p + 1]));
    }
    /* lanes 0-7 take element 0 (2), lanes 8-15 element 1 (3) */
    const __m512i lo2 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i hi2 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb, *zr = asym ? zeros + r * ng : NULL;
        __m512 acc = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(); /* two FMA chains: one would bound the loop */
        uint64_t p = 0;
        /* two pairs (four chunks) a step, each pair's operations those of the
         * one-pair loop below, in the same order. The start z * -sum comes
         * from vpmaddwd (one uop, exact: z < 256 and |sum| <= 32 * 127 fit
         * 16 bits, and the high halves multiply to zero). */
        for (; p + 2 <= np; p += 2) {
            _mm_prefetch((const char *)(row + 2 * p * cb) + 1024, _MM_HINT_T0);
            __m512i w0, w1, st0 = ns[p], st1 = ns[p + 1];
            __m512 s0, s1;
            unpack128(bits, row + 2 * p * cb, &w0, &w1);
            if (gshift == 0) { /* every chunk its own group */
                if (asym) {
                    uint32_t z4;
                    memcpy(&z4, zr + 2 * p, 4);
                    const __m512i zz = _mm512_cvtepu8_epi32(_mm_cvtsi32_si128((int)z4));
                    st0 = _mm512_madd_epi16(_mm512_permutexvar_epi32(lo2, zz), st0);
                    st1 = _mm512_madd_epi16(_mm512_permutexvar_epi32(hi2, zz), st1);
                }
                const __m512 s4 = _mm512_castps128_ps512(scales4(sdt, t->part[1], r * ng + 2 * p));
                s0 = _mm512_permutexvar_ps(lo2, s4);
                s1 = _mm512_permutexvar_ps(hi2, s4);
            } else { /* groups of 2^gshift chunks: whole pairs */
                const uint64_t g0 = p >> (gshift - 1), g1 = (p + 1) >> (gshift - 1);
                if (asym) {
                    st0 = _mm512_madd_epi16(_mm512_set1_epi32(zr[g0]), st0);
                    st1 = _mm512_madd_epi16(_mm512_set1_epi32(zr[g1]), st1);
                }
                s0 = _mm512_set1_ps(scale_load(sdt, t->part[1], r * ng + g0));
                s1 = _mm512_set1_ps(scale_load(sdt, t->part[1], r * ng + g1));
            }
            __m512i d0 = _mm512_dpbusd_epi32(st0, w0, _mm512_load_si512((const void *)(x->q + p * 64)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_mul_ps(s0, dx[p]), acc);
            __m512i d1 = _mm512_dpbusd_epi32(st1, w1, _mm512_load_si512((const void *)(x->q + p * 64 + 64)));
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_mul_ps(s1, dx[p + 1]), acc1);
        }
        for (; p < np; p++) {
            const uint64_t ga = (2 * p) >> gshift, gb = (2 * p + 1) >> gshift;
            __m512i w = unpack64(bits, row + 2 * p * cb);
            __m512i st = asym ? _mm512_mullo_epi32(_mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(zr[ga]), _mm512_set1_epi32(zr[gb])), ns[p])
                              : ns[p];
            __m512i d32 = _mm512_dpbusd_epi32(st, w, _mm512_load_si512((const void *)(x->q + p * 64)));
            __m512 s = gshift ? _mm512_set1_ps(scale_load(sdt, t->part[1], r * ng + ga))
                              : _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(scale_load(sdt, t->part[1], r * ng + ga)),
                                                     _mm512_set1_ps(scale_load(sdt, t->part[1], r * ng + gb)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32), _mm512_mul_ps(s, dx[p]), acc);
        }
        float tot = _mm512_reduce_add_ps(_mm512_add_ps(acc, acc1));
        if (nc & 1) { /* the odd last chunk */
            const uint64_t c = nc - 1, g = c >> gshift;
            __m256i d32 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack32(bits, row + c * cb),
                                              _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK)));
            int32_t dot = _mm512_reduce_add_epi32(_mm512_zextsi256_si512(d32)) - (asym ? zr[g] : mid) * x->sum[c];
            tot += (float)dot * (scale_load(sdt, t->part[1], r * ng + g) * x->d[c]);
        }
        y[r] = tot;
    }
    free(ns);
    free(dx);
}

/* 3-bit codes in groups of 64 or more or a whole row (groups of 32-256 in
 * rows of 4096 or more go to int_q8_planes.c): the AVX2 kernel
 * (int_gemv_q8_bits) with a chunk pair per register, bit for bit. A group
 * starts at an even chunk, so the AVX2 kernel's even-chunk sums (acc0) are
 * lanes 0-7 and the odd ones (acc1) lanes 8-15; vpdpbusd gives each lane
 * the integer vpmaddubsw/vpmaddwd gives (codes < 8, no saturation either
 * way), and the float steps are the same per lane and in the same order.
 * The high bit plane becomes bytes of 4 through one masked broadcast. */
AVX512 static inline __m512i unpack64_3(const uint8_t *p) {
    uint64_t la, lb;
    uint32_t ha, hb;
    memcpy(&la, p, 8);
    memcpy(&ha, p + 8, 4);
    memcpy(&lb, p + 12, 8);
    memcpy(&hb, p + 20, 4);
    __m512i v = _mm512_castsi128_si512(_mm_set_epi64x((long long)lb, (long long)la));
    v = _mm512_permutexvar_epi64(_mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0), v);
    v = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(6, 4, 2, 0, 6, 4, 2, 0)), _mm512_set1_epi8(3));
    return _mm512_or_si512(v, _mm512_maskz_mov_epi8((__mmask64)((uint64_t)ha | (uint64_t)hb << 32), _mm512_set1_epi8(4)));
}

AVX512 static void int3_gemv_q8_vnni(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, 3), cb = (uint64_t)(SQ_CHUNK * 3 / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    float *gsum = group_act_sums(x, cols, gs, ng);
    if (!gsum) { sq_int_gemv_q8_avx2(t, x, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        __m256 total = _mm256_setzero_ps();
        float corr = 0;
        for (uint64_t g = 0; g < ng; g++) {
            const uint64_t c0 = g * gs / SQ_CHUNK, c1 = ((g + 1) * gs < cols ? (g + 1) * gs : cols + SQ_CHUNK - 1) / SQ_CHUNK;
            __m512 acc = _mm512_setzero_ps();
            uint64_t c = c0;
            for (; c + 2 <= c1; c += 2) {
                _mm_prefetch((const char *)(row + c * cb) + 2048, _MM_HINT_T0);
                const __m512i d32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), unpack64_3(row + c * cb),
                                                        _mm512_load_si512((const void *)(x->q + c * SQ_CHUNK)));
                const __m512 dd = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(x->d[c]), _mm512_set1_ps(x->d[c + 1]));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d32), dd, acc);
            }
            __m256 a0 = _mm512_castps512_ps256(acc), a1 = _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(acc), 1));
            if (c < c1) { /* an odd last chunk: an even index, acc0 */
                const __m256i d32 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), unpack32(3, row + c * cb),
                                                        _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK)));
                a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_broadcast_ss(x->d + c), a0);
            }
            const float sc = scale_load(sdt, t->part[1], r * ng + g);
            const int z = asym ? zeros[r * ng + g] : 4;
            total = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(sc), total);
            corr += sc * (float)z * gsum[g];
        }
        y[r] = hsum256(total) - corr;
    }
    free(gsum);
}

AVX512 void sq_int_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t gs = sq_group_cols(t->params, t->cols);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0, g32sym = gs == SQ_CHUNK && !asym;
    /* int_gemv_q8_vnni_zp's shapes: groups of 2^k chunks, up to 256 values (a per-row group of any width is not one) */
    const int zp = gs == SQ_CHUNK || gs == 2 * SQ_CHUNK || gs == 4 * SQ_CHUNK || gs == 8 * SQ_CHUNK;
    const int gshift = gs == SQ_CHUNK ? 0 : gs == 2 * SQ_CHUNK ? 1 : gs == 4 * SQ_CHUNK ? 2 : 3;
    /* the bit-plane kernel (int_q8_planes.c) from 4096 columns, where it was measured faster; its
     * per-call set-up (the activations' layout) made the 34M model's decode (512-1536 wide) 10-30% slower */
    const int planes = t->cols >= 4096;
    switch (int_bits_of(t->codec)) {
    case 8:
        if (g32sym) int_gemv_q8_vnni_g32(8, t, x, y, r0, r1);
        else if (zp) int_gemv_q8_vnni_zp(8, gshift, t, x, y, r0, r1);
        else int_gemv_q8_vnni(8, t, x, y, r0, r1);
        break;
    case 4:
        if (zp && planes) sq_int_gemv_q8_planes_avx512(4, gshift, t, x, y, r0, r1);
        else if (g32sym) int_gemv_q8_vnni_g32(4, t, x, y, r0, r1);
        else if (zp) int_gemv_q8_vnni_zp(4, gshift, t, x, y, r0, r1);
        else int_gemv_q8_vnni(4, t, x, y, r0, r1);
        break;
    case 2:
        if (zp && planes) sq_int_gemv_q8_planes_avx512(2, gshift, t, x, y, r0, r1);
        else if (zp) int_gemv_q8_vnni_zp(2, gshift, t, x, y, r0, r1);
        else sq_int_gemv_q8_avx2(t, x, y, r0, r1);
        break;
    default: /* 3 bits */
        if (zp && planes) sq_int3_gemv_q8_planes_avx512(gshift, t, x, y, r0, r1);
        else if (gs != SQ_CHUNK) int3_gemv_q8_vnni(t, x, y, r0, r1);
        else sq_int_gemv_q8_avx2(t, x, y, r0, r1);
        break;
    }
}

/* Batched integer-activation products (sq_gemm_q8_fn) with AVX-512 VNNI.
 * A tile of 16 weight rows is unpacked once into a panel in which dword k
 * of chunk c holds, in lane j, codes 4k..4k+3 of row j; one vpdpbusd with
 * four activation bytes broadcast then advances all 16 rows' dots at once,
 * so a chunk costs 8 vpdpbusd per activation row plus one zero-point
 * multiply, one conversion and two float operations for all 16 rows. The
 * panel is reused for every activation row of the call (all T tokens of a
 * prefill), which is what makes the unpacking free. The float steps are
 * those of the portable reference, lane by lane, so the bits are the same. */
enum { GEMM_TILE = 16, GEMM_PASS = 8, GEMM_CHUNK_BYTES = 8 * 64 + 64 + 64 }; /* codes, scales, -zeros */

AVX512 static void int_gemm_panel(const int bits, const sq_tview *t, uint64_t r0, uint64_t nr, uint8_t *panel) {
    const uint64_t cols = t->cols, nc = sq_nchunks(cols), gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    for (uint64_t c = 0; c < nc; c++) {
        uint8_t *p = panel + c * GEMM_CHUNK_BYTES;
        uint32_t *w = (uint32_t *)p;
        float *s = (float *)(p + 512);
        int32_t *zn = (int32_t *)(p + 576);
        const uint64_t g = c * SQ_CHUNK / gs;
        for (uint64_t j = 0; j < GEMM_TILE; j++) {
            if (j >= nr) { /* rows past the end: zero codes and scales, never stored */
                for (int k = 0; k < 8; k++) w[k * GEMM_TILE + j] = 0;
                s[j] = 0;
                zn[j] = 0;
                continue;
            }
            const uint64_t r = r0 + j;
            uint32_t d[8];
            _mm256_storeu_si256((__m256i *)d, unpack32(bits, codes + r * rb + c * cb));
            for (int k = 0; k < 8; k++) w[k * GEMM_TILE + j] = d[k];
            s[j] = scale_load(sdt, t->part[1], r * ng + g);
            zn[j] = -(asym ? zeros[r * ng + g] : 1 << (bits - 1));
        }
    }
}

/* nb (<= GEMM_PASS) activation rows against one panel. The loops over the
 * activation rows are unrolled so that their accumulators stay in
 * registers (a loop left rolled keeps acc[] in memory, and every chunk then
 * waits on a store and a reload). zs, when not NULL, holds -z * sum of each
 * activation row's chunks (have_zs) for codes whose zero point is the same
 * in every row (symmetric): the same integer as the panel's -z times the
 * sum, without the multiply. */
AVX512 static inline __attribute__((always_inline)) void gemm_pass_vnni(const int nb, const int have_zs, const uint8_t *panel, uint64_t nc,
                                                                        const sq_act_q8 *x, const int32_t *const *zs, float *y,
                                                                        uint64_t N, __mmask16 m) {
    __m512 acc[GEMM_PASS];
    const int32_t *xq[GEMM_PASS];
    const float *xd[GEMM_PASS];
    const int32_t *xs[GEMM_PASS];
#pragma GCC unroll 8
    for (int b = 0; b < nb; b++) {
        acc[b] = _mm512_setzero_ps();
        xq[b] = (const int32_t *)x[b].q;
        xd[b] = x[b].d;
        xs[b] = have_zs ? zs[b] : x[b].sum;
    }
    for (uint64_t c = 0; c < nc; c++) {
        const uint8_t *p = panel + c * GEMM_CHUNK_BYTES;
        const __m512i w0 = _mm512_load_si512(p), w1 = _mm512_load_si512(p + 64), w2 = _mm512_load_si512(p + 128),
                      w3 = _mm512_load_si512(p + 192), w4 = _mm512_load_si512(p + 256), w5 = _mm512_load_si512(p + 320),
                      w6 = _mm512_load_si512(p + 384), w7 = _mm512_load_si512(p + 448);
        const __m512 s = _mm512_load_ps(p + 512);
        const __m512i zn = _mm512_load_si512(p + 576);
#pragma GCC unroll 8
        for (int b = 0; b < nb; b++) {
            const int32_t *q = xq[b] + c * 8;
            __m512i ia = have_zs ? _mm512_set1_epi32(xs[b][c]) : _mm512_mullo_epi32(zn, _mm512_set1_epi32(xs[b][c]));
            ia = _mm512_dpbusd_epi32(ia, w0, _mm512_set1_epi32(q[0]));
            ia = _mm512_dpbusd_epi32(ia, w1, _mm512_set1_epi32(q[1]));
            ia = _mm512_dpbusd_epi32(ia, w2, _mm512_set1_epi32(q[2]));
            ia = _mm512_dpbusd_epi32(ia, w3, _mm512_set1_epi32(q[3]));
            ia = _mm512_dpbusd_epi32(ia, w4, _mm512_set1_epi32(q[4]));
            ia = _mm512_dpbusd_epi32(ia, w5, _mm512_set1_epi32(q[5]));
            ia = _mm512_dpbusd_epi32(ia, w6, _mm512_set1_epi32(q[6]));
            ia = _mm512_dpbusd_epi32(ia, w7, _mm512_set1_epi32(q[7]));
            acc[b] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(s, _mm512_set1_ps(xd[b][c])), acc[b]);
        }
    }
#pragma GCC unroll 8
    for (int b = 0; b < nb; b++) _mm512_mask_storeu_ps(y + (uint64_t)b * N, m, acc[b]);
}

AVX512 static inline __attribute__((always_inline)) void int_gemm_q8_vnni(const int bits, const sq_tview *t, const sq_act_q8 *x,
                                                                          uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t nc = sq_nchunks(t->cols), N = t->rows;
    const int sym = !(t->params[SQ_P_FLAGS] & SQ_PF_ASYM);
    uint8_t *panel = aligned_alloc(64, (size_t)nc * GEMM_CHUNK_BYTES);
    /* symmetric codes: -z * sum per activation row and chunk, once per call */
    int32_t *zsum = sym ? malloc((size_t)T * nc * sizeof(int32_t)) : NULL;
    const int32_t **zs = sym ? malloc((size_t)T * sizeof *zs) : NULL;
    if (!panel || (sym && (!zsum || !zs))) {
        free(panel);
        free(zsum);
        free(zs);
        sq_int_gemm_q8_portable(t, x, T, y, r0, r1);
        return;
    }
    if (sym)
        for (uint32_t j = 0; j < T; j++) {
            for (uint64_t c = 0; c < nc; c++) zsum[(uint64_t)j * nc + c] = -(1 << (bits - 1)) * x[j].sum[c];
            zs[j] = zsum + (uint64_t)j * nc;
        }
    for (uint64_t r = r0; r < r1; r += GEMM_TILE) {
        const uint64_t nr = r1 - r < GEMM_TILE ? r1 - r : GEMM_TILE;
        const __mmask16 m = (__mmask16)((1u << nr) - 1);
        int_gemm_panel(bits, t, r, nr, panel);
        uint32_t j = 0;
#define PASS(NB)                                                                                     \
    do {                                                                                             \
        if (sym) gemm_pass_vnni(NB, 1, panel, nc, x + j, zs + j, y + (uint64_t)j * N + r, N, m);     \
        else gemm_pass_vnni(NB, 0, panel, nc, x + j, NULL, y + (uint64_t)j * N + r, N, m);           \
    } while (0)
        for (; j + GEMM_PASS <= T; j += GEMM_PASS) PASS(GEMM_PASS);
        switch (T - j) { /* the last few activation rows, each count compiled on its own */
        case 7: PASS(7); break;
        case 6: PASS(6); break;
        case 5: PASS(5); break;
        case 4: PASS(4); break;
        case 3: PASS(3); break;
        case 2: PASS(2); break;
        case 1: PASS(1); break;
        default: break;
        }
#undef PASS
    }
    free(panel);
    free(zsum);
    free(zs);
}

AVX512 void sq_int_gemm_q8_avx512(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    switch (int_bits_of(t->codec)) {
    case 8: int_gemm_q8_vnni(8, t, x, T, y, r0, r1); break;
    case 4: int_gemm_q8_vnni(4, t, x, T, y, r0, r1); break;
    case 3: int_gemm_q8_vnni(3, t, x, T, y, r0, r1); break;
    default: int_gemm_q8_vnni(2, t, x, T, y, r0, r1); break;
    }
}

/* The same products with AVX2 (no VNNI): tiles of 16 rows, lane j of dword
 * k holding codes 4k..4k+3 of row j (rows 0-7 and 8-15 in two registers,
 * which share each broadcast of four activation bytes); vpmaddubsw
 * multiplies the unsigned codes by them and vpmaddwd sums the pairs.
 * 8-bit codes are first made signed (q - 128, the zero point lowered to
 * match) and multiplied through the sign trick, so no 16-bit sum can
 * saturate (|w| <= 128, |x| <= 127); 2..4-bit codes are at most 15, so a
 * chunk's eight vpmaddubsw add up in int16 before one vpmaddwd. The float
 * steps are the reference's, so the bits are the same. */
enum { GEMM2_TILE = 16, GEMM2_PASS = 4, GEMM2_CHUNK_BYTES = 8 * 64 + 64 + 64 };

AVX2 static void int_gemm_panel_avx2(const int bits, const sq_tview *t, uint64_t r0, uint64_t nr, uint8_t *panel) {
    const uint64_t cols = t->cols, nc = sq_nchunks(cols), gs = sq_group_cols(t->params, cols), ng = sq_ngroups(t->params, cols);
    const uint64_t rb = sq_row_bytes(cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0, off = bits == 8 ? 128 : 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const __m256i flip = _mm256_set1_epi8((char)(bits == 8 ? 0x80 : 0));
    for (uint64_t c = 0; c < nc; c++) {
        uint8_t *p = panel + c * GEMM2_CHUNK_BYTES;
        uint32_t *w = (uint32_t *)p;
        float *s = (float *)(p + 8 * 4 * GEMM2_TILE);
        int32_t *zn = (int32_t *)(p + 8 * 4 * GEMM2_TILE + 4 * GEMM2_TILE);
        const uint64_t g = c * SQ_CHUNK / gs;
        for (uint64_t j = 0; j < GEMM2_TILE; j++) {
            if (j >= nr) {
                for (int k = 0; k < 8; k++) w[k * GEMM2_TILE + j] = 0;
                s[j] = 0;
                zn[j] = 0;
                continue;
            }
            const uint64_t r = r0 + j;
            uint32_t d[8];
            _mm256_storeu_si256((__m256i *)d, _mm256_xor_si256(unpack32(bits, codes + r * rb + c * cb), flip));
            for (int k = 0; k < 8; k++) w[k * GEMM2_TILE + j] = d[k];
            s[j] = scale_load(sdt, t->part[1], r * ng + g);
            zn[j] = -((asym ? zeros[r * ng + g] : 1 << (bits - 1)) - off);
        }
    }
}

AVX2 static inline __attribute__((always_inline)) void gemm_pass_avx2(const int bits, const int nb, const uint8_t *panel,
                                                                      uint64_t nc, const sq_act_q8 *x, float *y, uint64_t N,
                                                                      uint64_t nr) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc[GEMM2_PASS][2];
    for (int b = 0; b < nb; b++) acc[b][0] = acc[b][1] = _mm256_setzero_ps();
    for (uint64_t c = 0; c < nc; c++) {
        const uint8_t *p = panel + c * GEMM2_CHUNK_BYTES;
        const float *s = (const float *)(p + 8 * 4 * GEMM2_TILE);
        const int32_t *zn = (const int32_t *)(p + 8 * 4 * GEMM2_TILE + 4 * GEMM2_TILE);
        for (int b = 0; b < nb; b++) {
            const int32_t *q = (const int32_t *)x[b].q + c * 8;
            const __m256i xs = _mm256_set1_epi32(x[b].sum[c]);
            __m256i ia[2] = {_mm256_mullo_epi32(_mm256_load_si256((const __m256i *)zn), xs),
                             _mm256_mullo_epi32(_mm256_load_si256((const __m256i *)(zn + 8)), xs)};
            if (bits == 8) {
                for (int k = 0; k < 8; k++) {
                    const __m256i xv = _mm256_set1_epi32(q[k]);
                    for (int h = 0; h < 2; h++) {
                        const __m256i w = _mm256_load_si256((const __m256i *)(p + 64 * k + 32 * h));
                        ia[h] = _mm256_add_epi32(ia[h], _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w)), ones16));
                    }
                }
            } else { /* codes <= 15: the eight pair sums of a word add up in int16 (|sum| <= 8 * 2 * 15 * 127 < 2^15) */
                __m256i s16[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
                for (int k = 0; k < 8; k++) {
                    const __m256i xv = _mm256_set1_epi32(q[k]);
                    for (int h = 0; h < 2; h++)
                        s16[h] = _mm256_add_epi16(s16[h], _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(p + 64 * k + 32 * h)), xv));
                }
                for (int h = 0; h < 2; h++) ia[h] = _mm256_add_epi32(ia[h], _mm256_madd_epi16(s16[h], ones16));
            }
            const __m256 dx = _mm256_set1_ps(x[b].d[c]);
            for (int h = 0; h < 2; h++)
                acc[b][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h]), _mm256_mul_ps(_mm256_load_ps(s + 8 * h), dx), acc[b][h]);
        }
    }
    for (int b = 0; b < nb; b++) {
        float o[GEMM2_TILE];
        _mm256_storeu_ps(o, acc[b][0]);
        _mm256_storeu_ps(o + 8, acc[b][1]);
        memcpy(y + (uint64_t)b * N, o, nr * sizeof(float));
    }
}

AVX2 static inline __attribute__((always_inline)) void int_gemm_q8_avx2_bits(const int bits, const sq_tview *t, const sq_act_q8 *x,
                                                                             uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t nc = sq_nchunks(t->cols), N = t->rows;
    uint8_t *panel = aligned_alloc(64, ((size_t)nc * GEMM2_CHUNK_BYTES + 63) / 64 * 64);
    if (!panel) { sq_int_gemm_q8_portable(t, x, T, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r += GEMM2_TILE) {
        const uint64_t nr = r1 - r < GEMM2_TILE ? r1 - r : GEMM2_TILE;
        int_gemm_panel_avx2(bits, t, r, nr, panel);
        uint32_t j = 0;
        for (; j + GEMM2_PASS <= T; j += GEMM2_PASS) gemm_pass_avx2(bits, GEMM2_PASS, panel, nc, x + j, y + (uint64_t)j * N + r, N, nr);
        switch (T - j) {
        case 3: gemm_pass_avx2(bits, 3, panel, nc, x + j, y + (uint64_t)j * N + r, N, nr); break;
        case 2: gemm_pass_avx2(bits, 2, panel, nc, x + j, y + (uint64_t)j * N + r, N, nr); break;
        case 1: gemm_pass_avx2(bits, 1, panel, nc, x + j, y + (uint64_t)j * N + r, N, nr); break;
        default: break;
        }
    }
    free(panel);
}

AVX2 void sq_int_gemm_q8_avx2(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    switch (int_bits_of(t->codec)) {
    case 8: int_gemm_q8_avx2_bits(8, t, x, T, y, r0, r1); break;
    case 4: int_gemm_q8_avx2_bits(4, t, x, T, y, r0, r1); break;
    case 3: int_gemm_q8_avx2_bits(3, t, x, T, y, r0, r1); break;
    default: int_gemm_q8_avx2_bits(2, t, x, T, y, r0, r1); break;
    }
}

/* int8 blocks of 32 from f32 (sq_act_q8_init's arithmetic: amax / 127, then
 * x / d rounded to nearest even, which is what vcvtps2dq does under the
 * default rounding mode): whole blocks here, the partial last one by the
 * caller. */
AVX512 void sq_act_q8_blocks_avx512(const float *x, uint64_t nblocks, int8_t *q, float *d, int32_t *sum) {
    for (uint64_t b = 0; b < nblocks; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float dd = amax / 127.0f;
        d[b] = dd;
        if (!(dd > 0)) {
            _mm256_storeu_si256((__m256i *)(q + b * 32), _mm256_setzero_si256());
            sum[b] = 0;
            continue;
        }
        const __m512 dv = _mm512_set1_ps(dd);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_div_ps(v0, dv)), i1 = _mm512_cvtps_epi32(_mm512_div_ps(v1, dv));
        _mm_storeu_si128((__m128i *)(q + b * 32), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + b * 32 + 16), _mm512_cvtepi32_epi8(i1));
        sum[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
}

/* The same with AVX2 (eight lanes; vcvtps2dq rounds to nearest even too). */
AVX2 void sq_act_q8_blocks_avx2(const float *x, uint64_t nblocks, int8_t *q, float *d, int32_t *sum) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (uint64_t b = 0; b < nblocks; b++) {
        const float *xb = x + b * 32;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absm), _mm256_and_ps(v1, absm)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absm), _mm256_and_ps(v3, absm)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const float dd = _mm_cvtss_f32(h) / 127.0f;
        d[b] = dd;
        if (!(dd > 0)) {
            _mm256_storeu_si256((__m256i *)(q + b * 32), _mm256_setzero_si256());
            sum[b] = 0;
            continue;
        }
        const __m256 dv = _mm256_set1_ps(dd);
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_div_ps(v0, dv)), i1 = _mm256_cvtps_epi32(_mm256_div_ps(v1, dv));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_div_ps(v2, dv)), i3 = _mm256_cvtps_epi32(_mm256_div_ps(v3, dv));
        /* packs work per 128-bit lane: words come out as (0-3, 8-11, 4-7, 12-15) and so on; one dword permute restores the order */
        const __m256i w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3);
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + b * 32), bytes);
        __m256i s4 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s2 = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
        s2 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0x4e));
        sum[b] = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
    }
}

/* 4-bit table codecs (nf4, fp4, mxfp4): 16-entry table held in two registers. */
AVX2 void sq_lut4_gemv_avx2(const sq_tview *t, const float *x0, float *y, uint64_t r0, uint64_t r1) {
    const float *tab = sq_codec_value_table(t->codec, NULL);
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, t->cols), ng = (cols + gl - 1) / gl, rb = sq_row_bytes(cols, 4);
    const __m256 tlo = _mm256_loadu_ps(tab), thi = _mm256_loadu_ps(tab + 8);
    float *x = padded_x(x0, cols);
    if (!x) { sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x0, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)t->part[0] + r * rb;
        __m256 total = _mm256_setzero_ps();
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                _mm_prefetch((const char *)(row + (i / SQ_CHUNK) * 16) + 2048, _MM_HINT_T0);
                __m256i q = unpack32(4, row + (i / SQ_CHUNK) * 16);
                __m128i h[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
                for (int k = 0; k < 4; k++) {
                    __m256i idx = _mm256_cvtepu8_epi32(k & 1 ? _mm_srli_si128(h[k >> 1], 8) : h[k >> 1]);
                    __m256 vlo = _mm256_permutevar8x32_ps(tlo, idx), vhi = _mm256_permutevar8x32_ps(thi, idx);
                    __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)); /* bit 3 -> sign bit */
                    __m256 v = _mm256_blendv_ps(vlo, vhi, sel);
                    if (k & 1) a1 = _mm256_fmadd_ps(v, _mm256_load_ps(x + i + 8 * k), a1);
                    else a0 = _mm256_fmadd_ps(v, _mm256_load_ps(x + i + 8 * k), a0);
                }
            }
            total = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(sq_lut_group_scale(t, r, g)), total);
        }
        y[r] = hsum256(total);
    }
    free(x);
}

/* FP4 (mxfp4, fp4_e2m1) with int8 activations: vpshufb maps codes to
 * 2 x E2M1 as signed bytes; each int32 lane sums four products. Per chunk
 * c: tot[c & 1] += float(lanes) * (d_c x half its group scale), in chunk
 * order (the AVX-512 kernel promises these bits; tests/test_gemm_q8.c).
 *
 * This kernel takes a chunk pair (A even, B odd) per step: one 32-byte
 * load, nibbles masked into [A.lo B.lo] and [A.hi B.hi] (lo = values 0-15),
 * activations laid out the same way once per call. The table gives
 * 2 x E2M1 + 16 (unsigned, so plain vpmaddubsw), and each lane starts at
 * -16 times the sum of its four activation bytes: the same lane integers.
 * Accumulator P holds tot0's lanes 0-3 and tot1's 0-3, Q their lanes 4-7,
 * so every lane sees the same float steps in the same order. */
AVX2 static inline float fp4_half_scale(const sq_tview *t, int mx, int pt, uint64_t ng, uint64_t r, uint64_t g) {
    /* half the group scale: 2^(e-128) for MX (E8M0 code e), else the stored scale / 2 */
    return mx ? sq_pow2f((int)((const uint8_t *)t->part[1])[r * ng + g] - 128)
              : 0.5f * scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[1], pt ? 0 : r * ng + g);
}

AVX2 void sq_fp4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, t->cols), ng = (cols + gl - 1) / gl, rb = sq_row_bytes(cols, 4);
    const uint64_t nc = sq_nchunks(cols), np = nc / 2;
    const int mx = t->codec->family == SQ_FAMILY_MX, pt = !mx && t->params[SQ_P_GROUP] == SQ_GROUP_TENSOR;
    /* a chunk's group without a division: one group, or groups of 2^lg chunks (32..256 values) */
    const int lg = ng == 1 ? 63 : __builtin_ctzll(gl / SQ_CHUNK);
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)sq_e2m1_x2));
    const __m256i tab16 = _mm256_add_epi8(tab, _mm256_set1_epi8(16));
    const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1), m4 = _mm256_set1_epi8(15);
    const int g32 = gl == SQ_CHUNK && !pt; /* every chunk its own scale */
    const uint64_t nh = pt ? 1 : ng;
    __m256i *xp = aligned_alloc(64, (size_t)(np + 1) * 128); /* per pair: x lo, x hi, start lo, start hi */
    __m256 *dx = aligned_alloc(64, (size_t)(np + 2) / 2 * 64); /* per pair: (d_A x4, d_B x4); C11 wants a multiple of 64 */
    float *h = malloc((size_t)(nh + 1) * sizeof(float));       /* the row's half group scales */
    if (!xp || !dx || !h) {
        free(xp);
        free(dx);
        free(h);
        sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
        return;
    }
    for (uint64_t p = 0; p < np; p++) {
        const __m256i a = _mm256_load_si256((const __m256i *)(x->q + p * 64)), b = _mm256_load_si256((const __m256i *)(x->q + p * 64 + 32));
        for (int k = 0; k < 2; k++) {
            /* immediates: clang takes no expression there */
            const __m256i v = k ? _mm256_permute2x128_si256(a, b, 0x31) : _mm256_permute2x128_si256(a, b, 0x20);
            xp[4 * p + (uint64_t)k] = v;
            const __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16);
            xp[4 * p + 2 + (uint64_t)k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s4, 4));
        }
        dx[p] = _mm256_setr_m128(_mm_set1_ps(x->d[2 * p]), _mm_set1_ps(x->d[2 * p + 1]));
    }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)t->part[0] + r * rb;
        for (uint64_t g = 0; g < nh; g++) h[g] = fp4_half_scale(t, mx, pt, ng, r, g);
        __m256 P = _mm256_setzero_ps(), Q = _mm256_setzero_ps();
        for (uint64_t p = 0; p < np; p++) {
            _mm_prefetch((const char *)(row + p * 32) + 1024, _MM_HINT_T0);
            /* a pair never straddles groups of 64 or more (their bounds are even chunks) */
            const __m256 hv = g32 ? _mm256_setr_m128(_mm_broadcast_ss(h + 2 * p), _mm_broadcast_ss(h + 2 * p + 1))
                                  : _mm256_broadcast_ss(h + (lg == 63 ? 0 : (2 * p) >> lg));
            const __m256 f = _mm256_mul_ps(dx[p], hv);
            const __m256i v = _mm256_loadu_si256((const __m256i *)(row + p * 32));
            const __m256i wl = _mm256_shuffle_epi8(tab16, _mm256_and_si256(v, m4));
            const __m256i wh = _mm256_shuffle_epi8(tab16, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            const __m256i dl = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wl, xp[4 * p]), ones16), xp[4 * p + 2]);
            const __m256i dh = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wh, xp[4 * p + 1]), ones16), xp[4 * p + 3]);
            P = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dl), f, P);
            Q = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dh), f, Q);
        }
        __m256 tot0 = _mm256_permute2f128_ps(P, Q, 0x20), tot1 = _mm256_permute2f128_ps(P, Q, 0x31);
        if (nc & 1) { /* the odd last chunk (even index: tot0), one chunk as the pairs take it */
            const uint64_t c = nc - 1, g = lg == 63 ? 0 : c >> lg;
            const __m256 hc = _mm256_set1_ps(h[g]);
            const __m256i w = _mm256_shuffle_epi8(tab, unpack32(4, row + c * 16));
            const __m256i xq = _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK));
            const __m256i pr = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq, w));
            tot0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(pr, ones16)), _mm256_mul_ps(_mm256_set1_ps(x->d[c]), hc), tot0);
        }
        y[r] = hsum256(_mm256_add_ps(tot0, tot1));
    }
    free(xp);
    free(dx);
    free(h);
}

/* The same products with AVX-512 VNNI, bit for bit the AVX2 kernel's: a
 * chunk pair per register, the even chunk in lanes 0-7 (the AVX2 kernel's
 * tot0) and the odd one in lanes 8-15 (tot1). vpdpbusd wants unsigned
 * weights, so the table gives 2 x E2M1 + 16 and each lane starts at -16
 * times the sum of its four activation bytes: every lane's integer is the
 * AVX2 kernel's vpmaddubsw/vpmaddwd sum of the same four products, and the
 * float steps are the same per lane and in the same order. */
AVX512 void sq_fp4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, t->cols), ng = (cols + gl - 1) / gl, rb = sq_row_bytes(cols, 4);
    const uint64_t nc = sq_nchunks(cols), np = nc / 2;
    const int mx = t->codec->family == SQ_FAMILY_MX, pt = !mx && t->params[SQ_P_GROUP] == SQ_GROUP_TENSOR;
    const int g32 = gl == SQ_CHUNK && !pt; /* every chunk its own scale: four at a time */
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const uint8_t *codes = t->part[0];
    const __m128i tab16 = _mm_add_epi8(_mm_loadu_si128((const __m128i *)sq_e2m1_x2), _mm_set1_epi8(16));
    const __m512i tab = _mm512_broadcast_i32x4(tab16);
    const __m512i ones8 = _mm512_set1_epi8(1);
    __m512i *st = aligned_alloc(64, (size_t)(np + 1) * 64); /* -16 x the four-byte sums of x, per pair */
    __m512 *dx = aligned_alloc(64, (size_t)(np + 1) * 64);
    const uint64_t nh = pt ? 1 : ng;
    const int lg = ng == 1 ? 63 : __builtin_ctzll(gl / SQ_CHUNK); /* as the AVX2 kernel's */
    float *h = g32 ? NULL : malloc((size_t)nh * sizeof(float));
    if (!st || !dx || (!g32 && !h)) {
        free(st);
        free(dx);
        free(h);
        sq_fp4_gemv_q8_avx2(t, x, y, r0, r1);
        return;
    }
    for (uint64_t p = 0; p < np; p++) {
        const __m512i s4 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones8, _mm512_load_si512((const void *)(x->q + p * 64)));
        st[p] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s4, 4));
        dx[p] = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(x->d[2 * p]), _mm512_set1_ps(x->d[2 * p + 1]));
    }
    const __m512i lo2 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i hi2 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb;
        if (!g32) /* the row's half group scales, indexed by a shift (a division per step cost a third of the time) */
            for (uint64_t g = 0; g < nh; g++) h[g] = 0.5f * scale_load(sdt, t->part[1], pt ? 0 : r * ng + g);
        __m512 acc = _mm512_setzero_ps();
        uint64_t p = 0;
        if (g32)
            for (; p + 2 <= np; p += 2) { /* four chunks, four scales */
                _mm_prefetch((const char *)(row + 2 * p * 16) + 1024, _MM_HINT_T0);
                __m512i w0, w1;
                unpack128(4, row + 2 * p * 16, &w0, &w1);
                __m512 h4;
                if (mx) { /* half the scale, 2^(e-128), as sq_pow2f builds it (subnormal below e = 2) */
                    uint32_t e4;
                    memcpy(&e4, (const uint8_t *)t->part[1] + r * ng + 2 * p, 4);
                    const __m512i e = _mm512_cvtepu8_epi32(_mm_cvtsi32_si128((int)e4));
                    const __m512i nrm = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
                    const __m512i sub = _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_add_epi32(e, _mm512_set1_epi32(21)));
                    h4 = _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(e, _mm512_set1_epi32(2)), sub, nrm));
                } else {
                    h4 = _mm512_mul_ps(_mm512_castps128_ps512(scales4(sdt, t->part[1], r * ng + 2 * p)), _mm512_set1_ps(0.5f));
                }
                const __m512i d0 = _mm512_dpbusd_epi32(st[p], _mm512_shuffle_epi8(tab, w0), _mm512_load_si512((const void *)(x->q + p * 64)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_mul_ps(dx[p], _mm512_permutexvar_ps(lo2, h4)), acc);
                const __m512i d1 = _mm512_dpbusd_epi32(st[p + 1], _mm512_shuffle_epi8(tab, w1), _mm512_load_si512((const void *)(x->q + p * 64 + 64)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_mul_ps(dx[p + 1], _mm512_permutexvar_ps(hi2, h4)), acc);
            }
        if (!g32) /* groups of 64 or more, a row or the tensor: both chunks of a pair share a scale */
            for (; p + 2 <= np; p += 2) {
                _mm_prefetch((const char *)(row + 2 * p * 16) + 1024, _MM_HINT_T0);
                __m512i w0, w1;
                unpack128(4, row + 2 * p * 16, &w0, &w1);
                const float ha = h[lg == 63 ? 0 : (2 * p) >> lg], hb = h[lg == 63 ? 0 : (2 * p + 2) >> lg];
                const __m512i d0 = _mm512_dpbusd_epi32(st[p], _mm512_shuffle_epi8(tab, w0), _mm512_load_si512((const void *)(x->q + p * 64)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0), _mm512_mul_ps(dx[p], _mm512_set1_ps(ha)), acc);
                const __m512i d1 = _mm512_dpbusd_epi32(st[p + 1], _mm512_shuffle_epi8(tab, w1), _mm512_load_si512((const void *)(x->q + p * 64 + 64)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1), _mm512_mul_ps(dx[p + 1], _mm512_set1_ps(hb)), acc);
            }
        for (; p < np; p++) {
            float hp[2];
            for (int k = 0; k < 2; k++) {
                const uint64_t g = (2 * p + (uint64_t)k) * SQ_CHUNK / gl;
                hp[k] = mx ? sq_pow2f((int)((const uint8_t *)t->part[1])[r * ng + g] - 128) : 0.5f * scale_load(sdt, t->part[1], pt ? 0 : r * ng + g);
            }
            const __m512i d = _mm512_dpbusd_epi32(st[p], _mm512_shuffle_epi8(tab, unpack64(4, row + 2 * p * 16)),
                                                  _mm512_load_si512((const void *)(x->q + p * 64)));
            const __m512 hv = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(hp[0]), _mm512_set1_ps(hp[1]));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(dx[p], hv), acc);
        }
        __m256 tot0 = _mm512_castps512_ps256(acc), tot1 = _mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(acc), 1));
        if (nc & 1) { /* the odd last chunk (an even index: tot0) */
            const uint64_t c = nc - 1, g = c * SQ_CHUNK / gl;
            const float hs = mx ? sq_pow2f((int)((const uint8_t *)t->part[1])[r * ng + g] - 128) : 0.5f * scale_load(sdt, t->part[1], pt ? 0 : r * ng + g);
            const __m256i xq = _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK));
            const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), xq);
            const __m256i d = _mm256_dpbusd_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s4, 4)),
                                                  _mm256_shuffle_epi8(_mm512_castsi512_si256(tab), unpack32(4, row + c * 16)), xq);
            tot0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(x->d[c] * hs), tot0);
        }
        y[r] = hsum256(_mm256_add_ps(tot0, tot1));
    }
    free(st);
    free(dx);
    free(h);
}

/* 8-bit table codecs (fp8, mxfp8): gather from the 256-entry table. */
AVX2 void sq_lut8_gemv_avx2(const sq_tview *t, const float *x0, float *y, uint64_t r0, uint64_t r1) {
    const float *tab = sq_codec_value_table(t->codec, NULL);
    const uint64_t cols = t->cols, gl = sq_codec_group_len(t->params, t->cols), ng = (cols + gl - 1) / gl, rb = sq_row_bytes(cols, 8);
    float *x = padded_x(x0, cols);
    if (!x) { sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x0, y, r0, r1); return; }
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)t->part[0] + r * rb;
        __m256 total = _mm256_setzero_ps();
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            for (uint64_t i = c0; i < c1; i += 16) {
                _mm_prefetch((const char *)(row + i) + 2048, _MM_HINT_T0);
                __m128i q = _mm_loadu_si128((const __m128i *)(row + i));
                __m256 v0 = _mm256_i32gather_ps(tab, _mm256_cvtepu8_epi32(q), 4);
                __m256 v1 = _mm256_i32gather_ps(tab, _mm256_cvtepu8_epi32(_mm_srli_si128(q, 8)), 4);
                a0 = _mm256_fmadd_ps(v0, _mm256_load_ps(x + i), a0);
                a1 = _mm256_fmadd_ps(v1, _mm256_load_ps(x + i + 8), a1);
            }
            total = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(sq_lut_group_scale(t, r, g)), total);
        }
        y[r] = hsum256(total);
    }
    free(x);
}

AVX2 void sq_f16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols;
    for (uint64_t r = r0; r < r1; r++) {
        const uint16_t *row = (const uint16_t *)t->part[0] + r * cols;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        uint64_t i = 0;
        for (; i + 16 <= cols; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i))), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + i + 8))), _mm256_loadu_ps(x + i + 8), a1);
        }
        float s = hsum256(_mm256_add_ps(a0, a1));
        for (; i < cols; i++) s += sq_f16_to_f32(row[i]) * x[i];
        y[r] = s;
    }
}

#else /* not x86-64: no SIMD kernels; the dispatcher never selects these */
void sq_int_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_int_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_int_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_int_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_lut4_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_int_gemm_q8_avx512(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    sq_int_gemm_q8_portable(t, x, T, y, r0, r1);
}
void sq_int_gemm_q8_avx2(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    sq_int_gemm_q8_portable(t, x, T, y, r0, r1);
}
void sq_act_q8_blocks_avx512(const float *x, uint64_t nblocks, int8_t *q, float *d, int32_t *sum) {
    (void)x, (void)nblocks, (void)q, (void)d, (void)sum; /* never selected off x86-64 */
}
void sq_act_q8_blocks_avx2(const float *x, uint64_t nblocks, int8_t *q, float *d, int32_t *sum) {
    (void)x, (void)nblocks, (void)q, (void)d, (void)sum; /* never selected off x86-64 */
}
void sq_fp4_gemv_q8_avx2(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_fp4_gemv_q8_avx512(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_lut8_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_f16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
#endif
