/* Decoders of ggml's quantized block types (docs/gguf-import.md gives the
 * layouts). Each writes one block's values in element order. Scales are
 * multiplied out first (exact: an f16 times an integer of at most 8 bits
 * fits f32's 24-bit significand), so every value rounds at most once. */
#include "readers/ggml_decode.h"

#include "common/bytes.h"
#include "squish/fp.h"

static float f16(const uint8_t *p) { return sq_f16_to_f32(get16(p)); }

/* 4-bit codes of a 32-value group: value j in the low nibble of byte j,
 * value j + 16 in the high nibble. */
static int nib(const uint8_t *qs, int j) { return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4; }

/* Q4_0: f16 d, 16 bytes of codes; d * (q - 8). */
static void dq_q4_0(const uint8_t *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(nib(b + 2, j) - 8);
}

/* Q4_1: f16 d, f16 m, 16 bytes of codes; d * q + m. */
static void dq_q4_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)nib(b + 4, j) + m;
}

/* Q5_0: f16 d, u32 of fifth bits (bit j for value j), 16 bytes of low nibbles; d * (q - 16). */
static void dq_q5_0(const uint8_t *b, float *y) {
    float d = f16(b);
    uint32_t qh = get32(b + 2);
    for (int j = 0; j < 32; j++) y[j] = d * (float)((nib(b + 6, j) | (int)((qh >> j) & 1) << 4) - 16);
}

/* Q5_1: f16 d, f16 m, u32 of fifth bits, 16 bytes of low nibbles; d * q + m. */
static void dq_q5_1(const uint8_t *b, float *y) {
    float d = f16(b), m = f16(b + 2);
    uint32_t qh = get32(b + 4);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(nib(b + 8, j) | (int)((qh >> j) & 1) << 4) + m;
}

/* Q8_0: f16 d, 32 int8 codes; d * q. */
static void dq_q8_0(const uint8_t *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

/* Q2_K: 16 bytes of (scale | min << 4) per 16 values, 64 bytes of 2-bit
 * codes, f16 d, f16 dmin. Value e = 128h + 32s + l has code
 * (qs[32h + l] >> 2s) & 3 and sub-block e / 16; d*sc*q - dmin*m. */
static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = f16(b + 80), dmin = f16(b + 82);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e / 32) % 4, l = e % 32, k = e / 16;
        float dl = d * (float)(sc[k] & 15), ml = dmin * (float)(sc[k] >> 4);
        y[e] = dl * (float)((qs[32 * h + l] >> (2 * s)) & 3) - ml;
    }
}

/* Q3_K's sixteen 6-bit scales in 12 bytes: low nibbles of bytes 0-7 are
 * scales 0-7, their high nibbles scales 8-15; bytes 8-11 hold the top two
 * bits, scale i in bits 2(i/4) of byte 8 + i%4. Stored with a bias of 32. */
static int q3k_scale(const uint8_t *s, int i) {
    int lo = i < 8 ? s[i] & 15 : s[i - 8] >> 4, hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* Q3_K: 32 bytes of high bits, 64 bytes of 2-bit codes, 12 bytes of
 * scales, f16 d. Value e = 128h + 32s + l: low bits (qs[32h + l] >> 2s) & 3,
 * high bit (hmask[l] >> (4h + s)) & 1; q = low + 4*high - 4; d * scale * q. */
static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float d = f16(b + 108);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e / 32) % 4, l = e % 32;
        int q = ((qs[32 * h + l] >> (2 * s)) & 3) + 4 * ((hm[l] >> (4 * h + s)) & 1) - 4;
        y[e] = d * (float)q3k_scale(sc, e / 16) * (float)q;
    }
}

/* Q4_K/Q5_K's eight 6-bit (scale, min) pairs in 12 bytes: pairs 0-3 in the
 * low six bits of bytes 0-3 (scales) and 4-7 (mins); pairs 4-7 take their
 * low four bits from the nibbles of bytes 8-11 (scale low, min high) and
 * their top two from bits 6-7 of bytes 0-3 (scales) and 4-7 (mins). */
static void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of codes. Value
 * e = 64c + 32u + l (sub-block 2c + u) is nibble u of qs[32c + l]; d*sc*q - dmin*m. */
static void dq_q4_k(const uint8_t *b, float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *qs = b + 16;
    for (int sb = 0; sb < 8; sb++) {
        int sc, m;
        k_scale_min(b + 4, sb, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        for (int l = 0; l < 32; l++) y[32 * sb + l] = dl * (float)((qs[32 * (sb / 2) + l] >> (4 * (sb % 2))) & 15) - ml;
    }
}

/* Q5_K: as Q4_K with 32 bytes of fifth bits after the scales: value
 * 32sb + l takes bit sb of qh[l]. */
static void dq_q5_k(const uint8_t *b, float *y) {
    float d = f16(b), dmin = f16(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int sb = 0; sb < 8; sb++) {
        int sc, m;
        k_scale_min(b + 4, sb, &sc, &m);
        float dl = d * (float)sc, ml = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            int q = ((qs[32 * (sb / 2) + l] >> (4 * (sb % 2))) & 15) | ((qh[l] >> sb) & 1) << 4;
            y[32 * sb + l] = dl * (float)q - ml;
        }
    }
}

/* Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 int8
 * scales (one per 16 values), f16 d. Value e = 128h + 32s + l: low nibble
 * from ql[64h + 32(s%2) + l] (low half for s < 2, high for s >= 2), high
 * pair (qh[32h + l] >> 2s) & 3; d * scale * (q - 32). */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16(b + 208);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e / 32) % 4, l = e % 32;
        int lo = (ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 15, hi = (qh[32 * h + l] >> (2 * s)) & 3;
        y[e] = d * (float)sc[e / 16] * (float)((lo | hi << 4) - 32);
    }
}

/* IQ4_NL/IQ4_XS: 4-bit indices into this non-uniform grid (the published
 * table of the format). */
static const int8_t iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* IQ4_NL: f16 d, 16 bytes of indices (Q4_0's nibble order); d * grid[q]. */
static void dq_iq4_nl(const uint8_t *b, float *y) {
    float d = f16(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)iq4_grid[nib(b + 2, j)];
}

/* IQ4_XS: f16 d, u16 of high scale bit pairs, 4 bytes of low scale nibbles,
 * 128 bytes of indices (16 per 32 values). Sub-block sb's scale is nibble
 * sb%2 of scales_l[sb/2] | bits 2sb..2sb+1 of scales_h << 4, biased by 32;
 * d * (scale - 32) * grid[q]. */
static void dq_iq4_xs(const uint8_t *b, float *y) {
    float d = f16(b);
    uint32_t sh = get16(b + 2);
    const uint8_t *sl = b + 4, *qs = b + 8;
    for (int sb = 0; sb < 8; sb++) {
        int ls = ((sl[sb / 2] >> (4 * (sb % 2))) & 15) | (int)((sh >> (2 * sb)) & 3) << 4;
        float dl = d * (float)(ls - 32);
        for (int j = 0; j < 32; j++) y[32 * sb + j] = dl * (float)iq4_grid[nib(qs + 16 * sb, j)];
    }
}

static const sq_ggml_qtype TYPES[] = {
    {2, "Q4_0", 32, 18, dq_q4_0},      {3, "Q4_1", 32, 20, dq_q4_1},      {6, "Q5_0", 32, 22, dq_q5_0},
    {7, "Q5_1", 32, 24, dq_q5_1},      {8, "Q8_0", 32, 34, dq_q8_0},      {10, "Q2_K", 256, 84, dq_q2_k},
    {11, "Q3_K", 256, 110, dq_q3_k},   {12, "Q4_K", 256, 144, dq_q4_k},   {13, "Q5_K", 256, 176, dq_q5_k},
    {14, "Q6_K", 256, 210, dq_q6_k},   {20, "IQ4_NL", 32, 18, dq_iq4_nl}, {23, "IQ4_XS", 256, 136, dq_iq4_xs}};

const sq_ggml_qtype *sq_ggml_qtype_find(uint32_t id) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].id == id) return &TYPES[i];
    return NULL;
}

const char *sq_ggml_qtype_name(uint32_t t) {
    static const char *const names[] = {
        "F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
        "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
        "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

void sq_ggml_qtype_decode(const sq_ggml_qtype *t, const uint8_t *src, uint64_t n_blocks, float *out) {
    for (uint64_t i = 0; i < n_blocks; i++) t->decode(src + i * t->block_bytes, out + i * t->block_elems);
}
