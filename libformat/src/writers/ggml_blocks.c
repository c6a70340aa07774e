/* ggml block types for the GGUF export (ggml_blocks.h): sizes, reference
 * quantizers, dequantizers and the exact repacking of integer codes. */
#include "ggml_blocks.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "squish/fp.h"
#include "readers/ggml_decode.h"

#define QK 32

static const struct {
    uint32_t type;
    const char *name;
    uint32_t block_len, block_bytes;
} types[] = {{SQ_GGML_F32, "F32", 1, 4},      {SQ_GGML_F16, "F16", 1, 2},       {SQ_GGML_BF16, "BF16", 1, 2},
             {SQ_GGML_Q8_0, "Q8_0", QK, 34}, {SQ_GGML_Q4_0, "Q4_0", QK, 18}, {SQ_GGML_Q4_1, "Q4_1", QK, 20}};
#define N_TYPES (sizeof types / sizeof types[0])

static int find(uint32_t t) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].type == t) return (int)i;
    return -1;
}

const char *sq_ggml_type_name(uint32_t t) { return find(t) >= 0 ? types[find(t)].name : "?"; }
uint32_t sq_ggml_block_len(uint32_t t) { return find(t) >= 0 ? types[find(t)].block_len : 0; }
uint32_t sq_ggml_block_bytes(uint32_t t) { return find(t) >= 0 ? types[find(t)].block_bytes : 0; }

int sq_ggml_type_parse(const char *s, uint32_t *t) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (!strcasecmp(s, types[i].name)) {
            *t = types[i].type;
            return 0;
        }
    return -1;
}

uint64_t sq_ggml_row_bytes(uint32_t t, uint64_t cols) {
    uint32_t bl = sq_ggml_block_len(t);
    if (!bl || cols % bl) return 0;
    return cols / bl * sq_ggml_block_bytes(t);
}

static void put_half(uint8_t *p, float v) {
    uint16_t h = sq_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static float get_half(const uint8_t *p) { return sq_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

void sq_ggml_quantize_row(uint32_t type, const float *x, uint64_t n, uint8_t *out) {
    switch (type) {
    case SQ_GGML_F32: memcpy(out, x, (size_t)n * 4); return;
    case SQ_GGML_F16:
        for (uint64_t i = 0; i < n; i++) put_half(out + 2 * i, x[i]);
        return;
    case SQ_GGML_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t b = sq_f32_to_bf16(x[i]);
            out[2 * i] = (uint8_t)b;
            out[2 * i + 1] = (uint8_t)(b >> 8);
        }
        return;
    }
    for (uint64_t b = 0; b < n / QK; b++) {
        const float *v = x + b * QK;
        if (type == SQ_GGML_Q8_0) {
            uint8_t *o = out + b * 34;
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(v[j]));
            const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            put_half(o, d);
            for (int j = 0; j < QK; j++) o[2 + j] = (uint8_t)(int8_t)roundf(v[j] * id);
        } else if (type == SQ_GGML_Q4_0) {
            uint8_t *o = out + b * 18;
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++)
                if (fabsf(v[j]) > amax) amax = fabsf(v[j]), max = v[j];
            const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
            put_half(o, d);
            for (int j = 0; j < QK / 2; j++) {
                int a = (int)(int8_t)(v[j] * id + 8.5f), c = (int)(int8_t)(v[j + 16] * id + 8.5f);
                o[2 + j] = (uint8_t)((a < 15 ? a : 15) | (c < 15 ? c : 15) << 4);
            }
        } else { /* Q4_1 */
            uint8_t *o = out + b * 20;
            float mn = v[0], mx = v[0];
            for (int j = 1; j < QK; j++) mn = fminf(mn, v[j]), mx = fmaxf(mx, v[j]);
            const float d = (mx - mn) / 15.0f, id = d != 0 ? 1.0f / d : 0.0f;
            put_half(o, d);
            put_half(o + 2, mn);
            for (int j = 0; j < QK / 2; j++) {
                int a = (int)(int8_t)((v[j] - mn) * id + 0.5f), c = (int)(int8_t)((v[j + 16] - mn) * id + 0.5f);
                o[4 + j] = (uint8_t)((a < 15 ? a : 15) | (c < 15 ? c : 15) << 4);
            }
        }
    }
}

void sq_ggml_dequantize_row(uint32_t type, const uint8_t *in, uint64_t n, float *out) {
    switch (type) {
    case SQ_GGML_F32: memcpy(out, in, (size_t)n * 4); return;
    case SQ_GGML_F16:
        for (uint64_t i = 0; i < n; i++) out[i] = get_half(in + 2 * i);
        return;
    case SQ_GGML_BF16:
        for (uint64_t i = 0; i < n; i++) out[i] = sq_bf16_to_f32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
        return;
    }
    /* Q8_0, Q4_0, Q4_1: the import's block decoders (one definition of each layout) */
    const sq_ggml_qtype *t = sq_ggml_qtype_find(type);
    sq_ggml_qtype_decode(t, in, n / t->block_elems, out);
}

/* ---- integer codes (codecs.md §3, §4) ---- */

/* The 32 codes of a chunk of `bits`-bit codes (codecs.md §3 table). */
static void unpack_chunk(int bits, const uint8_t *c, uint8_t q[QK]) {
    for (int j = 0; j < QK; j++) {
        switch (bits) {
        case 8: q[j] = c[j]; break;
        case 4: q[j] = (uint8_t)(j < 16 ? c[j] & 15 : c[j - 16] >> 4); break;
        case 3: {
            uint32_t hi = (uint32_t)c[8] | (uint32_t)c[9] << 8 | (uint32_t)c[10] << 16 | (uint32_t)c[11] << 24;
            q[j] = (uint8_t)(((c[j % 8] >> (2 * (j / 8))) & 3) | ((hi >> j) & 1) << 2);
            break;
        }
        default: q[j] = (uint8_t)((c[j % 8] >> (2 * (j / 8))) & 3); break;
        }
    }
}

static float scale_at(uint32_t dtype, const void *scales, uint64_t i) {
    if (dtype == SQ_DT_F32) {
        float f;
        memcpy(&f, (const uint8_t *)scales + 4 * i, 4);
        return f;
    }
    const uint8_t *p = (const uint8_t *)scales + 2 * i;
    uint16_t h = (uint16_t)(p[0] | p[1] << 8);
    return dtype == SQ_DT_F16 ? sq_f16_to_f32(h) : sq_bf16_to_f32(h);
}

/* 1 when v is exactly a binary16 value (finite). */
static int is_half(float v) { return isfinite(v) && sq_f16_to_f32(sq_f32_to_f16(v)) == v; }

sq_ggml_map sq_ggml_from_int(const sq_tview *v, uint32_t type, int allow_rounded, uint8_t *out, char *why,
                             size_t why_cap) {
    const int bits = sq_int_bits(v->codec);
    const uint64_t rows = v->rows, cols = v->cols;
    const uint32_t G = v->params[SQ_P_GROUP], sdt = v->params[SQ_P_SCALE_DTYPE];
    const int asym = (v->params[SQ_P_FLAGS] & SQ_PF_ASYM) != 0;
#define NO(...) (snprintf(why, why_cap, __VA_ARGS__), SQ_GGML_NO)
    if (!bits) return NO("codec %s has no integer codes", v->codec->name);
    if (sq_tview_has_xform(v)) return NO("its columns or rows are transformed (perm/in_scale/Hadamard links)");
    if (type != SQ_GGML_Q8_0 && type != SQ_GGML_Q4_0 && type != SQ_GGML_Q4_1)
        return NO("%s is not a block type", sq_ggml_type_name(type));
    if (cols % QK) return NO("%llu columns are not whole blocks of 32", (unsigned long long)cols);
    if (G != 0 && G % QK) return NO("groups of %u do not hold whole blocks of 32", G);
    if (type == SQ_GGML_Q4_1 && bits > 4) return NO("%d-bit codes do not fit Q4_1's 4 bits", bits);
    const uint64_t gs = sq_codec_group_len(v->params, cols), ng = (cols + gs - 1) / gs;
    const uint64_t chunk = (uint64_t)QK * (uint64_t)bits / 8, row_codes = cols / QK * chunk;
    const uint8_t *codes = sq_tview_part(v, "codes"), *zeros = asym ? sq_tview_part(v, "zeros") : NULL;
    const void *scales = sq_tview_part(v, "scales");
    const uint32_t bb = sq_ggml_block_bytes(type);
    sq_ggml_map res = SQ_GGML_EXACT;
    uint8_t q[QK];
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t k = 0; k < cols / QK; k++) {
            const uint64_t g = r * ng + k * QK / gs;
            const float s = scale_at(sdt, scales, g);
            const int z = asym ? zeros[g] : 1 << (bits - 1);
            if (!is_half(s)) return NO("the scale %g of row %llu, block %llu is not a half (binary16) value", (double)s,
                                       (unsigned long long)r, (unsigned long long)k);
            unpack_chunk(bits, codes + r * row_codes + k * chunk, q);
            uint8_t *o = out ? out + (r * (cols / QK) + k) * bb : NULL;
            if (o) put_half(o, s);
            if (type == SQ_GGML_Q8_0) {
                for (int j = 0; j < QK; j++) {
                    int n = q[j] - z;
                    if (n < -128 || n > 127)
                        return NO("code - zero = %d at row %llu, block %llu is outside Q8_0's -128..127", n,
                                  (unsigned long long)r, (unsigned long long)k);
                    if (o) o[2 + j] = (uint8_t)(int8_t)n;
                }
            } else if (type == SQ_GGML_Q4_0) {
                int n[QK];
                for (int j = 0; j < QK; j++) {
                    n[j] = q[j] - z + 8;
                    if (n[j] < 0 || n[j] > 15)
                        return NO("code - zero + 8 = %d at row %llu, block %llu is outside Q4_0's 0..15", n[j],
                                  (unsigned long long)r, (unsigned long long)k);
                }
                for (int j = 0; o && j < QK / 2; j++) o[2 + j] = (uint8_t)(n[j] | n[j + 16] << 4);
            } else {
                /* z·s is exact in float (11 + 4 significant bits); it must also be a half */
                const float m = -(float)z * s;
                if (!is_half(m)) {
                    if (!allow_rounded)
                        return NO("the minimum -zero*scale = %.9g (zero %d) at row %llu, block %llu is not a half "
                                  "(binary16) value",
                                  (double)m, z, (unsigned long long)r, (unsigned long long)k);
                    res = SQ_GGML_ROUNDED;
                }
                if (o) {
                    put_half(o + 2, m);
                    for (int j = 0; j < QK / 2; j++) o[4 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
                }
            }
        }
#undef NO
    return res;
}
