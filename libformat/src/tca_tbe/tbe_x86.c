/* TCA-TBE AVX2 and AVX-512 kernels, tested bit for bit against
 * tbe_portable.c (tests/test_tca_tbe.c).
 *
 * AVX-512 (with VBMI2): a half block of 64 values is one zmm of exponents
 * built with three masked byte adds (the plane words are the masks), the
 * escapes dropped in place by one expand-load at the mask plane0 & plane1 &
 * plane2, then sign/mantissa and exponent bytes merged into 64 bf16 values
 * in two zmm: no branch at all. The GEMV takes floats from those as the
 * bf16 GEMV does (a shift or an and per 32-bit lane, bf16_dot.h's order),
 * so it reads the coded bytes only. AVX2: planes expanded to byte masks 32 at a time, escapes patched
 * with a loop over their bits on the stack, a block at a time (blending
 * them into registers measured slower). */
#include <stdlib.h>
#include <string.h>

#include "codecs/float/bf16_dot.h"
#include "tca_tbe/tbe_internal.h"

#if defined(__x86_64__)
#define TBE_AVX2 SQ_BF16_AVX2
#define TBE_AVX512 __attribute__((target("avx2,fma,f16c,popcnt,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi2")))

/* ---------------- AVX2 ---------------- */
/* 32 bits as 32 bytes: 0xff where the bit is set (byte i from bit i) */
TBE_AVX2 static inline __m256i bits_to_bytes(uint32_t b) {
    __m256i v = _mm256_set1_epi32((int)b);
    const __m256i sel = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll, 0x0101010101010101ll, 0);
    v = _mm256_shuffle_epi8(v, sel);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* a block's 128 values into out (on the stack: the callers copy or dot them) */
TBE_AVX2 static inline __attribute__((always_inline)) void block_avx2(const sq_tbe *t, const uint8_t *rec,
                                                                      uint16_t out[SQ_TBE_BLOCK]) {
    uint8_t e[SQ_TBE_BLOCK] __attribute__((aligned(32)));
    const __m256i base = _mm256_set1_epi8((char)rec[SQ_TBE_R_WORD]);
    for (int q = 0; q < 4; q++) {
        __m256i i0 = _mm256_and_si256(bits_to_bytes(get32(rec + SQ_TBE_R_PLANE0 + 4 * q)), _mm256_set1_epi8(1));
        __m256i i1 = _mm256_and_si256(bits_to_bytes(get32(rec + SQ_TBE_R_PLANE1 + 4 * q)), _mm256_set1_epi8(2));
        __m256i i2 = _mm256_and_si256(bits_to_bytes(get32(rec + SQ_TBE_R_PLANE2 + 4 * q)), _mm256_set1_epi8(4));
        _mm256_store_si256((__m256i *)(e + 32 * q),
                           _mm256_add_epi8(base, _mm256_or_si256(i0, _mm256_or_si256(i1, i2))));
    }
    const uint8_t *esc = sq_tbe_block_esc(t, rec);
    for (int h = 0; h < 2; h++)
        for (uint64_t m = get64(rec + SQ_TBE_R_PLANE0 + 8 * h) & get64(rec + SQ_TBE_R_PLANE1 + 8 * h) &
                          get64(rec + SQ_TBE_R_PLANE2 + 8 * h);
             m; m &= m - 1)
            e[64 * h + __builtin_ctzll(m)] = *esc++;
    const __m256i s7 = _mm256_set1_epi8(0x7f), s8 = _mm256_set1_epi8((char)0x80);
    for (int q = 0; q < 4; q++) {
        __m256i ev = _mm256_load_si256((const __m256i *)(e + 32 * q));
        __m256i sm = _mm256_loadu_si256((const __m256i *)(rec + SQ_TBE_R_SM + 32 * q));
        /* high byte: sign, exponent bits 7..1; low byte: exponent bit 0, mantissa */
        __m256i hi = _mm256_or_si256(_mm256_and_si256(sm, s8), _mm256_and_si256(_mm256_srli_epi16(ev, 1), s7));
        __m256i lo = _mm256_or_si256(_mm256_and_si256(sm, s7), _mm256_and_si256(_mm256_slli_epi16(ev, 7), s8));
        /* unpack works within 128-bit lanes: order the quadwords 0, 2, 1, 3 first */
        hi = _mm256_permute4x64_epi64(hi, 0xD8);
        lo = _mm256_permute4x64_epi64(lo, 0xD8);
        _mm256_storeu_si256((__m256i *)(out + 32 * q), _mm256_unpacklo_epi8(lo, hi));
        _mm256_storeu_si256((__m256i *)(out + 32 * q + 16), _mm256_unpackhi_epi8(lo, hi));
    }
}


TBE_AVX2 void sq_tbe_decode_avx2(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out) {
    for (uint64_t b = b0; b < b1; b++, out += SQ_TBE_BLOCK) {
        if (b + 1 < t->n_blocks) {
            block_avx2(t, sq_tbe_rec(t, b), out);
        } else {
            uint16_t tmp[SQ_TBE_BLOCK];
            block_avx2(t, sq_tbe_rec(t, b), tmp);
            memcpy(out, tmp, (size_t)sq_tbe_block_len(t, b) * sizeof *out);
        }
    }
}

/* Rows of whole blocks are dotted block by block from the stack, others in
 * segments (sq_tbe_fill); x is permuted once (bf16_dot.h), or per segment
 * when there is no memory for it whole. */
TBE_AVX2 void sq_tbe_gemv_avx2(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1) {
    uint16_t buf[SQ_TBE_SEGMENT];
    float xbuf[SQ_BF16_XBUF], xs[SQ_TBE_SEGMENT], *owned;
    const float *xp = sq_bf16_xperm_get(x, cols, SQ_BF16_CHUNK_AVX2, xbuf, &owned);
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot_avx2 d;
        sq_bf16_dot_avx2_init(&d);
        if (xp && cols % SQ_TBE_BLOCK == 0) { /* a block at a time through the stack */
            const uint64_t nb = cols / SQ_TBE_BLOCK;
            for (uint64_t k = 0; k < nb; k++) {
                block_avx2(t, sq_tbe_rec(t, r * nb + k), buf);
                for (int q = 0; q < 4; q++) sq_bf16_dot_avx2_step(&d, buf + 32 * q, xp + k * SQ_TBE_BLOCK + 32 * q);
            }
            y[r] = sq_bf16_dot_avx2_finish(&d, buf, xp, 0);
            continue;
        }
        uint64_t i = 0;
        for (; cols - i > SQ_TBE_SEGMENT; i += SQ_TBE_SEGMENT) {
            sq_tbe_fill(t, sq_tbe_decode_avx2, r * cols + i, SQ_TBE_SEGMENT, buf);
            const float *xi = xp ? xp + i : xs;
            if (!xp) sq_bf16_xperm(x + i, SQ_TBE_SEGMENT, SQ_BF16_CHUNK_AVX2, xs);
            for (int q = 0; q < SQ_TBE_SEGMENT / 32; q++) sq_bf16_dot_avx2_step(&d, buf + 32 * q, xi + 32 * q);
        }
        sq_tbe_fill(t, sq_tbe_decode_avx2, r * cols + i, cols - i, buf);
        const float *xi = xp ? xp + i : xs;
        if (!xp) sq_bf16_xperm(x + i, cols - i, SQ_BF16_CHUNK_AVX2, xs);
        y[r] = sq_bf16_dot_avx2_finish(&d, buf, xi, cols - i);
    }
    free(owned);
}

/* ---------------- AVX-512 + VBMI2 ---------------- */
/* Half h (values 64h..64h+63) of a block as two vectors of 32 bf16 values;
 * *esc advances past its escapes. */
TBE_AVX512 static inline __attribute__((always_inline)) void half_avx512(const uint8_t *rec, int h, const uint8_t **esc, __m512i *v0, __m512i *v1) {
    const __mmask64 m0 = get64(rec + SQ_TBE_R_PLANE0 + 8 * h), m1 = get64(rec + SQ_TBE_R_PLANE1 + 8 * h),
                    m2 = get64(rec + SQ_TBE_R_PLANE2 + 8 * h), me = m0 & m1 & m2;
    __m512i e = _mm512_set1_epi8((char)rec[SQ_TBE_R_WORD]);
    e = _mm512_mask_add_epi8(e, m0, e, _mm512_set1_epi8(1));
    e = _mm512_mask_add_epi8(e, m1, e, _mm512_set1_epi8(2));
    e = _mm512_mask_add_epi8(e, m2, e, _mm512_set1_epi8(4));
    e = _mm512_mask_expandloadu_epi8(e, me, *esc);
    *esc += _mm_popcnt_u64(me);
    const __m512i sm = _mm512_loadu_si512(rec + SQ_TBE_R_SM + 64 * h), s8 = _mm512_set1_epi8((char)0x80);
    /* (a & 0x80) | (b & 0x7f) is ternary-logic 0xE4 with c = 0x80 */
    __m512i hi = _mm512_ternarylogic_epi32(sm, _mm512_srli_epi16(e, 1), s8, 0xE4);
    __m512i lo = _mm512_ternarylogic_epi32(_mm512_slli_epi16(e, 7), sm, s8, 0xE4);
    /* unpack works within 128-bit lanes: quadwords 0, 4, 1, 5, 2, 6, 3, 7 first */
    const __m512i order = _mm512_set_epi64(7, 3, 6, 2, 5, 1, 4, 0);
    hi = _mm512_permutexvar_epi64(order, hi);
    lo = _mm512_permutexvar_epi64(order, lo);
    *v0 = _mm512_unpacklo_epi8(lo, hi);
    *v1 = _mm512_unpackhi_epi8(lo, hi);
}

TBE_AVX512 static inline void block_avx512(const sq_tbe *t, const uint8_t *rec, uint16_t *out) {
    const uint8_t *esc = sq_tbe_block_esc(t, rec);
    for (int h = 0; h < 2; h++) {
        __m512i v0, v1;
        half_avx512(rec, h, &esc, &v0, &v1);
        _mm512_storeu_si512(out + 64 * h, v0);
        _mm512_storeu_si512(out + 64 * h + 32, v1);
    }
}

TBE_AVX512 void sq_tbe_decode_avx512(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out) {
    for (uint64_t b = b0; b < b1; b++, out += SQ_TBE_BLOCK) {
        if (b + 1 < t->n_blocks) {
            block_avx512(t, sq_tbe_rec(t, b), out);
        } else {
            uint16_t tmp[SQ_TBE_BLOCK];
            block_avx512(t, sq_tbe_rec(t, b), tmp);
            memcpy(out, tmp, (size_t)sq_tbe_block_len(t, b) * sizeof *out);
        }
    }
}

TBE_AVX512 void sq_tbe_gemv_avx512(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1) {
    uint16_t buf[SQ_TBE_SEGMENT];
    float xbuf[SQ_BF16_XBUF], xs[SQ_TBE_SEGMENT], *owned;
    const float *xp = sq_bf16_xperm_get(x, cols, SQ_BF16_CHUNK_AVX512, xbuf, &owned);
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot_avx512 d;
        sq_bf16_dot_avx512_init(&d);
        if (xp && cols % SQ_TBE_BLOCK == 0) { /* decoded in registers: half a block is one chunk of 64 */
            const uint64_t nb = cols / SQ_TBE_BLOCK;
            const uint8_t *rec = sq_tbe_rec(t, r * nb);
            const uint8_t *esc = sq_tbe_block_esc(t, rec); /* a row's escapes are consecutive */
            for (uint64_t k = 0; k < nb; k++, rec += SQ_TBE_RECORD) {
                _mm_prefetch((const char *)(rec + 4 * SQ_TBE_RECORD), _MM_HINT_T0);
                _mm_prefetch((const char *)(rec + 4 * SQ_TBE_RECORD + 64), _MM_HINT_T0);
                _mm_prefetch((const char *)(rec + 4 * SQ_TBE_RECORD + 128), _MM_HINT_T0);
                for (int h = 0; h < 2; h++) {
                    __m512i v0, v1;
                    half_avx512(rec, h, &esc, &v0, &v1);
                    sq_bf16_dot_avx512_step_v(&d, v0, v1, xp + k * SQ_TBE_BLOCK + 64 * h);
                }
            }
            y[r] = sq_bf16_dot_avx512_finish(&d, buf, xp, 0);
            continue;
        }
        uint64_t i = 0;
        for (; cols - i > SQ_TBE_SEGMENT; i += SQ_TBE_SEGMENT) {
            sq_tbe_fill(t, sq_tbe_decode_avx512, r * cols + i, SQ_TBE_SEGMENT, buf);
            const float *xi = xp ? xp + i : xs;
            if (!xp) sq_bf16_xperm(x + i, SQ_TBE_SEGMENT, SQ_BF16_CHUNK_AVX512, xs);
            for (int q = 0; q < SQ_TBE_SEGMENT / 64; q++) sq_bf16_dot_avx512_step(&d, buf + 64 * q, xi + 64 * q);
        }
        sq_tbe_fill(t, sq_tbe_decode_avx512, r * cols + i, cols - i, buf);
        const float *xi = xp ? xp + i : xs;
        if (!xp) sq_bf16_xperm(x + i, cols - i, SQ_BF16_CHUNK_AVX512, xs);
        y[r] = sq_bf16_dot_avx512_finish(&d, buf, xi, cols - i);
    }
    free(owned);
}

#else /* not x86-64: sq_tbe_isa never selects these */
void sq_tbe_decode_avx2(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out) { sq_tbe_decode_portable(t, b0, b1, out); }
void sq_tbe_decode_avx512(const sq_tbe *t, uint64_t b0, uint64_t b1, uint16_t *out) { sq_tbe_decode_portable(t, b0, b1, out); }
void sq_tbe_gemv_avx2(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_tbe_gemv_portable(t, cols, x, y, r0, r1);
}
void sq_tbe_gemv_avx512(const sq_tbe *t, uint64_t cols, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_tbe_gemv_portable(t, cols, x, y, r0, r1);
}
#endif
