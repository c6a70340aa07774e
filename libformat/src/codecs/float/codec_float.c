/* Passthrough codecs f32, f16, bf16: one part "data" [rows, cols]. */
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/float/bf16_dot.h"

static int layout_float(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o) {
    (void)p;
    o[0] = (sq_part_spec){"data", c->value_dtype, 2, {rows, cols}, 0};
    return 1;
}

static int enc_float(const sq_encode_ctx *x, uint64_t r0, uint64_t r1, void *const *parts) {
    const uint64_t cols = x->cols;
    const float *w = x->w;
    if (x->codec->value_dtype == SQ_DT_F32) {
        memcpy((float *)parts[0] + r0 * cols, w + r0 * cols, (size_t)((r1 - r0) * cols) * sizeof(float));
        return 0;
    }
    uint16_t *o = parts[0];
    if (x->codec->value_dtype == SQ_DT_F16)
        for (uint64_t i = r0 * cols; i < r1 * cols; i++) o[i] = sq_f32_to_f16(w[i]);
    else
        for (uint64_t i = r0 * cols; i < r1 * cols; i++) o[i] = sq_f32_to_bf16(w[i]);
    return 0;
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
/* bf16_dot.h's portable order (= DOT8's), which the TCA-TBE GEMV shares */
static void gemv_bf16(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint16_t *d = t->part[0];
    for (uint64_t r = r0; r < r1; r++) {
        sq_bf16_dot8 acc = {{0}};
        y[r] = sq_bf16_dot8_finish(&acc, d + r * t->cols, x, t->cols);
    }
}

static const sq_codec_encoder float_encoder = {.encode_rows = enc_float};
static const sq_codec_cpu f32_cpu = {.decode = {dec_f32}, .gemv = {gemv_f32}};
static const sq_codec_cpu f16_cpu = {.decode = {dec_f16}, .gemv = {gemv_f16, sq_f16_gemv_avx2}};
static const sq_codec_cpu bf16_cpu = {.decode = {dec_bf16}, .gemv = {gemv_bf16, sq_bf16_gemv_avx2, sq_bf16_gemv_avx512}};

#define FLOAT_CODEC(VAR, ID, NAME, DT, BITS, CPU)                                                               \
    const sq_codec VAR = {.id = ID, .name = NAME, .family = SQ_FAMILY_FLOAT, .technique_flag = SQ_FLAG_FLOAT,   \
                          .lossless = 1, .bits = BITS, .value_dtype = DT, .group_ok = SQ_GROUPOK_NONE,          \
                          .layout = layout_float, .enc = &float_encoder, .cpu = &CPU};
FLOAT_CODEC(sq_codec_f32, SQ_CODEC_F32, "f32", SQ_DT_F32, 32, f32_cpu)
FLOAT_CODEC(sq_codec_f16, SQ_CODEC_F16, "f16", SQ_DT_F16, 16, f16_cpu)
FLOAT_CODEC(sq_codec_bf16, SQ_CODEC_BF16, "bf16", SQ_DT_BF16, 16, bf16_cpu)
