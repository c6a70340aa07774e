/* Table-driven codecs: a code indexes a fixed value table, times a scale.
 *   nf4          table = NormalFloat4, scale = block absmax (f32, or double-quantized)
 *   fp8/fp6/fp4  table = OCP mini-float values, scale = group absmax / max_normal
 *   mx*          table = OCP mini-float values, scale = E8M0 power of two per 32 values */
#include <math.h>
#include <string.h>

#include "codecs.h"

typedef enum { K_NF4, K_FP, K_MX } lut_kind;

typedef struct lut_desc {
    lut_kind kind;
    int bits;
    sq_minifloat mf; /* K_FP, K_MX */
} lut_desc;

static lut_desc desc_of(uint32_t id) {
    switch (id) {
    case SQ_CODEC_NF4: return (lut_desc){K_NF4, 4, SQ_MF_E2M1};
    case SQ_CODEC_FP8_E4M3: return (lut_desc){K_FP, 8, SQ_MF_E4M3};
    case SQ_CODEC_FP8_E5M2: return (lut_desc){K_FP, 8, SQ_MF_E5M2};
    case SQ_CODEC_FP6_E3M2: return (lut_desc){K_FP, 6, SQ_MF_E3M2};
    case SQ_CODEC_FP6_E2M3: return (lut_desc){K_FP, 6, SQ_MF_E2M3};
    case SQ_CODEC_FP4_E2M1: return (lut_desc){K_FP, 4, SQ_MF_E2M1};
    case SQ_CODEC_MXFP8_E4M3: return (lut_desc){K_MX, 8, SQ_MF_E4M3};
    case SQ_CODEC_MXFP8_E5M2: return (lut_desc){K_MX, 8, SQ_MF_E5M2};
    case SQ_CODEC_MXFP6_E3M2: return (lut_desc){K_MX, 6, SQ_MF_E3M2};
    case SQ_CODEC_MXFP6_E2M3: return (lut_desc){K_MX, 6, SQ_MF_E2M3};
    default: return (lut_desc){K_MX, 4, SQ_MF_E2M1};
    }
}

/* bitsandbytes NormalFloat4 values, index 0..15. */
static const float nf4_table[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};
#define NF4_ZERO 7
#define NF4_DQ_BLOCK 256

static const float *table_of(lut_desc d) { return d.kind == K_NF4 ? nf4_table : sq_mf_table(d.mf); }

/* Group (or block) length in columns. */
static uint64_t group_len(lut_desc d, const uint32_t *p, uint64_t cols) {
    if (d.kind == K_MX) return SQ_CHUNK;
    if (d.kind == K_NF4) return p[SQ_P_GROUP];
    return sq_group_cols(p, cols);
}

static int layout_lut(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o) {
    lut_desc d = desc_of(c->id);
    uint64_t ng = (cols + group_len(d, p, cols) - 1) / group_len(d, p, cols);
    o[0] = (sq_part_spec){"codes", SQ_DT_U8, 2, {rows, sq_row_bytes(cols, d.bits)}, 0};
    if (d.kind == K_MX) {
        o[1] = (sq_part_spec){"scales", SQ_DT_U8, 2, {rows, ng}, 0};
        return 2;
    }
    if (d.kind == K_FP) {
        if (p[SQ_P_GROUP] == SQ_GROUP_TENSOR) o[1] = (sq_part_spec){"scales", p[SQ_P_SCALE_DTYPE], 1, {1}, 0};
        else o[1] = (sq_part_spec){"scales", p[SQ_P_SCALE_DTYPE], 2, {rows, ng}, 0};
        return 2;
    }
    if (!(p[SQ_P_FLAGS] & SQ_PF_DQ)) {
        o[1] = (sq_part_spec){"absmax", SQ_DT_F32, 2, {rows, ng}, 0};
        return 2;
    }
    uint64_t n = rows * ng;
    o[1] = (sq_part_spec){"absmax_q", SQ_DT_I8, 2, {rows, ng}, 0};
    o[2] = (sq_part_spec){"absmax_scale", SQ_DT_F32, 1, {(n + NF4_DQ_BLOCK - 1) / NF4_DQ_BLOCK}, 0};
    o[3] = (sq_part_spec){"absmax_offset", SQ_DT_F32, 1, {1}, 0};
    o[4] = (sq_part_spec){"absmax", SQ_DT_F32, 2, {rows, ng}, 1}; /* scratch */
    return 5;
}

/* Scale of group g of row r, as the decoder sees it. */
static inline float group_scale(lut_desc d, const sq_tview *t, uint64_t r, uint64_t ng, uint64_t g) {
    uint64_t i = r * ng + g;
    if (d.kind == K_MX) return sq_pow2f((int)((const uint8_t *)t->part[1])[i] - 127);
    if (d.kind == K_FP) {
        if (t->params[SQ_P_GROUP] == SQ_GROUP_TENSOR) i = 0;
        return sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[1], i);
    }
    if (!(t->params[SQ_P_FLAGS] & SQ_PF_DQ)) return ((const float *)t->part[1])[i];
    float s2 = ((const float *)t->part[2])[i / NF4_DQ_BLOCK];
    return (float)((const int8_t *)t->part[1])[i] * s2 + ((const float *)t->part[3])[0];
}

static uint8_t nf4_nearest(float v) {
    /* index = number of midpoints strictly below v; ties go to the lower value */
    uint8_t q = 0;
    for (int i = 0; i < 15; i++)
        if (v > (nf4_table[i] + nf4_table[i + 1]) * 0.5f) q = (uint8_t)(i + 1);
    return q;
}

static float absmax_of(const float *v, uint64_t n) {
    float a = 0;
    for (uint64_t i = 0; i < n; i++)
        if (fabsf(v[i]) > a) a = fabsf(v[i]);
    return a;
}

static void prepare_lut(const sq_codec *c, const uint32_t *p, const float *w, uint64_t rows, uint64_t cols,
                        void *const *parts) {
    lut_desc d = desc_of(c->id);
    if (d.kind == K_FP && p[SQ_P_GROUP] == SQ_GROUP_TENSOR) {
        float a = absmax_of(w, rows * cols);
        sq_scale_store(p[SQ_P_SCALE_DTYPE], parts[1], 0, a / sq_mf(d.mf)->max_normal);
    }
}

static void encode_lut(const sq_codec *c, const uint32_t *p, const float *w, uint64_t cols, uint64_t r0, uint64_t r1,
                       void *const *parts) {
    lut_desc d = desc_of(c->id);
    const uint64_t gl = group_len(d, p, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, d.bits), cb = (uint64_t)(SQ_CHUNK * d.bits / 8);
    const int dq = d.kind == K_NF4 && (p[SQ_P_FLAGS] & SQ_PF_DQ);
    float *absmax = d.kind == K_NF4 ? (float *)parts[dq ? 4 : 1] : NULL;
    const sq_mf_info *mi = sq_mf(d.mf);
    for (uint64_t r = r0; r < r1; r++) {
        const float *row = w + r * cols;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            float a = absmax_of(row + c0, c1 - c0), s;
            if (d.kind == K_NF4) {
                absmax[r * ng + g] = a;
                s = a;
            } else if (d.kind == K_MX) {
                int e = -127;
                if (a > 0) {
                    int k;
                    frexpf(a, &k);        /* a = m * 2^k, m in [0.5,1): floor(log2 a) = k - 1 */
                    e = k - 1 - mi->emax; /* OCP MX v1.0 shared exponent */
                    if (e < -127) e = -127;
                    if (e > 127) e = 127;
                }
                ((uint8_t *)parts[1])[r * ng + g] = (uint8_t)(e + 127);
                s = ldexpf(1.0f, e);
            } else if (p[SQ_P_GROUP] == SQ_GROUP_TENSOR) {
                s = sq_scale_load(p[SQ_P_SCALE_DTYPE], parts[1], 0);
            } else {
                s = sq_scale_round(p[SQ_P_SCALE_DTYPE], a / mi->max_normal);
                sq_scale_store(p[SQ_P_SCALE_DTYPE], parts[1], r * ng + g, s);
            }
            /* every group length is a multiple of 32, so chunks never straddle groups */
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                for (int k = 0; k < SQ_CHUNK; k++) {
                    uint64_t col = i + (uint64_t)k;
                    if (col >= c1) { q[k] = d.kind == K_NF4 ? NF4_ZERO : 0; continue; }
                    if (d.kind == K_NF4) q[k] = s > 0 ? nf4_nearest(row[col] / s) : NF4_ZERO;
                    else if (d.kind == K_MX) q[k] = sq_mf_encode(d.mf, ldexpf(row[col], -(int)(((uint8_t *)parts[1])[r * ng + g]) + 127));
                    else q[k] = s != 0 ? sq_mf_encode(d.mf, row[col] / s) : 0;
                }
                sq_pack_chunk(d.bits, q, (uint8_t *)parts[0] + r * rb + (i / SQ_CHUNK) * cb);
            }
        }
    }
}

/* NF4 double quantization: absmax - mean, int8 per 256 values with an f32 scale. */
static void finalize_nf4(const uint32_t *p, uint64_t rows, uint64_t cols, void *const *parts) {
    if (!(p[SQ_P_FLAGS] & SQ_PF_DQ)) return;
    uint64_t ng = (cols + p[SQ_P_GROUP] - 1) / p[SQ_P_GROUP], n = rows * ng;
    const float *a = parts[4];
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += a[i];
    float off = (float)(sum / (double)n);
    ((float *)parts[3])[0] = off;
    for (uint64_t b = 0; b * NF4_DQ_BLOCK < n; b++) {
        uint64_t i0 = b * NF4_DQ_BLOCK, i1 = i0 + NF4_DQ_BLOCK < n ? i0 + NF4_DQ_BLOCK : n;
        float m = 0;
        for (uint64_t i = i0; i < i1; i++)
            if (fabsf(a[i] - off) > m) m = fabsf(a[i] - off);
        float s2 = m / 127.0f;
        ((float *)parts[2])[b] = s2;
        for (uint64_t i = i0; i < i1; i++) {
            float v = s2 > 0 ? sq_rne((a[i] - off) / s2) : 0;
            ((int8_t *)parts[1])[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

static void decode_lut(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    lut_desc d = desc_of(t->codec->id);
    const float *tab = table_of(d);
    const uint64_t cols = t->cols, gl = group_len(d, t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, d.bits), cb = (uint64_t)(SQ_CHUNK * d.bits / 8);
    for (uint64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * cols;
        uint8_t q[SQ_CHUNK];
        for (uint64_t i = 0; i < cols; i += SQ_CHUNK) {
            sq_unpack_chunk(d.bits, (const uint8_t *)t->part[0] + r * rb + (i / SQ_CHUNK) * cb, q);
            uint64_t n = cols - i < SQ_CHUNK ? cols - i : SQ_CHUNK;
            for (uint64_t k = 0; k < n; k++) o[i + k] = tab[q[k]] * group_scale(d, t, r, ng, (i + k) / gl);
        }
    }
}

static void gemv_lut(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    lut_desc d = desc_of(t->codec->id);
    const float *tab = table_of(d);
    const uint64_t cols = t->cols, gl = group_len(d, t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, d.bits), cb = (uint64_t)(SQ_CHUNK * d.bits / 8);
    for (uint64_t r = r0; r < r1; r++) {
        float total = 0;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            float acc = 0;
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                sq_unpack_chunk(d.bits, (const uint8_t *)t->part[0] + r * rb + (i / SQ_CHUNK) * cb, q);
                uint64_t n = c1 - i < SQ_CHUNK ? c1 - i : SQ_CHUNK;
                for (uint64_t k = 0; k < n; k++) acc += tab[q[k]] * x[i + k];
            }
            total += group_scale(d, t, r, ng, g) * acc;
        }
        y[r] = total;
    }
}

/* E2M1 values times 2 are small integers, so FP4 codecs have an exact
 * integer-activation GEMV: w = E2M1x2[q] * (scale / 2). */
const int8_t sq_e2m1_x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static void gemv_q8_fp4(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    lut_desc d = desc_of(t->codec->id);
    const uint64_t cols = t->cols, gl = group_len(d, t->params, cols), ng = (cols + gl - 1) / gl, rb = sq_row_bytes(cols, 4);
    for (uint64_t r = r0; r < r1; r++) {
        float total = 0;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gl, c1 = c0 + gl < cols ? c0 + gl : cols;
            float acc = 0;
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                sq_unpack_chunk(4, (const uint8_t *)t->part[0] + r * rb + (i / SQ_CHUNK) * 16, q);
                int32_t dot = 0;
                for (int k = 0; k < SQ_CHUNK; k++) dot += sq_e2m1_x2[q[k]] * x->q[i + (uint64_t)k];
                acc += x->d[i / SQ_CHUNK] * (float)dot;
            }
            total += group_scale(d, t, r, ng, g) * 0.5f * acc;
        }
        y[r] = total;
    }
}

/* Per-codec entry points (the traits table wants plain function pointers). */
#define LUT_CODEC(VAR, ID, NAME, FLAG, GROUP, GROUPOK, FIN, AVX2, Q8, Q8AVX2)                                                   \
    static int layout_##VAR(const uint32_t *p, uint64_t r, uint64_t c, sq_part_spec *o) {                      \
        return layout_lut(&sq_codec_##VAR, p, r, c, o);                                                         \
    }                                                                                                          \
    static void prepare_##VAR(const uint32_t *p, const float *w, uint64_t r, uint64_t c, void *const *parts) { \
        prepare_lut(&sq_codec_##VAR, p, w, r, c, parts);                                                        \
    }                                                                                                          \
    static void enc_##VAR(const uint32_t *p, const float *w, uint64_t rows, uint64_t cols, uint64_t r0,         \
                          uint64_t r1, void *const *parts) {                                                   \
        (void)rows;                                                                                            \
        encode_lut(&sq_codec_##VAR, p, w, cols, r0, r1, parts);                                                 \
    }                                                                                                          \
    const sq_codec sq_codec_##VAR = {ID, NAME, FLAG, 0, GROUP, GROUPOK, layout_##VAR, prepare_##VAR, enc_##VAR,  \
                                     FIN, {decode_lut, NULL, NULL}, {gemv_lut, AVX2, NULL}, {Q8, Q8AVX2, NULL}};

#define G_NF4 (SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256)
#define G_FP (SQ_GROUPOK_ROW | SQ_GROUPOK_TENSOR | SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256)
#define G_MX SQ_GROUPOK_32

LUT_CODEC(nf4, SQ_CODEC_NF4, "nf4", SQ_FLAG_NF4, 64, G_NF4, finalize_nf4, sq_lut4_gemv_avx2, NULL, NULL)
LUT_CODEC(fp8_e4m3, SQ_CODEC_FP8_E4M3, "fp8_e4m3", SQ_FLAG_FP8, SQ_GROUP_ROW, G_FP, NULL, sq_lut8_gemv_avx2, NULL, NULL)
LUT_CODEC(fp8_e5m2, SQ_CODEC_FP8_E5M2, "fp8_e5m2", SQ_FLAG_FP8, SQ_GROUP_ROW, G_FP, NULL, sq_lut8_gemv_avx2, NULL, NULL)
LUT_CODEC(fp6_e3m2, SQ_CODEC_FP6_E3M2, "fp6_e3m2", SQ_FLAG_FP6, 128, G_FP, NULL, NULL, NULL, NULL)
LUT_CODEC(fp6_e2m3, SQ_CODEC_FP6_E2M3, "fp6_e2m3", SQ_FLAG_FP6, 128, G_FP, NULL, NULL, NULL, NULL)
LUT_CODEC(fp4_e2m1, SQ_CODEC_FP4_E2M1, "fp4_e2m1", SQ_FLAG_FP4, 32, G_FP, NULL, sq_lut4_gemv_avx2, gemv_q8_fp4, sq_fp4_gemv_q8_avx2)
LUT_CODEC(mxfp8_e4m3, SQ_CODEC_MXFP8_E4M3, "mxfp8_e4m3", SQ_FLAG_MXFP8, 32, G_MX, NULL, sq_lut8_gemv_avx2, NULL, NULL)
LUT_CODEC(mxfp8_e5m2, SQ_CODEC_MXFP8_E5M2, "mxfp8_e5m2", SQ_FLAG_MXFP8, 32, G_MX, NULL, sq_lut8_gemv_avx2, NULL, NULL)
LUT_CODEC(mxfp6_e3m2, SQ_CODEC_MXFP6_E3M2, "mxfp6_e3m2", SQ_FLAG_MXFP6, 32, G_MX, NULL, NULL, NULL, NULL)
LUT_CODEC(mxfp6_e2m3, SQ_CODEC_MXFP6_E2M3, "mxfp6_e2m3", SQ_FLAG_MXFP6, 32, G_MX, NULL, NULL, NULL, NULL)
LUT_CODEC(mxfp4, SQ_CODEC_MXFP4, "mxfp4", SQ_FLAG_MXFP4, 32, G_MX, NULL, sq_lut4_gemv_avx2, gemv_q8_fp4, sq_fp4_gemv_q8_avx2)

const float *sq_codec_value_table(const sq_codec *c, int *bits) {
    if (c->id != SQ_CODEC_NF4 && !(c->id >= SQ_CODEC_FP8_E4M3 && c->id <= SQ_CODEC_FP4_E2M1) &&
        !(c->id >= SQ_CODEC_MXFP8_E4M3 && c->id <= SQ_CODEC_MXFP4))
        return NULL;
    lut_desc d = desc_of(c->id);
    if (bits) *bits = d.bits;
    return table_of(d);
}

/* Shared with the x86 kernels: value table and per-group scale. */
const float *sq_lut_table(const sq_codec *c) { return table_of(desc_of(c->id)); }
uint64_t sq_lut_group_len(const sq_tview *t) { return group_len(desc_of(t->codec->id), t->params, t->cols); }
float sq_lut_group_scale(const sq_tview *t, uint64_t r, uint64_t g) {
    lut_desc d = desc_of(t->codec->id);
    uint64_t gl = group_len(d, t->params, t->cols);
    return group_scale(d, t, r, (t->cols + gl - 1) / gl, g);
}
