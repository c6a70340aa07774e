/* AVX2 and AVX-512 GEMV of the bf16 codec: a bf16 value is the top half of
 * a float, so each step widens 16-bit lanes to 32 bits, shifts them up and
 * multiplies-adds. The summation order is bf16_dot.h's, which the TCA-TBE
 * GEMV shares. */
#include "codecs/codecs.h"
#include "codecs/float/bf16_dot.h"

#if defined(__x86_64__)
SQ_BF16_AVX2 void sq_bf16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot_avx2 acc;
        sq_bf16_dot_avx2_init(&acc);
        y[r] = sq_bf16_dot_avx2_finish(&acc, d + r * t->cols, x, t->cols);
    }
}
SQ_BF16_AVX512 void sq_bf16_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot_avx512 acc;
        sq_bf16_dot_avx512_init(&acc);
        y[r] = sq_bf16_dot_avx512_finish(&acc, d + r * t->cols, x, t->cols);
    }
}
#else /* not x86-64: the dispatcher never selects these */
void sq_bf16_gemv_avx2(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
void sq_bf16_gemv_avx512(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    sq_gemv_for(t->codec, SQ_ISA_PORTABLE)(t, x, y, r0, r1);
}
#endif
