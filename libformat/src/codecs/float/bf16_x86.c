/* AVX2 and AVX-512 GEMV of the bf16 codec: a bf16 value is the top half of
 * a float, so a 32-bit lane of two bf16 values gives the odd one with an
 * and and the even one with a shift; x is permuted once per call to meet
 * them (bf16_dot.h, whose order the TCA-TBE GEMV shares). */
#include "codecs/codecs.h"
#include "codecs/float/bf16_dot.h"

#if defined(__x86_64__)
SQ_BF16_AVX2 void sq_bf16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
    const uint64_t cols = t->cols;
    float xbuf[SQ_BF16_XBUF], xs[SQ_BF16_XSEG], *owned;
    const float *xp = sq_bf16_xperm_get(x, cols, SQ_BF16_CHUNK_AVX2, xbuf, &owned);
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot_avx2 acc;
        sq_bf16_dot_avx2_init(&acc);
        if (xp) {
            y[r] = sq_bf16_dot_avx2_finish(&acc, d + r * cols, xp, cols);
            continue;
        }
        uint64_t i = 0; /* no memory for x permuted whole: a segment at a time */
        for (; cols - i > SQ_BF16_XSEG; i += SQ_BF16_XSEG) {
            sq_bf16_xperm(x + i, SQ_BF16_XSEG, SQ_BF16_CHUNK_AVX2, xs);
            for (uint64_t q = 0; q < SQ_BF16_XSEG; q += 32) sq_bf16_dot_avx2_step(&acc, d + r * cols + i + q, xs + q);
        }
        sq_bf16_xperm(x + i, cols - i, SQ_BF16_CHUNK_AVX2, xs);
        y[r] = sq_bf16_dot_avx2_finish(&acc, d + r * cols + i, xs, cols - i);
    }
    free(owned);
}
SQ_BF16_AVX512 void sq_bf16_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
    const uint64_t cols = t->cols;
    float xbuf[SQ_BF16_XBUF], xs[SQ_BF16_XSEG], *owned;
    const float *xp = sq_bf16_xperm_get(x, cols, SQ_BF16_CHUNK_AVX512, xbuf, &owned);
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot_avx512 acc;
        sq_bf16_dot_avx512_init(&acc);
        if (xp) {
            y[r] = sq_bf16_dot_avx512_finish(&acc, d + r * cols, xp, cols);
            continue;
        }
        uint64_t i = 0;
        for (; cols - i > SQ_BF16_XSEG; i += SQ_BF16_XSEG) {
            sq_bf16_xperm(x + i, SQ_BF16_XSEG, SQ_BF16_CHUNK_AVX512, xs);
            for (uint64_t q = 0; q < SQ_BF16_XSEG; q += 64) sq_bf16_dot_avx512_step(&acc, d + r * cols + i + q, xs + q);
        }
        sq_bf16_xperm(x + i, cols - i, SQ_BF16_CHUNK_AVX512, xs);
        y[r] = sq_bf16_dot_avx512_finish(&acc, d + r * cols + i, xs, cols - i);
    }
    free(owned);
}
#else /* not x86-64: the dispatcher never selects these */
void sq_bf16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_bf16_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
#endif
