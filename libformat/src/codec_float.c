/* Passthrough codecs f32, f16, bf16: one part "data" [rows, cols]. */
#include <string.h>

#include "codecs.h"

static int layout_for(uint32_t dt, uint64_t rows, uint64_t cols, sq_part_spec *o) {
    o[0] = (sq_part_spec){"data", dt, 2, {rows, cols}, 0};
    return 1;
}
static int layout_f32(const uint32_t *p, uint64_t r, uint64_t c, sq_part_spec *o) { (void)p; return layout_for(SQ_DT_F32, r, c, o); }
static int layout_f16(const uint32_t *p, uint64_t r, uint64_t c, sq_part_spec *o) { (void)p; return layout_for(SQ_DT_F16, r, c, o); }
static int layout_bf16(const uint32_t *p, uint64_t r, uint64_t c, sq_part_spec *o) { (void)p; return layout_for(SQ_DT_BF16, r, c, o); }

static void enc_f32(const uint32_t *p, const float *w, uint64_t rows, uint64_t cols, uint64_t r0, uint64_t r1, void *const *parts) {
    (void)p; (void)rows;
    memcpy((float *)parts[0] + r0 * cols, w + r0 * cols, (size_t)((r1 - r0) * cols) * sizeof(float));
}
static void enc_f16(const uint32_t *p, const float *w, uint64_t rows, uint64_t cols, uint64_t r0, uint64_t r1, void *const *parts) {
    (void)p; (void)rows;
    uint16_t *o = parts[0];
    for (uint64_t i = r0 * cols; i < r1 * cols; i++) o[i] = sq_f32_to_f16(w[i]);
}
static void enc_bf16(const uint32_t *p, const float *w, uint64_t rows, uint64_t cols, uint64_t r0, uint64_t r1, void *const *parts) {
    (void)p; (void)rows;
    uint16_t *o = parts[0];
    for (uint64_t i = r0 * cols; i < r1 * cols; i++) o[i] = sq_f32_to_bf16(w[i]);
}

static void dec_f32(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    memcpy(out, (const float *)t->part[0] + r0 * t->cols, (size_t)((r1 - r0) * t->cols) * sizeof(float));
}
static void dec_f16(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    const uint16_t *d = (const uint16_t *)t->part[0] + r0 * t->cols;
    for (uint64_t i = 0; i < (r1 - r0) * t->cols; i++) out[i] = sq_f16_to_f32(d[i]);
}
static void dec_bf16(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    const uint16_t *d = (const uint16_t *)t->part[0] + r0 * t->cols;
    for (uint64_t i = 0; i < (r1 - r0) * t->cols; i++) out[i] = sq_bf16_to_f32(d[i]);
}

/* Portable dot products keep 8 partial sums (same order as the SIMD lanes). */
#define DOT8(LOAD)                                                              \
    for (uint64_t r = r0; r < r1; r++) {                                        \
        float acc[8] = {0};                                                     \
        uint64_t base = r * t->cols, i = 0;                                     \
        for (; i + 8 <= t->cols; i += 8)                                        \
            for (int k = 0; k < 8; k++) acc[k] += LOAD(base + i + k) * x[i + k]; \
        float s = 0;                                                            \
        for (; i < t->cols; i++) s += LOAD(base + i) * x[i];                    \
        for (int k = 0; k < 8; k++) s += acc[k];                                \
        y[r] = s;                                                               \
    }

static void gemv_f32(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const float *d = t->part[0];
#define L(i) d[i]
    DOT8(L)
#undef L
}
static void gemv_f16(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
#define L(i) sq_f16_to_f32(d[i])
    DOT8(L)
#undef L
}
static void gemv_bf16(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
#define L(i) sq_bf16_to_f32(d[i])
    DOT8(L)
#undef L
}

#define FLOAT_CODEC(NAME, ID, TEXT, LAYOUT, ENC, DEC, GEMV, AVX2) \
    const sq_codec NAME = {ID, TEXT, SQ_FLAG_FLOAT, 1, 0, SQ_GROUPOK_NONE, LAYOUT, NULL, ENC, NULL, {DEC, NULL, NULL}, {GEMV, AVX2, NULL}, {NULL, NULL, NULL}};

FLOAT_CODEC(sq_codec_f32, SQ_CODEC_F32, "f32", layout_f32, enc_f32, dec_f32, gemv_f32, NULL)
FLOAT_CODEC(sq_codec_f16, SQ_CODEC_F16, "f16", layout_f16, enc_f16, dec_f16, gemv_f16, sq_f16_gemv_avx2)
FLOAT_CODEC(sq_codec_bf16, SQ_CODEC_BF16, "bf16", layout_bf16, enc_bf16, dec_bf16, gemv_bf16, NULL)
