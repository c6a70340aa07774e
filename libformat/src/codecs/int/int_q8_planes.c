/* 4-, 3- and 2-bit integer GEMV with int8 activations, AVX-512 VNNI, for
 * groups of 32 to 256 values, symmetric or asymmetric: the codes are
 * rearranged as little as possible, the activations (once per call) to
 * match. 3-bit codes: see sq_int3_gemv_q8_planes_avx512. The layout costs
 * a set-up per call, so sq_int_gemv_q8_avx512 uses these kernels for rows
 * of 4096 values or more only.
 *
 * A chunk stores its 32 codes in cb = 4 * bits bytes, value i in byte i % cb
 * at bit offset bits * (i / cb) (spec, chunk packing). So a 64-byte block of
 * K = 16 / bits chunks, shifted right by bits * k and masked, is plane k: byte
 * b holds value k * cb + b % cb of chunk b / cb. One vpdpbusd per plane, with
 * the activations laid out once per call in the same order, adds into one
 * register whose int32 lanes l belong to chunk l / bits of the block, with no
 * shuffle of the codes. Each chunk's zero-point term -z * sum_c starts its
 * first lane (exact in int32, as in the older kernels); a lane's float
 * factor is its chunk's activation scale times its group's scale. Chunks
 * past the last whole block are done one at a time with 256-bit vpdpbusd.
 *
 * The sums differ in order from the portable kernel's, so the results agree
 * within the tolerance the integer-activation kernels are tested to
 * (tests/test_codecs.c), not bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/int/int_q8_planes.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Software prefetch distance in bytes of codes: from cold caches these
 * kernels outrun the hardware prefetcher on one AMD EPYC (Zen 4) core;
 * 4096 read faster there than 512-2048 (int4:g64:asym 4096x14336, one
 * thread: 49-50% of the streaming read at 512, 70% at 4096, under load). */
#define PF_AHEAD 4096

#define AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

/* One chunk's 32 codes as bytes (value i in byte i). */
AVX512 static inline __m256i chunk_codes(int bits, const uint8_t *p) {
    if (bits == 4) {
        const __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(15);
        return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    }
    uint64_t b;
    memcpy(&b, p, 8);
    return _mm256_and_si256(_mm256_srlv_epi64(_mm256_set1_epi64x((long long)b), _mm256_setr_epi64x(0, 2, 4, 6)),
                            _mm256_set1_epi8(3));
}

AVX512 static inline __attribute__((always_inline)) void planes_gemv(const int bits, const int gshift, const sq_tview *t,
                                                                     const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1,
                                                                     int8_t *xp, __m512i *nsum, __m512 *dx, float *sbuf) {
    const uint64_t cols = t->cols, nc = sq_nchunks(cols), ng = sq_ngroups(t->params, cols);
    const uint64_t cb = (uint64_t)(4 * bits), K = 16 / (uint64_t)bits, nb = nc / K, np = 8 / (uint64_t)bits;
    const uint64_t rb = sq_row_bytes(cols, bits), cpg = (uint64_t)1 << gshift;
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const int32_t mid = 1 << (bits - 1);
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    /* lane l is chunk l / bits of the block; its group is (l / bits) >> gshift places after the block's first */
    const uint64_t per = cpg < K ? K / cpg : 1;
    const __mmask16 gmask = (__mmask16)((1u << per) - 1);
    int32_t gi[16];
    for (int l = 0; l < 16; l++) gi[l] = cpg < K ? (int)(((uint64_t)l / (uint64_t)bits) >> gshift) : 0;
    const __m512i gidx = _mm512_loadu_si512((const void *)gi);
    const __m512i m = _mm512_set1_epi8((char)((1 << bits) - 1));
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb, *zr = asym ? zeros + r * ng : NULL;
        const float *s = sq_int_row_scales(sdt, t->part[1], r * ng, ng, sbuf);
        __m512 tot0 = _mm512_setzero_ps(), tot1 = _mm512_setzero_ps(); /* two FMA chains */
        for (uint64_t b = 0; b < nb; b++) {
            const __m512i v = _mm512_loadu_si512((const void *)(row + b * 64));
            _mm_prefetch((const char *)(row + b * 64) + PF_AHEAD, _MM_HINT_T0);
            const uint64_t g0 = (b * K) >> gshift;
            __m512i acc = nsum[b];
            if (asym) /* z * -sum_c in each chunk's first lane (vpmaddwd: exact, z < 256 and |sum_c| < 2^15) */
                acc = _mm512_madd_epi16(_mm512_permutexvar_epi32(gidx, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gmask, zr + g0))), acc);
            const __m512i *xb = (const __m512i *)(xp + b * np * 64);
            acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(v, m), _mm512_load_si512(xb));
            for (uint64_t k = 1; k < np; k++)
                acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(v, (unsigned)(bits * (int)k)), m),
                                          _mm512_load_si512(xb + k));
            const __m512 f = _mm512_mul_ps(dx[b], _mm512_permutexvar_ps(gidx, _mm512_maskz_loadu_ps(gmask, s + g0)));
            if (b & 1) tot1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), f, tot1);
            else tot0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), f, tot0);
        }
        float total = _mm512_reduce_add_ps(_mm512_add_ps(tot0, tot1));
        for (uint64_t c = nb * K; c < nc; c++) { /* chunks past the last whole block */
            const uint64_t g = c >> gshift;
            const __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), chunk_codes(bits, row + c * cb),
                                                  _mm256_load_si256((const __m256i *)(x->q + c * SQ_CHUNK)));
            const int32_t dot = _mm512_reduce_add_epi32(_mm512_zextsi256_si512(d)) - (asym ? zr[g] : mid) * x->sum[c];
            total += (float)dot * (s[g] * x->d[c]);
        }
        y[r] = total;
    }
}

AVX512 void sq_int_gemv_q8_planes_avx512(int bits, int gshift, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0,
                                         uint64_t r1) {
    const uint64_t nc = sq_nchunks(t->cols), ng = sq_ngroups(t->params, t->cols);
    const uint64_t cb = (uint64_t)(4 * bits), K = 16 / (uint64_t)bits, nb = nc / K, np = 8 / (uint64_t)bits;
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const int32_t mid = 1 << (bits - 1);
    int8_t *xp = aligned_alloc(64, (size_t)(nb + 1) * np * 64);
    __m512i *nsum = aligned_alloc(64, (size_t)(nb + 1) * 64);
    __m512 *dx = aligned_alloc(64, (size_t)(nb + 1) * 64);
    float *sbuf = malloc((size_t)(ng + 16) * sizeof(float));
    if (xp && nsum && dx && sbuf) {
        for (uint64_t b = 0; b < nb; b++) {
            int32_t ns[16] = {0};
            float d[16];
            for (uint64_t j = 0; j < K; j++) {
                const uint64_t c = b * K + j;
                for (uint64_t k = 0; k < np; k++) /* plane k's bytes j*cb.. are values k*cb.. of chunk c */
                    memcpy(xp + (b * np + k) * 64 + j * cb, x->q + c * SQ_CHUNK + k * cb, (size_t)cb);
                ns[j * (uint64_t)bits] = asym ? -x->sum[c] : -mid * x->sum[c];
                for (int l = 0; l < bits; l++) d[j * (uint64_t)bits + (uint64_t)l] = x->d[c];
            }
            nsum[b] = _mm512_loadu_si512((const void *)ns);
            dx[b] = _mm512_loadu_ps(d);
        }
        if (bits == 4) planes_gemv(4, gshift, t, x, y, r0, r1, xp, nsum, dx, sbuf);
        else planes_gemv(2, gshift, t, x, y, r0, r1, xp, nsum, dx, sbuf);
    } else {
        sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
    }
    free(xp);
    free(nsum);
    free(dx);
    free(sbuf);
}

/* 3-bit codes: a chunk is 12 bytes, the low two bits of its values in the
 * 2-bit layout (8 bytes) and then bit 2 of value i as bit i of a 32-bit
 * word. Four chunks (48 bytes, 12 dwords) a step: one vpermd gathers their
 * low parts twice, shifts by 0/2 and 4/6 per half give planes 0-1 and 2-3
 * (qword c of each half: chunk c), and a byte transpose of their four high
 * words gives each plane register its 64-bit mask of values with bit 2
 * set, added as 4 under the mask. Int32 lanes 2c, 2c+1, 2c+8, 2c+9 are
 * chunk c. */
AVX512 static inline __attribute__((always_inline)) __m512i int3_quad(const __m512i v, __m512i start, const __m512i *xb) {
    const __m512i low = _mm512_permutexvar_epi32(_mm512_set_epi32(10, 9, 7, 6, 4, 3, 1, 0, 10, 9, 7, 6, 4, 3, 1, 0), v);
    const __m128i h = _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11, 8, 5, 2), v));
    /* [A0 B0 C0 D0 A1 B1 C1 D1 | A2 .. D3]: byte n of chunk c's high word holds values 8n..8n+7 */
    const __m128i ht = _mm_shuffle_epi8(h, _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    const __mmask64 k01 = (__mmask64)_mm_cvtsi128_si64(ht), k23 = (__mmask64)_mm_extract_epi64(ht, 1);
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    __m512i p01 = _mm512_and_si512(_mm512_srlv_epi64(low, _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0)), m3);
    __m512i p23 = _mm512_and_si512(_mm512_srlv_epi64(low, _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4)), m3);
    p01 = _mm512_mask_add_epi8(p01, k01, p01, four);
    p23 = _mm512_mask_add_epi8(p23, k23, p23, four);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(start, p01, _mm512_load_si512(xb)), p23, _mm512_load_si512(xb + 1));
}

AVX512 void sq_int3_gemv_q8_planes_avx512(int gshift, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t cols = t->cols, nc = sq_nchunks(cols), ng = sq_ngroups(t->params, cols), nq = nc / 4;
    const uint64_t rb = sq_row_bytes(cols, 3), cpg = (uint64_t)1 << gshift;
    const int asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    const uint8_t *codes = t->part[0], *zeros = asym ? t->part[2] : NULL;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    int8_t *xp = aligned_alloc(64, (size_t)(nq + 1) * 128);
    __m512i *nsum = aligned_alloc(64, (size_t)(nq + 1) * 64);
    __m512 *dx = aligned_alloc(64, (size_t)(nq + 1) * 64);
    float *sbuf = malloc((size_t)(ng + 16) * sizeof(float));
    if (!xp || !nsum || !dx || !sbuf) {
        free(xp);
        free(nsum);
        free(dx);
        free(sbuf);
        sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
        return;
    }
    for (uint64_t q = 0; q < nq; q++) {
        int32_t ns[16] = {0};
        float d[16];
        for (uint64_t c = 0; c < 4; c++) {
            const int8_t *xc = x->q + (4 * q + c) * SQ_CHUNK;
            for (uint64_t k = 0; k < 4; k++) /* plane k of chunk c: register k / 2, qword 4 (k % 2) + c */
                memcpy(xp + q * 128 + (k / 2) * 64 + (4 * (k % 2) + c) * 8, xc + 8 * k, 8);
            ns[2 * c] = asym ? -x->sum[4 * q + c] : -4 * x->sum[4 * q + c];
            d[2 * c] = d[2 * c + 1] = d[2 * c + 8] = d[2 * c + 9] = x->d[4 * q + c];
        }
        nsum[q] = _mm512_loadu_si512((const void *)ns);
        dx[q] = _mm512_loadu_ps(d);
    }
    const uint64_t per = cpg < 4 ? 4 / cpg : 1;
    const __mmask16 gmask = (__mmask16)((1u << per) - 1);
    int32_t gi[16];
    for (int l = 0; l < 16; l++) gi[l] = cpg < 4 ? (int)((((uint64_t)l / 2) % 4) >> gshift) : 0;
    const __m512i gidx = _mm512_loadu_si512((const void *)gi);
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *row = codes + r * rb, *zr = asym ? zeros + r * ng : NULL;
        const float *s = sq_int_row_scales(sdt, t->part[1], r * ng, ng, sbuf);
        __m512 tot0 = _mm512_setzero_ps(), tot1 = _mm512_setzero_ps();
        for (uint64_t q = 0; q < nq; q++) {
            const uint64_t g0 = (4 * q) >> gshift;
            __m512i st = nsum[q];
            if (asym) st = _mm512_madd_epi16(_mm512_permutexvar_epi32(gidx, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gmask, zr + g0))), st);
            /* a whole 64-byte load where the row holds 64 bytes from here (a masked one was slower from memory) */
            const __m512i v = (nc - 4 * q) * 12 >= 64 ? _mm512_loadu_si512((const void *)(row + q * 48))
                                                   : _mm512_maskz_loadu_epi32(0x0fff, (const void *)(row + q * 48));
            _mm_prefetch((const char *)(row + q * 48) + PF_AHEAD, _MM_HINT_T0);
            const __m512i acc = int3_quad(v, st, (const __m512i *)(xp + q * 128));
            const __m512 f = _mm512_mul_ps(dx[q], _mm512_permutexvar_ps(gidx, _mm512_maskz_loadu_ps(gmask, s + g0)));
            if (q & 1) tot1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), f, tot1);
            else tot0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), f, tot0);
        }
        float total = _mm512_reduce_add_ps(_mm512_add_ps(tot0, tot1));
        for (uint64_t c = nq * 4; c < nc; c++) { /* the last 1-3 chunks */
            const uint64_t g = c >> gshift;
            uint8_t qv[SQ_CHUNK];
            sq_unpack_chunk(3, row + c * 12, qv);
            int32_t dot = 0;
            for (int i = 0; i < SQ_CHUNK; i++) dot += (int32_t)qv[i] * x->q[c * SQ_CHUNK + (uint64_t)i];
            dot -= (asym ? zr[g] : 4) * x->sum[c];
            total += (float)dot * (s[g] * x->d[c]);
        }
        y[r] = total;
    }
    free(xp);
    free(nsum);
    free(dx);
    free(sbuf);
}

#else /* not x86-64: never selected */
void sq_int_gemv_q8_planes_avx512(int bits, int gshift, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0,
                                  uint64_t r1) {
    (void)bits;
    (void)gshift;
    sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_int3_gemv_q8_planes_avx512(int gshift, const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    (void)gshift;
    sq_gemv_q8_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
#endif
