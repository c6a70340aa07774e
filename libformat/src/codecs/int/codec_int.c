/* Integer codecs int8/int4/int3/int2, symmetric or affine, in groups along
 * the input dimension. Parts: codes u8 [rows, chunks*4*bits], scales
 * [rows, groups], zeros u8 [rows, groups] (asym only).
 *   sym:  w = s * (q - 2^(b-1)),  s = m / -2^(b-1), m the value of largest |w|
 *   asym: w = s * (q - z),  s = (max(w,0) - min(w,0)) / (2^b - 1) */
#include <math.h>
#include <stdlib.h>

#include "codecs/codecs.h"

enum { INT_CODES, INT_SCALES, INT_ZEROS }; /* part indices of the layout */

static int int_bits(const sq_codec *c) { return (int)c->bits; }

static int layout_int(const sq_codec *c, const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o) {
    uint64_t ng = sq_ngroups(p, cols);
    o[INT_CODES] = (sq_part_spec){"codes", SQ_DT_U8, 2, {rows, sq_row_bytes(cols, int_bits(c))}, 0};
    o[INT_SCALES] = (sq_part_spec){"scales", p[SQ_P_SCALE_DTYPE], 2, {rows, ng}, 0};
    if (!(p[SQ_P_FLAGS] & SQ_PF_ASYM)) return 2;
    o[INT_ZEROS] = (sq_part_spec){"zeros", SQ_DT_U8, 2, {rows, ng}, 0};
    return 3;
}

static inline float clampq(float v, float maxq) { return v < 0 ? 0 : v > maxq ? maxq : v; }

static void int_fit(const sq_codec *c, const uint32_t *p, const float *v, uint64_t n, float *scale, int *zero) {
    const int bits = int_bits(c);
    const float maxq = (float)((1 << bits) - 1), mid = (float)(1 << (bits - 1));
    const uint32_t sdt = p[SQ_P_SCALE_DTYPE];
    if (p[SQ_P_FLAGS] & SQ_PF_ASYM) {
        float mn = 0, mx = 0;
        for (uint64_t i = 0; i < n; i++) {
            if (v[i] < mn) mn = v[i];
            if (v[i] > mx) mx = v[i];
        }
        float s = sq_scale_round(sdt, (mx - mn) / maxq);
        *scale = s;
        *zero = (int)(s != 0 ? clampq(sq_rne(-mn / s), maxq) : 0);
    } else {
        float m = 0;
        for (uint64_t i = 0; i < n; i++)
            if (fabsf(v[i]) > fabsf(m)) m = v[i];
        *scale = sq_scale_round(sdt, m / -mid);
        *zero = (int)mid;
    }
}

static int int_quant(const sq_codec *c, float v, float s, int z) {
    const float maxq = (float)((1 << int_bits(c)) - 1);
    return (int)(s != 0 ? clampq(sq_rne(v / s) + (float)z, maxq) : (float)z);
}

static void int_store(const uint32_t *p, uint64_t cols, void *const *parts, uint64_t r, uint64_t g, float s, int z) {
    const uint64_t ng = sq_ngroups(p, cols);
    sq_scale_store(p[SQ_P_SCALE_DTYPE], parts[INT_SCALES], r * ng + g, s);
    if (p[SQ_P_FLAGS] & SQ_PF_ASYM) ((uint8_t *)parts[INT_ZEROS])[r * ng + g] = (uint8_t)z;
}

static void int_pack_row(const sq_codec *c, const uint8_t *q, uint64_t cols, void *const *parts, uint64_t r) {
    const int bits = int_bits(c);
    const uint64_t rb = sq_row_bytes(cols, bits);
    uint8_t chunk[SQ_CHUNK];
    for (uint64_t i = 0; i < cols; i += SQ_CHUNK) {
        for (int k = 0; k < SQ_CHUNK; k++) chunk[k] = i + (uint64_t)k < cols ? q[i + (uint64_t)k] : 0;
        sq_pack_chunk(bits, chunk, (uint8_t *)parts[INT_CODES] + r * rb + (i / SQ_CHUNK) * (uint64_t)(SQ_CHUNK * bits / 8));
    }
}

/* RTN: each group fitted and rounded on its own (int_fit/int_quant), the
 * same arithmetic GPTQ uses column by column through the vq ops below. */
static int encode_rows_int(const sq_encode_ctx *x, uint64_t r0, uint64_t r1, void *const *parts) {
    const sq_codec *c = x->codec;
    const uint32_t *p = x->params;
    const uint64_t cols = x->cols, gs = sq_group_cols(p, cols), ng = sq_ngroups(p, cols);
    uint8_t *q = malloc(cols);
    if (!q) return SQ_ENOMEM;
    for (uint64_t r = r0; r < r1; r++) {
        const float *row = x->w + r * cols;
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            float s;
            int z;
            int_fit(c, p, row + c0, c1 - c0, &s, &z);
            int_store(p, cols, parts, r, g, s, z);
            for (uint64_t i = c0; i < c1; i++) q[i] = (uint8_t)int_quant(c, row[i], s, z);
        }
        int_pack_row(c, q, cols, parts, r);
    }
    free(q);
    return 0;
}

/* Error-feedback quantizer (GPTQ): one column at a time; stat = {scale, zero}. */
static uint64_t vq_group_len(const sq_vq *q) { return sq_group_cols(q->params, q->cols); }
static void vq_fit(const sq_vq *q, uint64_t row, uint64_t g, const float *v, uint64_t n, float stat[SQ_VQ_MAX_STAT]) {
    int z;
    int_fit(q->codec, q->params, v, n, &stat[0], &z);
    stat[1] = (float)z;
    int_store(q->params, q->cols, q->parts, row, g, stat[0], z);
}
static uint32_t vq_quant(const sq_vq *q, const float stat[SQ_VQ_MAX_STAT], const float *v, float *deq) {
    const int z = (int)stat[1], code = int_quant(q->codec, v[0], stat[0], z);
    deq[0] = stat[0] * (float)(code - z);
    return (uint32_t)code;
}
static void vq_pack_row(const sq_vq *q, uint64_t row, const uint32_t *codes) {
    uint8_t chunk[SQ_CHUNK];
    const int bits = int_bits(q->codec);
    const uint64_t rb = sq_row_bytes(q->cols, bits), cb = (uint64_t)(SQ_CHUNK * bits / 8);
    for (uint64_t i = 0; i < q->cols; i += SQ_CHUNK) {
        for (int k = 0; k < SQ_CHUNK; k++) chunk[k] = i + (uint64_t)k < q->cols ? (uint8_t)codes[i + (uint64_t)k] : 0;
        sq_pack_chunk(bits, chunk, (uint8_t *)q->parts[INT_CODES] + row * rb + (i / SQ_CHUNK) * cb);
    }
}
static const sq_vq_ops int_vq = {.dim = 1, .group_len = vq_group_len, .fit = vq_fit, .quant = vq_quant, .pack_row = vq_pack_row};

/* Layout facts of a stored int tensor, derived once per call. */
typedef struct int_layout {
    int bits, asym, mid;
    uint64_t gs, ng, rb, cb; /* group length, groups per row, row bytes, chunk bytes */
    const uint8_t *codes, *zeros;
} int_layout;

static int_layout int_layout_of(const sq_tview *t) {
    int_layout L;
    L.bits = int_bits(t->codec);
    L.asym = (t->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
    L.mid = 1 << (L.bits - 1);
    L.gs = sq_group_cols(t->params, t->cols);
    L.ng = sq_ngroups(t->params, t->cols);
    L.rb = sq_row_bytes(t->cols, L.bits);
    L.cb = (uint64_t)(SQ_CHUNK * L.bits / 8);
    L.codes = t->part[INT_CODES];
    L.zeros = L.asym ? t->part[INT_ZEROS] : NULL;
    return L;
}

static inline int int_zero(const int_layout *L, uint64_t r, uint64_t g) { return L->asym ? L->zeros[r * L->ng + g] : L->mid; }

static void dec_int(const sq_tview *t, uint64_t r0, uint64_t r1, float *out) {
    const int_layout L = int_layout_of(t);
    const int bits = L.bits;
    const uint64_t cols = t->cols, gs = L.gs, ng = L.ng, rb = L.rb, cb = L.cb;
    for (uint64_t r = r0; r < r1; r++) {
        float *o = out + (r - r0) * cols;
        uint8_t q[SQ_CHUNK];
        for (uint64_t i = 0; i < cols; i += SQ_CHUNK) {
            uint64_t g = i / gs;
            float s = sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[INT_SCALES], r * ng + g);
            int z = int_zero(&L, r, g);
            sq_unpack_chunk(bits, L.codes + r * rb + (i / SQ_CHUNK) * cb, q);
            uint64_t n = cols - i < SQ_CHUNK ? cols - i : SQ_CHUNK;
            for (uint64_t k = 0; k < n; k++) o[i + k] = s * (float)(q[k] - z);
        }
    }
}

static void gemv_int(const sq_tview *t, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const int_layout L = int_layout_of(t);
    const int bits = L.bits;
    const uint64_t cols = t->cols, gs = L.gs, ng = L.ng, rb = L.rb, cb = L.cb;
    for (uint64_t r = r0; r < r1; r++) {
        float total = 0;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            int z = int_zero(&L, r, g);
            float acc = 0;
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                sq_unpack_chunk(bits, L.codes + r * rb + (i / SQ_CHUNK) * cb, q);
                uint64_t n = c1 - i < SQ_CHUNK ? c1 - i : SQ_CHUNK;
                for (uint64_t k = 0; k < n; k++) acc += (float)(q[k] - z) * x[i + k];
            }
            total += sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[INT_SCALES], r * ng + g) * acc;
        }
        y[r] = total;
    }
}

/* Integer-activation GEMV: y = sum_g s_g * sum_{chunk c in g} d_c * (sum_i q_i * xq_i - z * sum_c).
 * Exact integer dots per chunk; float only across chunks and groups. */
static void gemv_q8_int(const sq_tview *t, const sq_act_q8 *x, float *y, uint64_t r0, uint64_t r1) {
    const int_layout L = int_layout_of(t);
    const int bits = L.bits;
    const uint64_t cols = t->cols, gs = L.gs, ng = L.ng, rb = L.rb, cb = L.cb;
    for (uint64_t r = r0; r < r1; r++) {
        float total = 0;
        uint8_t q[SQ_CHUNK];
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            int32_t z = int_zero(&L, r, g);
            float acc = 0;
            for (uint64_t i = c0; i < c1; i += SQ_CHUNK) {
                uint64_t c = i / SQ_CHUNK;
                sq_unpack_chunk(bits, L.codes + r * rb + c * cb, q);
                int32_t dot = 0;
                for (int k = 0; k < SQ_CHUNK; k++) dot += (int32_t)q[k] * x->q[i + (uint64_t)k];
                acc += x->d[c] * (float)(dot - z * x->sum[c]);
            }
            total += sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[INT_SCALES], r * ng + g) * acc;
        }
        y[r] = total;
    }
}

/* Batched integer-activation products (the reference of sq_gemm_q8_fn's
 * order): per row and activation row, one running float sum over the
 * chunks, each chunk's exact integer dot corrected for the zero point, then
 * scaled by (group scale x block scale) in one fmaf. */
void sq_int_gemm_q8_portable(const sq_tview *t, const sq_act_q8 *x, uint32_t T, float *y, uint64_t r0, uint64_t r1) {
    const int_layout L = int_layout_of(t);
    const uint64_t cols = t->cols, nc = sq_nchunks(cols), N = t->rows;
    const uint32_t sdt = t->params[SQ_P_SCALE_DTYPE];
    uint8_t q[SQ_CHUNK];
    for (uint64_t r = r0; r < r1; r++)
        for (uint32_t j = 0; j < T; j++) {
            const sq_act_q8 *a = &x[j];
            float acc = 0;
            for (uint64_t c = 0; c < nc; c++) {
                uint64_t g = c * SQ_CHUNK / L.gs;
                sq_unpack_chunk(L.bits, L.codes + r * L.rb + c * L.cb, q);
                int32_t dot = 0;
                for (int k = 0; k < SQ_CHUNK; k++) dot += (int32_t)q[k] * a->q[c * SQ_CHUNK + (uint64_t)k];
                dot -= int_zero(&L, r, g) * a->sum[c];
                float f = sq_scale_load(sdt, t->part[INT_SCALES], r * L.ng + g) * a->d[c];
                acc = fmaf((float)dot, f, acc);
            }
            y[(uint64_t)j * N + r] = acc;
        }
}

/* squish-bench, 4096x4096 on AMD EPYC (AVX-512): the q8 kernels beat the f32
 * GEMV from groups of 64 up (int4 g64 12.6 vs 12.0 GB/s, g128 19.5 vs 12.8,
 * int8 pc 24.9 vs 21.8) and lose at groups of 32 (int4 7.5 vs 10.1). */
/* Groups of 32 with int8/int4/int2 codes, sym or asym, have kernels of
 * their own that beat the f32 GEMV: with AVX-512 VNNI int_gemv_q8_vnni_g32
 * and int_gemv_q8_vnni_zp, with AVX2 int_gemv_q8_g32_avx2 (256x4096 in L2,
 * CPU time, loaded machine: int4:g32:sym 1.7x, int8:g32:sym 1.4x,
 * int2:g32:asym 1.9x the f32 GEMV's GB/s; the general AVX2 q8 kernel had
 * 0.9x, 1.05x and 1.2x). */
static int int_fast_pays(const sq_tview *t, sq_isa isa) {
    const uint64_t gs = sq_group_cols(t->params, t->cols);
    if (gs >= 64) return 1;
    return gs == SQ_CHUNK && (t->codec->bits == 8 || t->codec->bits == 4 || t->codec->bits == 2) &&
           isa >= SQ_ISA_AVX2;
}

static const sq_codec_encoder int_encoder = {.encode_rows = encode_rows_int, .vq = &int_vq};
static const sq_codec_cpu int_cpu = {
    .decode = {[SQ_ISA_PORTABLE] = dec_int},
    .gemv = {[SQ_ISA_PORTABLE] = gemv_int, [SQ_ISA_AVX2] = sq_int_gemv_avx2, [SQ_ISA_AVX512] = sq_int_gemv_avx512},
    .fast = {[SQ_ISA_PORTABLE] = {SQ_ACT_Q8, .fn.q8 = gemv_q8_int},
             [SQ_ISA_AVX2] = {SQ_ACT_Q8, .fn.q8 = sq_int_gemv_q8_avx2},
             [SQ_ISA_AVX512] = {SQ_ACT_Q8, .fn.q8 = sq_int_gemv_q8_avx512}},
    .fast_pays = int_fast_pays,
    .gemm_q8 = {[SQ_ISA_PORTABLE] = sq_int_gemm_q8_portable, [SQ_ISA_AVX2] = sq_int_gemm_q8_avx2,
                [SQ_ISA_AVX512] = sq_int_gemm_q8_avx512},
};

#define INT_CODEC(VAR, ID, NAME, FLAG, BITS, GROUP)                                                                   \
    const sq_codec VAR = {.id = ID, .name = NAME, .family = SQ_FAMILY_INT, .technique_flag = FLAG, .bits = BITS,      \
                          .default_group = GROUP,                                                                     \
                          .group_ok = SQ_GROUPOK_ROW | SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256, \
                          .opts = SQ_OPT_ASYM | SQ_OPT_SCALE_DTYPE, .layout = layout_int, .enc = &int_encoder,        \
                          .cpu = &int_cpu};
INT_CODEC(sq_codec_int8, SQ_CODEC_INT8, "int8", SQ_FLAG_INT8, 8, SQ_GROUP_ROW)
INT_CODEC(sq_codec_int4, SQ_CODEC_INT4, "int4", SQ_FLAG_INT4, 4, 128)
INT_CODEC(sq_codec_int3, SQ_CODEC_INT3, "int3", SQ_FLAG_INT3, 3, 128)
INT_CODEC(sq_codec_int2, SQ_CODEC_INT2, "int2", SQ_FLAG_INT2, 2, 64)
