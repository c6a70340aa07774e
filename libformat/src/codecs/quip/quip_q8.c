/* The quip codec's integer-activation GEMV (sq_act_q8: int8 blocks of 32),
 * portable reference and the integer codebook tables the SIMD kernel reads.
 *
 * Every codebook value times 4 is an integer (E8P12: odd, |v| <= 11; E81B:
 * even, |v| <= 8; E8R: |v| <= 4), so a stage's dot with a q8 block is exact
 * in int32: dot_k = Σ w4·q over block k. Per row and stage the blocks are
 * summed in 16 float lanes, lane k % 16 = fmaf((float)dot_k, d_k, lane),
 * blocks in order, then the lanes by sq_lanes16_sum's fixed tree: one
 * rounding order, which the AVX-512 kernel (quip_q8_avx512.c)
 * follows lane for lane, so both give the same bits. y[r] = Σ_s
 * (scale_s / 4) · that sum, stage 0 first, as the exact kernel orders it. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/quip/e8p.h"
#include "codecs/quip/quip_codec.h"

static sq_quip_q8_tables q8t;
static pthread_once_t q8t_once = PTHREAD_ONCE_INIT;

static void build(void) {
    const sq_e8p_tables *t = sq_e8p_tables_get();
    for (int c = 0; c < 256; c++)
        for (int i = 0; i < 8; i++) {
            /* the float tables hold exact multiples of 1/4 (1/2 for base), so these conversions are exact */
            q8t.e8p4[c][i] = (int8_t)lrintf(4.0f * t->base[c][i]);
            q8t.e8p_neg[c] |= (uint8_t)((t->sign[c][i] < 0) << i);
            q8t.e81b4[c][i] = (int8_t)lrintf(4.0f * t->e81b[c][i]);
            q8t.e8r4[c][i] = (int8_t)lrintf(4.0f * t->e8r[c][i]);
            q8t.col_e8p[i][c] = q8t.e8p4[c][i];
            q8t.col_e81b[i][c] = (uint8_t)(q8t.e81b4[c][i] + SQ_QUIP_Q8_BIAS);
            q8t.col_e8r[i][c] = (uint8_t)(q8t.e8r4[c][i] + SQ_QUIP_Q8_BIAS);
        }
    for (int S = 0; S < 256; S++) q8t.e8p_shift4[S] = t->shift[S] < 0 ? -1 : 1;
}

const sq_quip_q8_tables *sq_quip_q8_tables_get(void) {
    pthread_once(&q8t_once, build);
    return &q8t;
}

/* The 8 values (times 4) of code c of a stage's book. */
static void values4(const sq_quip_q8_tables *t, sq_quip_book book, const void *codes, uint64_t g, int w[8]) {
    if (book == SQ_QUIP_E8P) {
        const uint16_t c = ((const uint16_t *)codes)[g];
        const unsigned A = c >> 8, S = c & 0xFF;
        for (int i = 0; i < 8; i++) w[i] = ((t->e8p_neg[S] >> i) & 1 ? -t->e8p4[A][i] : t->e8p4[A][i]) + t->e8p_shift4[S];
    } else {
        const int8_t(*tab)[8] = book == SQ_QUIP_E81B ? t->e81b4 : t->e8r4;
        const uint8_t c = ((const uint8_t *)codes)[g];
        for (int i = 0; i < 8; i++) w[i] = tab[c][i];
    }
}

void sq_quip_gemv_q8_portable(const sq_tview *tv, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    sq_quip_view v;
    sq_quip_view_from_tview(tv, &v);
    const sq_quip_q8_tables *t = sq_quip_q8_tables_get();
    const uint64_t G = v.cols / 8;
    const uint32_t S = sq_quip_stages(v.bits, v.nested);
    for (uint64_t r = r0; r < r1; r++) {
        float out = 0;
        for (uint32_t s = 0; s < S; s++) {
            const sq_quip_book book = sq_quip_stage_book(v.bits, v.nested, s);
            const uint8_t *codes = (const uint8_t *)sq_quip_stage_codes(&v, s) + r * G * (book == SQ_QUIP_E8P ? 2 : 1);
            float lanes[16] = {0};
            for (uint64_t k = 0; k < x->nblocks; k++) {
                int32_t dot = 0;
                for (uint64_t g = 4 * k; g < 4 * k + 4 && g < G; g++) {
                    int w[8];
                    values4(t, book, codes, g, w);
                    for (int i = 0; i < 8; i++) dot += w[i] * x->q[8 * g + (uint64_t)i];
                }
                lanes[k % 16] = fmaf((float)dot, x->d[k], lanes[k % 16]);
            }
            const float part = (sq_f16_to_f32(v.scales[s * v.rows + r]) * 0.25f) * sq_lanes16_sum(lanes);
            out = s ? out + part : part;
        }
        y[r] = out;
    }
}

void sq_quip_gemm_q8_portable(const sq_tview *tv, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    for (uint32_t j = 0; j < T; j++) sq_quip_gemv_q8_portable(tv, x + j, y + (uint64_t)j * tv->rows, r0, r1);
}
