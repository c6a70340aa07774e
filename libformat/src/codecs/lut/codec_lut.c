/* Table-driven codecs: a code indexes a fixed value table, times a scale.
 *   nf4          table = NormalFloat4, scale = block absmax (f32, or double-quantized)
 *   fp8/fp6/fp4  table = OCP mini-float values, scale = group absmax / max_normal
 *   mx*          table = OCP mini-float values, scale = E8M0 power of two per 32 values */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codecs.h"
#include "codecs/lut/lut.h"

typedef enum { K_NF4, K_FP, K_MX } lut_kind;

typedef struct lut_desc {
    lut_kind kind;
    int bits;
    sq_minifloat mf; /* K_FP, K_MX */
} lut_desc;

/* The descriptor's facts in the form the loops below use. */
static lut_desc desc_of(const sq_codec *c) {
    lut_kind k = c->family == SQ_FAMILY_MX ? K_MX : c->table ? K_NF4 : K_FP;
    return (lut_desc){k, (int)c->bits, c->minifloat ? (sq_minifloat)(c->minifloat - 1) : SQ_MF_E2M1};
}

enum { LUT_CODES, LUT_SCALES, NF4_DQ_SCALE, NF4_DQ_OFFSET }; /* part indices: "scales" is "absmax"/"absmax_q" for nf4 */

/* bitsandbytes NormalFloat4 values, index 0..15. */
static const float nf4_table[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};
#define NF4_ZERO 7
#define NF4_DQ_BLOCK SQ_NF4_DQ_BLOCK

static const float *table_of(lut_desc d) { return d.kind == K_NF4 ? nf4_table : sq_mf_table(d.mf); }

/* Group (or block) length in columns: MX blocks are 32 (the only grouping MX codecs take). */
static uint64_t group_len(lut_desc d, const uint32_t *p, uint64_t cols) { (void)d; return sq_group_cols(p, cols); }

static int layout_lut(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o) {
    lut_desc d = desc_of(c);
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
    return 4;
}

/* Scale of group g of row r, as the decoder sees it. */
static inline float group_scale(lut_desc d, const sq_tview *t, uint64_t r, uint64_t ng, uint64_t g) {
    uint64_t i = r * ng + g;
    if (d.kind == K_MX) return sq_pow2f((int)((const uint8_t *)t->part[LUT_SCALES])[i] - 127);
    if (d.kind == K_FP) {
        if (t->params[SQ_P_GROUP] == SQ_GROUP_TENSOR) i = 0;
        return sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[LUT_SCALES], i);
    }
    if (!(t->params[SQ_P_FLAGS] & SQ_PF_DQ)) return ((const float *)t->part[LUT_SCALES])[i];
    float s2 = ((const float *)t->part[NF4_DQ_SCALE])[i / NF4_DQ_BLOCK];
    return (float)((const int8_t *)t->part[LUT_SCALES])[i] * s2 + ((const float *)t->part[NF4_DQ_OFFSET])[0];
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

/* The whole tensor's scale (":pt"), and NF4's absmax buffer for double quantization. */
static sq_status prepare_lut(sq_encode_ctx *x, void *const *parts, sq_err *err) {
    lut_desc d = desc_of(x->codec);
    const uint32_t *p = x->params;
    if (d.kind == K_FP && p[SQ_P_GROUP] == SQ_GROUP_TENSOR) {
        float a = absmax_of(x->w, x->rows * x->cols);
        sq_scale_store(p[SQ_P_SCALE_DTYPE], parts[LUT_SCALES], 0, a / sq_mf(d.mf)->max_normal);
    }
    if (d.kind == K_NF4 && (p[SQ_P_FLAGS] & SQ_PF_DQ)) {
        uint64_t n = x->rows * sq_ngroups(p, x->cols);
        if (!(x->scratch = malloc((size_t)n * sizeof(float))))
            return sq_err_set(err, SQ_ENOMEM, "encode: out of memory for %llu block maxima", (unsigned long long)n);
    }
    return SQ_OK;
}

static int encode_lut(const sq_encode_ctx *x, uint64_t r0, uint64_t r1, void *const *parts) {
    lut_desc d = desc_of(x->codec);
    const uint32_t *p = x->params;
    const uint64_t cols = x->cols, gl = group_len(d, p, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, d.bits), cb = (uint64_t)(SQ_CHUNK * d.bits / 8);
    const int dq = d.kind == K_NF4 && (p[SQ_P_FLAGS] & SQ_PF_DQ);
    float *absmax = d.kind == K_NF4 ? (dq ? (float *)x->scratch : (float *)parts[LUT_SCALES]) : NULL;
    const sq_mf_info *mi = sq_mf(d.mf);
    for (uint64_t r = r0; r < r1; r++) {
        const float *row = x->w + r * cols;
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
                ((uint8_t *)parts[LUT_SCALES])[r * ng + g] = (uint8_t)(e + 127);
                s = ldexpf(1.0f, e);
            } else if (p[SQ_P_GROUP] == SQ_GROUP_TENSOR) {
                s = sq_scale_load(p[SQ_P_SCALE_DTYPE], parts[LUT_SCALES], 0);
            } else {
                s = sq_scale_round(p[SQ_P_SCALE_DTYPE], a / mi->max_normal);
                sq_scale_store(p[SQ_P_SCALE_DTYPE], parts[LUT_SCALES], r * ng + g, s);
            }
            /* every group length is a multiple of 32, so chunks never straddle groups */
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                for (int k = 0; k < SQ_CHUNK; k++) {
                    uint64_t col = i + (uint64_t)k;
                    if (col >= c1) { q[k] = d.kind == K_NF4 ? NF4_ZERO : 0; continue; }
                    if (d.kind == K_NF4) q[k] = s > 0 ? nf4_nearest(row[col] / s) : NF4_ZERO;
                    else if (d.kind == K_MX) q[k] = sq_mf_encode(d.mf, ldexpf(row[col], -(int)(((uint8_t *)parts[LUT_SCALES])[r * ng + g]) + 127));
                    else q[k] = s != 0 ? sq_mf_encode(d.mf, row[col] / s) : 0;
                }
                sq_pack_chunk(d.bits, q, (uint8_t *)parts[LUT_CODES] + r * rb + (i / SQ_CHUNK) * cb);
            }
        }
    }
    return 0;
}

/* NF4 double quantization: absmax - mean, int8 per 256 values with an f32 scale. */
static sq_status finalize_lut(sq_encode_ctx *x, void *const *parts, int failed, sq_err *err) {
    (void)err;
    const float *a = x->scratch;
    if (!a) return SQ_OK;
    if (!failed) {
        const uint32_t *p = x->params;
        uint64_t n = x->rows * sq_ngroups(p, x->cols);
        double sum = 0;
        for (uint64_t i = 0; i < n; i++) sum += a[i];
        float off = (float)(sum / (double)n);
        ((float *)parts[NF4_DQ_OFFSET])[0] = off;
        for (uint64_t b = 0; b * NF4_DQ_BLOCK < n; b++) {
            uint64_t i0 = b * NF4_DQ_BLOCK, i1 = i0 + NF4_DQ_BLOCK < n ? i0 + NF4_DQ_BLOCK : n;
            float m = 0;
            for (uint64_t i = i0; i < i1; i++)
                if (fabsf(a[i] - off) > m) m = fabsf(a[i] - off);
            float s2 = m / 127.0f;
            ((float *)parts[NF4_DQ_SCALE])[b] = s2;
            for (uint64_t i = i0; i < i1; i++) {
                float v = s2 > 0 ? sq_rne((a[i] - off) / s2) : 0;
                ((int8_t *)parts[LUT_SCALES])[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
    }
    free(x->scratch);
    x->scratch = NULL;
    return SQ_OK;
}

static void decode_lut(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    lut_desc d = desc_of(t->codec);
    const float *tab = table_of(d);
    const uint64_t cols = t->cols, gl = group_len(d, t->params, cols), ng = (cols + gl - 1) / gl;
    const uint64_t rb = sq_row_bytes(cols, d.bits), cb = (uint64_t)(SQ_CHUNK * d.bits / 8);
    for (uint64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * cols;
        uint8_t q[SQ_CHUNK];
        for (uint64_t i = 0; i < cols; i += SQ_CHUNK) {
            sq_unpack_chunk(d.bits, (const uint8_t *)t->part[LUT_CODES] + r * rb + (i / SQ_CHUNK) * cb, q);
            uint64_t n = cols - i < SQ_CHUNK ? cols - i : SQ_CHUNK;
            for (uint64_t k = 0; k < n; k++) o[i + k] = tab[q[k]] * group_scale(d, t, r, ng, (i + k) / gl);
        }
    }
}

static void gemv_lut(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    lut_desc d = desc_of(t->codec);
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
                sq_unpack_chunk(d.bits, (const uint8_t *)t->part[LUT_CODES] + r * rb + (i / SQ_CHUNK) * cb, q);
                uint64_t n = c1 - i < SQ_CHUNK ? c1 - i : SQ_CHUNK;
                for (uint64_t k = 0; k < n; k++) acc += tab[q[k]] * x[i + k];
            }
            total += group_scale(d, t, r, ng, g) * acc;
        }
        y[r] = total;
    }
}

/* Error-feedback quantizer (GPTQ) over the value table, one column at a
 * time; stat[0] is the group scale exactly as the decoder sees it. Not for
 * a whole-tensor scale (":pt") or NF4's double quantization, whose scales
 * depend on all rows. */
static int vq_supports(const sq_codec *c, const uint32_t *p) {
    lut_desc d = desc_of(c);
    return !(d.kind == K_FP && p[SQ_P_GROUP] == SQ_GROUP_TENSOR) && !(d.kind == K_NF4 && (p[SQ_P_FLAGS] & SQ_PF_DQ));
}
static uint64_t vq_group_len(const sq_vq *q) { return group_len(desc_of(q->codec), q->params, q->cols); }
static void vq_fit(const sq_vq *q, uint64_t row, uint64_t g, const float *v, uint64_t n, float stat[SQ_VQ_MAX_STAT]) {
    lut_desc d = desc_of(q->codec);
    const uint32_t *p = q->params;
    const uint64_t ng = sq_ngroups(p, q->cols), i = row * ng + g;
    float a = absmax_of(v, n);
    if (d.kind == K_NF4) {
        ((float *)q->parts[LUT_SCALES])[i] = a;
        stat[0] = a;
    } else if (d.kind == K_MX) {
        int e = -127;
        if (a > 0) {
            int k;
            frexpf(a, &k);
            e = k - 1 - sq_mf(d.mf)->emax;
            if (e < -127) e = -127;
            if (e > 127) e = 127;
        }
        ((uint8_t *)q->parts[LUT_SCALES])[i] = (uint8_t)(e + 127);
        stat[0] = ldexpf(1.0f, e);
    } else {
        stat[0] = sq_scale_round(p[SQ_P_SCALE_DTYPE], a / sq_mf(d.mf)->max_normal);
        sq_scale_store(p[SQ_P_SCALE_DTYPE], q->parts[LUT_SCALES], i, stat[0]);
    }
}
static uint32_t vq_quant(const sq_vq *q, const float stat[SQ_VQ_MAX_STAT], const float *v, float *deq) {
    lut_desc d = desc_of(q->codec);
    const float s = stat[0];
    uint8_t code;
    if (d.kind == K_NF4) code = s > 0 ? nf4_nearest(v[0] / s) : NF4_ZERO;
    else if (d.kind == K_MX) code = sq_mf_encode(d.mf, v[0] / s);
    else code = s != 0 ? sq_mf_encode(d.mf, v[0] / s) : 0;
    deq[0] = table_of(d)[code] * s;
    return code;
}
static void vq_pack_row(const sq_vq *q, uint64_t row, const uint32_t *codes) {
    lut_desc d = desc_of(q->codec);
    const uint64_t rb = sq_row_bytes(q->cols, d.bits), cb = (uint64_t)(SQ_CHUNK * d.bits / 8);
    uint8_t chunk[SQ_CHUNK];
    for (uint64_t i = 0; i < q->cols; i += SQ_CHUNK) {
        for (int k = 0; k < SQ_CHUNK; k++)
            chunk[k] = i + (uint64_t)k < q->cols ? (uint8_t)codes[i + (uint64_t)k] : d.kind == K_NF4 ? NF4_ZERO : 0;
        sq_pack_chunk(d.bits, chunk, (uint8_t *)q->parts[LUT_CODES] + row * rb + (i / SQ_CHUNK) * cb);
    }
}
static const sq_vq_ops lut_vq = {.dim = 1, .supports = vq_supports, .group_len = vq_group_len, .fit = vq_fit,
                                 .quant = vq_quant, .pack_row = vq_pack_row};

/* Shared with the codecs of this family that live in their own files (fp4_e2m1.c). */
const sq_codec_encoder sq_lut_encoder = {.prepare = prepare_lut, .encode_rows = encode_lut, .finalize = finalize_lut,
                                         .vq = &lut_vq};
int sq_lut_layout(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o) {
    return layout_lut(c, p, rows, cols, o);
}
void sq_lut_decode(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) { decode_lut(t, r0, r1, out); }
void sq_lut_gemv(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) { gemv_lut(t, x, y, r0, r1); }

static const sq_codec_cpu lut_cpu = {.decode = {decode_lut}, .gemv = {gemv_lut}};
static const sq_codec_cpu lut8_cpu = {.decode = {decode_lut}, .gemv = {gemv_lut, sq_lut8_gemv_avx2}};
static const sq_codec_cpu nf4_cpu = {
    .decode = {decode_lut},
    .gemv = {gemv_lut, sq_lut4_gemv_avx2},
    .fast = {[SQ_ISA_PORTABLE] = {SQ_ACT_Q8, .fn.q8 = sq_nf4_gemv_q8}, [SQ_ISA_AVX2] = {SQ_ACT_Q8, .fn.q8 = sq_nf4_gemv_q8_avx2},
             [SQ_ISA_AVX512] = {SQ_ACT_Q8, .fn.q8 = sq_nf4_gemv_q8_avx512}},
};
static const sq_codec_cpu mxfp4_cpu = {
    .decode = {decode_lut},
    .gemv = {gemv_lut, sq_lut4_gemv_avx2},
    .fast = {[SQ_ISA_PORTABLE] = {SQ_ACT_Q8, .fn.q8 = sq_fp4_gemv_q8}, [SQ_ISA_AVX2] = {SQ_ACT_Q8, .fn.q8 = sq_fp4_gemv_q8_avx2},
             [SQ_ISA_AVX512] = {SQ_ACT_Q8, .fn.q8 = sq_fp4_gemv_q8_avx512}},
};

#define G_NF4 (SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256)
#define G_FP (SQ_GROUPOK_ROW | SQ_GROUPOK_TENSOR | SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256)
#define MF(x) (SQ_MF_##x + 1)
#define LUT_CODEC(VAR, ID, NAME, FAMILY, FLAG, BITS, MFMT, GROUP, GROUPOK, OPTS, CPU)                                  \
    const sq_codec sq_codec_##VAR = {.id = ID, .name = NAME, .family = FAMILY, .technique_flag = FLAG, .bits = BITS, \
                                     .minifloat = MFMT, .default_group = GROUP, .group_ok = GROUPOK, .opts = OPTS,  \
                                     .layout = layout_lut, .enc = &sq_lut_encoder, .cpu = &CPU};

const sq_codec sq_codec_nf4 = {.id = SQ_CODEC_NF4, .name = "nf4", .family = SQ_FAMILY_LUT, .technique_flag = SQ_FLAG_NF4,
                               .bits = 4, .table = nf4_table, .default_group = 64, .group_ok = G_NF4, .opts = SQ_OPT_DQ,
                               .layout = layout_lut, .enc = &sq_lut_encoder, .cpu = &nf4_cpu};
LUT_CODEC(fp8_e4m3, SQ_CODEC_FP8_E4M3, "fp8_e4m3", SQ_FAMILY_LUT, SQ_FLAG_FP8, 8, MF(E4M3), SQ_GROUP_ROW, G_FP, SQ_OPT_SCALE_DTYPE, lut8_cpu)
LUT_CODEC(fp8_e5m2, SQ_CODEC_FP8_E5M2, "fp8_e5m2", SQ_FAMILY_LUT, SQ_FLAG_FP8, 8, MF(E5M2), SQ_GROUP_ROW, G_FP, SQ_OPT_SCALE_DTYPE, lut8_cpu)
LUT_CODEC(fp6_e3m2, SQ_CODEC_FP6_E3M2, "fp6_e3m2", SQ_FAMILY_LUT, SQ_FLAG_FP6, 6, MF(E3M2), 128, G_FP, SQ_OPT_SCALE_DTYPE, lut_cpu)
LUT_CODEC(fp6_e2m3, SQ_CODEC_FP6_E2M3, "fp6_e2m3", SQ_FAMILY_LUT, SQ_FLAG_FP6, 6, MF(E2M3), 128, G_FP, SQ_OPT_SCALE_DTYPE, lut_cpu)
LUT_CODEC(mxfp8_e4m3, SQ_CODEC_MXFP8_E4M3, "mxfp8_e4m3", SQ_FAMILY_MX, SQ_FLAG_MXFP8, 8, MF(E4M3), 32, SQ_GROUPOK_32, 0, lut8_cpu)
LUT_CODEC(mxfp8_e5m2, SQ_CODEC_MXFP8_E5M2, "mxfp8_e5m2", SQ_FAMILY_MX, SQ_FLAG_MXFP8, 8, MF(E5M2), 32, SQ_GROUPOK_32, 0, lut8_cpu)
LUT_CODEC(mxfp6_e3m2, SQ_CODEC_MXFP6_E3M2, "mxfp6_e3m2", SQ_FAMILY_MX, SQ_FLAG_MXFP6, 6, MF(E3M2), 32, SQ_GROUPOK_32, 0, lut_cpu)
LUT_CODEC(mxfp6_e2m3, SQ_CODEC_MXFP6_E2M3, "mxfp6_e2m3", SQ_FAMILY_MX, SQ_FLAG_MXFP6, 6, MF(E2M3), 32, SQ_GROUPOK_32, 0, lut_cpu)
LUT_CODEC(mxfp4, SQ_CODEC_MXFP4, "mxfp4", SQ_FAMILY_MX, SQ_FLAG_MXFP4, 4, MF(E2M1), 32, SQ_GROUPOK_32, 0, mxfp4_cpu)

/* Shared with the x86 kernels and fp4_e2m1.c: per-group scale as the decoder sees it. */
float sq_lut_group_scale(const sq_tview *t, uint64_t r, uint64_t g) {
    lut_desc d = desc_of(t->codec);
    uint64_t gl = group_len(d, t->params, t->cols);
    return group_scale(d, t, r, (t->cols + gl - 1) / gl, g);
}
