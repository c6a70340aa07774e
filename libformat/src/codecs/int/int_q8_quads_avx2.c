/* 2- and 3-bit integer GEMV with int8 activations, AVX2, for groups of 32
 * to 256 values, symmetric or asymmetric: four chunks (128 values) per step
 * with no shuffle of the low code bits.
 *
 * A chunk holds the low two bits of value i in byte i % 8 at bit 2 * (i / 8)
 * (spec, chunk packing); a 3-bit chunk then has bit 2 of value i at bit i of
 * its last 4 bytes. So the low bytes of chunks c..c+3 in one register,
 * shifted right by 2m and masked to two bits, are plane m: byte 8k + i holds
 * value 8m + i of chunk c + k. For 3 bits, byte m of chunk k's high word is
 * broadcast over the chunk's 8 bytes of the plane (vpshufb), each byte tests
 * its own bit (and, compare) and adds 4. Four vpmaddubsw against the
 * activations laid out once per call in the same order add up in int16 (at
 * most 8 * 7 * 127 a word), one vpmaddwd makes int32 lanes 2k and 2k + 1
 * chunk k's two halves. Chunk k's zero-point term -z * sum starts lane 2k
 * (exact in int32, as in the other kernels); a lane's float factor is its
 * chunk's activation scale times its group's scale. The chunks past the
 * last whole quad go one at a time.
 *
 * Against the earlier kernels (kernels_x86.c: 2-bit chunk pairs, 3-bit one
 * chunk at a time) this takes fewer operations per value: one load, shifts
 * and masks and one vpmaddwd, conversion and multiply-add per 128 values.
 * The sums differ in order from the portable kernel's: the results agree
 * within the integer-activation kernels' tolerance (tests/test_codecs.c). */
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/int/int_q8_planes.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* The per-call layout: per quad q, planes[4 q + m] (32 bytes: value 8m + i
 * of chunk 4q + k at byte 8k + i), nsum[q] (-sum of chunk 4q + k in lane
 * 2k, times the zero point for symmetric codes) and dx[q] (chunk 4q + k's
 * activation scale in lanes 2k and 2k + 1). */
typedef struct quads {
    __m256i *planes, *nsum;
    __m256 *dx;
    float *sbuf;
} quads;

static void quads_free(quads *l) {
    free(l->planes);
    free(l->nsum);
    free(l->dx);
    free(l->sbuf);
}

AVX2 static int quads_make(const sq_act_q8 *x, uint64_t nq, uint64_t ng, int32_t zmul, quads *l) {
    l->planes = aligned_alloc(64, (size_t)(4 * nq + 2) * 32);
    l->nsum = aligned_alloc(64, (size_t)(nq + 2) / 2 * 64);
    l->dx = aligned_alloc(64, (size_t)(nq + 2) / 2 * 64);
    l->sbuf = malloc((size_t)(ng + 8) * sizeof(float));
    if (!l->planes || !l->nsum || !l->dx || !l->sbuf) return -1;
    for (uint64_t q = 0; q < nq; q++) {
        int8_t *p = (int8_t *)(l->planes + 4 * q);
        int32_t ns[8] = {0};
        float d[8];
        for (int k = 0; k < 4; k++) {
            const uint64_t c = 4 * q + (uint64_t)k;
            const int8_t *xc = x->q + c * SQ_CHUNK;
            for (int m = 0; m < 4; m++) memcpy(p + 32 * m + 8 * k, xc + 8 * m, 8);
            ns[2 * k] = -zmul * x->sum[c];
            d[2 * k] = d[2 * k + 1] = x->d[c];
        }
        l->nsum[q] = _mm256_loadu_si256((const __m256i *)ns);
        l->dx[q] = _mm256_loadu_ps(d);
    }
    return 0;
}

/* The row's group scales as floats: in place for f32, converted otherwise
 * (int_q8_planes.h; the AVX-512 bit-plane kernels take it too). */
AVX2 const float *sq_int_row_scales(uint32_t dt, const void *base, uint64_t i0, uint64_t n, float *buf) {
    if (dt != SQ_DT_F16 && dt != SQ_DT_BF16) return (const float *)base + i0;
    const uint16_t *s = (const uint16_t *)base + i0;
    uint64_t g = 0;
    for (; g + 8 <= n; g += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(s + g));
        _mm256_storeu_ps(buf + g, dt == SQ_DT_F16 ? _mm256_cvtph_ps(h)
                                                  : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
    }
    for (; g < n; g++) buf[g] = dt == SQ_DT_F16 ? _cvtsh_ss(s[g]) : sq_bf16_to_f32(s[g]);
    return buf;
}

/* The low-bit bytes of the quad at p (four chunks of cb bytes) as one
 * register, chunk k at bytes 8k..8k+7; for 3 bits also *hi: chunk k's high
 * word at dword k % 2 of the 128-bit lane that holds its low bytes. */
AVX2 static inline __attribute__((always_inline)) __m256i quad_low(const int bits, const uint8_t *p, __m256i *hi) {
    if (bits == 2) return _mm256_loadu_si256((const __m256i *)p);
    /* 48 bytes: dwords 0,1 low c0, 2 high c0, 3,4 low c1, 5 high c1, 6,7 low c2, 8 high c2, 9,10 low c3, 11 high c3 */
    const __m256i a = _mm256_loadu_si256((const __m256i *)p), b = _mm256_loadu_si256((const __m256i *)(p + 16));
    const __m256i pa = _mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 1, 3, 4, 2, 5, 2, 5));
    const __m256i pb = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(4, 7, 4, 7, 2, 3, 5, 6)); /* b's dword j is dword j + 4 */
    *hi = _mm256_permute2x128_si256(pa, pb, 0x21);
    return _mm256_blend_epi32(pa, pb, 0xF0);
}

AVX2 static inline __attribute__((always_inline)) void quads_gemv(const int bits, const int gshift, const int asym, const sq_tview *t,
                                                                  const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1,
                                                                  const quads *l) {
    const uint64_t cols = t->cols, nc = sq_nchunks(cols), ng = sq_ngroups(t->params, cols), nq = nc / 4;
    const uint64_t rb = sq_row_bytes(cols, bits), cpg = (uint64_t)1 << gshift, qb = 4 * 4 * (uint64_t)bits;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    const int32_t mid = 1 << (bits - 1);
    /* lane l is chunk l / 2 of the quad; its group is (l / 2) >> gshift places after the quad's first */
    const uint64_t per = cpg < 4 ? 4 / cpg : 1;
    int32_t gi[8];
    for (int i = 0; i < 8; i++) gi[i] = cpg < 4 ? (int)(((uint64_t)i / 2) >> gshift) : 0;
    const __m256i gidx = _mm256_loadu_si256((const __m256i *)gi);
    const __m256i m3 = _mm256_set1_epi8(3), ones16 = _mm256_set1_epi16(1);
    /* 3 bits: plane m's bytes take byte m of their chunk's high word, then test bit (byte index % 8) */
    const __m256i bsel = _mm256_set1_epi64x((long long)0x8040201008040201ull), four = _mm256_set1_epi8(4);
    __m256i hsel[4];
    for (int m = 0; m < 4; m++) hsel[m] = _mm256_setr_epi64x(0x0101010101010101ll * m, 0x0101010101010101ll * (4 + m),
                                                             0x0101010101010101ll * m, 0x0101010101010101ll * (4 + m));
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb, *zr = asym ? zeros + r * ng : NULL;
        const float *s = sq_int_row_scales(sdt, t->part[1], r * ng, ng, l->sbuf);
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (uint64_t q = 0; q < nq; q++) {
            const uint8_t *p = row + qb * q;
            _mm_prefetch((const char *)p + 2048, _MM_HINT_T0);
            __m256i hw = _mm256_setzero_si256();
            const __m256i v = quad_low(bits, p, &hw);
            __m256i w[4] = {_mm256_and_si256(v, m3), _mm256_and_si256(_mm256_srli_epi16(v, 2), m3),
                            _mm256_and_si256(_mm256_srli_epi16(v, 4), m3), _mm256_and_si256(_mm256_srli_epi16(v, 6), m3)};
            if (bits == 3)
                for (int m = 0; m < 4; m++) {
                    const __m256i h = _mm256_and_si256(_mm256_shuffle_epi8(hw, hsel[m]), bsel);
                    w[m] = _mm256_add_epi8(w[m], _mm256_and_si256(_mm256_cmpeq_epi8(h, bsel), four));
                }
            const __m256i *X = l->planes + 4 * q;
            const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], X[0]), _mm256_maddubs_epi16(w[1], X[1]));
            const __m256i b = _mm256_add_epi16(_mm256_maddubs_epi16(w[2], X[2]), _mm256_maddubs_epi16(w[3], X[3]));
            __m256i d32 = _mm256_madd_epi16(_mm256_add_epi16(a, b), ones16);
            const uint64_t g0 = (4 * q) >> gshift;
            if (asym) {
                uint32_t z4 = 0;
                memcpy(&z4, zr + g0, per);
                const __m256i z = _mm256_permutevar8x32_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi32_si128((int)z4)), gidx);
                d32 = _mm256_add_epi32(d32, _mm256_mullo_epi32(l->nsum[q], z));
            } else {
                d32 = _mm256_add_epi32(d32, l->nsum[q]);
            }
            __m256 sv;
            if (gshift == 0) sv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(s + g0)), gidx);
            else if (gshift == 1) sv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s + g0)))), gidx);
            else sv = _mm256_broadcast_ss(s + g0);
            if (q & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_mul_ps(l->dx[q], sv), acc1);
            else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d32), _mm256_mul_ps(l->dx[q], sv), acc0);
        }
        const __m256 a = _mm256_add_ps(acc0, acc1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        float tot = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
        for (uint64_t c = 4 * nq; c < nc; c++) { /* the last 1-3 chunks */
            uint8_t u[SQ_CHUNK];
            sq_unpack_chunk(bits, row + c * 4 * (uint64_t)bits, u);
            int32_t dot = 0;
            for (int i = 0; i < SQ_CHUNK; i++) dot += (int32_t)u[i] * x->q[c * SQ_CHUNK + (uint64_t)i];
            const uint64_t g = c >> gshift;
            const int32_t z = asym ? zr[g] : mid;
            tot += (float)(dot - z * x->sum[c]) * x->d[c] * s[g];
        }
        y[r] = tot;
    }
}

AVX2 int sq_int_gemv_q8_quads_avx2(int bits, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, gs = sq_group_cols(t->params, cols);
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    int gshift;
    switch (gs) {
    case 32: gshift = 0; break;
    case 64: gshift = 1; break;
    case 128: gshift = 2; break;
    case 256: gshift = 3; break;
    default: return -1;
    }
    if (bits != 2 && bits != 3) return -1;
    const uint64_t nc = sq_nchunks(cols), nq = nc / 4, ng = sq_ngroups(t->params, cols);
    quads l = {0};
    if (quads_make(x, nq, ng, asym ? 1 : 1 << (bits - 1), &l)) {
        quads_free(&l);
        return -1;
    }
#define QUADS(B, G)                                                                                                    \
    case G:                                                                                                            \
        if (asym) quads_gemv(B, G, 1, t, x, y, r0, r1, &l);                                                            \
        else quads_gemv(B, G, 0, t, x, y, r0, r1, &l);                                                                 \
        break
    if (bits == 2) switch (gshift) {
            QUADS(2, 0);
            QUADS(2, 1);
            QUADS(2, 2);
            QUADS(2, 3);
        }
    else switch (gshift) {
            QUADS(3, 0);
            QUADS(3, 1);
            QUADS(3, 2);
            QUADS(3, 3);
        }
#undef QUADS
    quads_free(&l);
    return 0;
}

#else /* not x86-64: never selected */
int sq_int_gemv_q8_quads_avx2(int bits, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    (void)bits, (void)t, (void)x, (void)y, (void)r0, (void)r1;
    return -1;
}
#endif
