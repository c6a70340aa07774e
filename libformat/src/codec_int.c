/* Integer codecs int8/int4/int3/int2, symmetric or affine, in groups along
 * the input dimension. Parts: codes u8 [rows, chunks*4*bits], scales
 * [rows, groups], zeros u8 [rows, groups] (asym only).
 *   sym:  w = s * (q - 2^(b-1)),  s = m / -2^(b-1), m the value of largest |w|
 *   asym: w = s * (q - z),  s = (max(w,0) - min(w,0)) / (2^b - 1) */
#include <math.h>
#include <stdlib.h>

#include "codecs.h"

static int int_bits(const sq_codec *c) {
    switch (c->id) {
    case SQ_CODEC_INT8: return 8;
    case SQ_CODEC_INT4: return 4;
    case SQ_CODEC_INT3: return 3;
    default: return 2;
    }
}

#define INT_LAYOUT(BITS)                                                                           \
    static int layout_int##BITS(const uint32_t *p, uint64_t rows, uint64_t cols, sq_part_spec *o) { \
        uint64_t ng = sq_ngroups(p, cols);                                                         \
        o[0] = (sq_part_spec){"codes", SQ_DT_U8, 2, {rows, sq_row_bytes(cols, BITS)}, 0};          \
        o[1] = (sq_part_spec){"scales", p[SQ_P_SCALE_DTYPE], 2, {rows, ng}, 0};                    \
        if (!(p[SQ_P_FLAGS] & SQ_PF_ASYM)) return 2;                                               \
        o[2] = (sq_part_spec){"zeros", SQ_DT_U8, 2, {rows, ng}, 0};                                \
        return 3;                                                                                  \
    }
INT_LAYOUT(8)
INT_LAYOUT(4)
INT_LAYOUT(3)
INT_LAYOUT(2)

static inline float clampq(float v, float maxq) { return v < 0 ? 0 : v > maxq ? maxq : v; }

int sq_int_bits(const sq_codec *c) {
    return c->id >= SQ_CODEC_INT8 && c->id <= SQ_CODEC_INT2 ? int_bits(c) : 0;
}

void sq_int_fit(const sq_codec *c, const uint32_t *p, const float *v, uint64_t n, float *scale, int *zero) {
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

int sq_int_quant(const sq_codec *c, float v, float s, int z) {
    const float maxq = (float)((1 << int_bits(c)) - 1);
    return (int)(s != 0 ? clampq(sq_rne(v / s) + (float)z, maxq) : (float)z);
}

void sq_int_store(const sq_codec *c, const uint32_t *p, uint64_t cols, void *const *parts, uint64_t r, uint64_t g,
                  float s, int z) {
    const uint64_t ng = sq_ngroups(p, cols);
    sq_scale_store(p[SQ_P_SCALE_DTYPE], parts[1], r * ng + g, s);
    if (p[SQ_P_FLAGS] & SQ_PF_ASYM) ((uint8_t *)parts[2])[r * ng + g] = (uint8_t)z;
    (void)c;
}

void sq_int_pack_row(const sq_codec *c, const uint8_t *q, uint64_t cols, void *const *parts, uint64_t r) {
    const int bits = int_bits(c);
    const uint64_t rb = sq_row_bytes(cols, bits);
    uint8_t chunk[SQ_CHUNK];
    for (uint64_t i = 0; i < cols; i += SQ_CHUNK) {
        for (int k = 0; k < SQ_CHUNK; k++) chunk[k] = i + (uint64_t)k < cols ? q[i + (uint64_t)k] : 0;
        sq_pack_chunk(bits, chunk, (uint8_t *)parts[0] + r * rb + (i / SQ_CHUNK) * (uint64_t)(SQ_CHUNK * bits / 8));
    }
}

/* RTN: each group fitted and rounded on its own (sq_int_fit/sq_int_quant),
 * the same arithmetic GPTQ uses column by column. */
static void encode_rows_bits(const sq_codec *c, const uint32_t *p, const float *w, uint64_t cols, uint64_t r0,
                             uint64_t r1, void *const *parts) {
    const uint64_t gs = sq_group_cols(p, cols), ng = sq_ngroups(p, cols);
    uint8_t *q = malloc(cols);
    if (!q) abort(); /* one row of bytes */
    for (uint64_t r = r0; r < r1; r++) {
        const float *row = w + r * cols;
        for (uint64_t g = 0; g < ng; g++) {
            uint64_t c0 = g * gs, c1 = c0 + gs < cols ? c0 + gs : cols;
            float s;
            int z;
            sq_int_fit(c, p, row + c0, c1 - c0, &s, &z);
            sq_int_store(c, p, cols, parts, r, g, s, z);
            for (uint64_t i = c0; i < c1; i++) q[i] = (uint8_t)sq_int_quant(c, row[i], s, z);
        }
        sq_int_pack_row(c, q, cols, parts, r);
    }
    free(q);
}

#define INT_ENCODE(BITS)                                                                                   \
    static void enc_int##BITS(const uint32_t *p, const float *w, uint64_t rows, uint64_t cols, uint64_t r0, \
                              uint64_t r1, void *const *parts) {                                           \
        (void)rows;                                                                                        \
        encode_rows_bits(&sq_codec_int##BITS, p, w, cols, r0, r1, parts);                                  \
    }
INT_ENCODE(8)
INT_ENCODE(4)
INT_ENCODE(3)
INT_ENCODE(2)

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
    L.codes = t->part[0];
    L.zeros = L.asym ? t->part[2] : NULL;
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
            float s = sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[1], r * ng + g);
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
            total += sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[1], r * ng + g) * acc;
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
            total += sq_scale_load(t->params[SQ_P_SCALE_DTYPE], t->part[1], r * ng + g) * acc;
        }
        y[r] = total;
    }
}

#define GROUPS_INT (SQ_GROUPOK_ROW | SQ_GROUPOK_32 | SQ_GROUPOK_64 | SQ_GROUPOK_128 | SQ_GROUPOK_256)
const sq_codec sq_codec_int8 = {SQ_CODEC_INT8, "int8", SQ_FLAG_INT8, 0, SQ_GROUP_ROW, GROUPS_INT, layout_int8, NULL,
                                enc_int8, NULL, {dec_int, NULL, NULL}, {gemv_int, sq_int_gemv_avx2, sq_int_gemv_avx512},
                                {gemv_q8_int, sq_int_gemv_q8_avx2, sq_int_gemv_q8_avx512}};
const sq_codec sq_codec_int4 = {SQ_CODEC_INT4, "int4", SQ_FLAG_INT4, 0, 128, GROUPS_INT, layout_int4, NULL,
                                enc_int4, NULL, {dec_int, NULL, NULL}, {gemv_int, sq_int_gemv_avx2, sq_int_gemv_avx512},
                                {gemv_q8_int, sq_int_gemv_q8_avx2, sq_int_gemv_q8_avx512}};
const sq_codec sq_codec_int3 = {SQ_CODEC_INT3, "int3", SQ_FLAG_INT3, 0, 128, GROUPS_INT, layout_int3, NULL,
                                enc_int3, NULL, {dec_int, NULL, NULL}, {gemv_int, sq_int_gemv_avx2, sq_int_gemv_avx512},
                                {gemv_q8_int, sq_int_gemv_q8_avx2, sq_int_gemv_q8_avx512}};
const sq_codec sq_codec_int2 = {SQ_CODEC_INT2, "int2", SQ_FLAG_INT2, 0, 64, GROUPS_INT, layout_int2, NULL,
                                enc_int2, NULL, {dec_int, NULL, NULL}, {gemv_int, sq_int_gemv_avx2, sq_int_gemv_avx512},
                                {gemv_q8_int, sq_int_gemv_q8_avx2, sq_int_gemv_q8_avx512}};
