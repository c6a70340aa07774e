/* AQLM decode, validation and lookup-table GEMV (see aqlm_decode.h). */
#include "aqlm_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "squish/codec.h" /* sq_isa */
#include "squish/fp.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define AQLM_AVX2 __attribute__((target("avx2")))
/* The portable table loop with 8 codewords per instruction: multiply, then
 * add (no fused multiply-add), so the same bits as the portable code. */
AQLM_AVX2 static void table_avx2(const float *cbT, uint64_t MK, const float *xs, float *t) {
    uint64_t k = 0;
    const __m256 x0 = _mm256_set1_ps(xs[0]);
    for (; k + 8 <= MK; k += 8) {
        __m256 a = _mm256_mul_ps(_mm256_loadu_ps(cbT + k), x0);
        for (int q = 1; q < SQ_AQLM_G; q++)
            a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(cbT + q * MK + k), _mm256_set1_ps(xs[q])));
        _mm256_storeu_ps(t + k, a);
    }
    for (; k < MK; k++) {
        float a = cbT[k] * xs[0];
        for (int q = 1; q < SQ_AQLM_G; q++) a += cbT[q * MK + k] * xs[q];
        t[k] = a;
    }
}
#endif

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

uint64_t sq_aqlm_codes_bytes(uint64_t rows, uint64_t cols, uint32_t M, uint32_t B) {
    return (rows * sq_aqlm_groups(cols) * M * B + 7) / 8;
}

uint64_t sq_aqlm_codebooks_bytes(uint32_t M, uint32_t B) { return (uint64_t)M * ((uint64_t)1 << B) * SQ_AQLM_G * 2; }

uint32_t sq_aqlm_code_at(const uint8_t *codes, uint64_t i, uint32_t B) {
    if (B == 8) return codes[i];
    if (B == 16) return le16(codes + 2 * i);
    uint64_t bit = i * B, byte = bit >> 3;
    unsigned sh = (unsigned)(bit & 7), need = (sh + B + 7) / 8; /* 1..3 bytes */
    uint32_t v = 0;
    for (unsigned k = 0; k < need; k++) v |= (uint32_t)codes[byte + k] << (8 * k);
    return (v >> sh) & ((1u << B) - 1);
}

sq_status sq_aqlm_validate(const sq_aqlm_view *v, const char *label, sq_err *err) {
    if (!label) label = "aqlm tensor";
    if (v->M < 1 || v->M > SQ_AQLM_MAX_M || v->B < 1 || v->B > SQ_AQLM_MAX_B)
        return sq_err_set(err, SQ_EUSAGE, "%s: %u codebooks of %u bits: need 1..%d codebooks of 1..%d bits", label, v->M,
                          v->B, SQ_AQLM_MAX_M, SQ_AQLM_MAX_B);
    if (v->rows == 0 || v->cols == 0)
        return sq_err_set(err, SQ_EUSAGE, "%s: shape %llu x %llu is empty", label, (unsigned long long)v->rows,
                          (unsigned long long)v->cols);
    if (v->rows > ((uint64_t)1 << 40) / v->cols)
        return sq_err_set(err, SQ_EUSAGE, "%s: shape %llu x %llu is too large", label, (unsigned long long)v->rows,
                          (unsigned long long)v->cols);
    uint64_t cb = sq_aqlm_codes_bytes(v->rows, v->cols, v->M, v->B), kb = sq_aqlm_codebooks_bytes(v->M, v->B),
             sb = sq_aqlm_scales_bytes(v->rows);
    if (!v->codes || v->codes_bytes != cb)
        return sq_err_set(err, SQ_ECORRUPT, "%s: part codes has %llu bytes, %llu x %llu at %ux%u needs %llu", label,
                          (unsigned long long)v->codes_bytes, (unsigned long long)v->rows, (unsigned long long)v->cols,
                          v->M, v->B, (unsigned long long)cb);
    if (!v->codebooks || v->codebooks_bytes != kb)
        return sq_err_set(err, SQ_ECORRUPT,
                          "%s: part codebooks has %llu bytes, %u codebooks of 2^%u vectors of %d f16 need %llu", label,
                          (unsigned long long)v->codebooks_bytes, v->M, v->B, SQ_AQLM_G, (unsigned long long)kb);
    if (!v->scales || v->scales_bytes != sb)
        return sq_err_set(err, SQ_ECORRUPT, "%s: part scales has %llu bytes, %llu rows need %llu", label,
                          (unsigned long long)v->scales_bytes, (unsigned long long)v->rows, (unsigned long long)sb);
    uint64_t nbits = v->rows * sq_aqlm_groups(v->cols) * v->M * v->B;
    if (nbits % 8 && (v->codes[cb - 1] >> (nbits % 8)))
        return sq_err_set(err, SQ_ECORRUPT, "%s: part codes has non-zero padding bits in its last byte", label);
    for (uint64_t i = 0; i < kb / 2; i++) {
        uint16_t h = le16(v->codebooks + 2 * i);
        if ((h & 0x7c00) == 0x7c00)
            return sq_err_set(err, SQ_ECORRUPT, "%s: part codebooks: codebook %llu, entry %llu, element %llu is %s", label,
                              (unsigned long long)(i / ((uint64_t)SQ_AQLM_G << v->B)),
                              (unsigned long long)(i / SQ_AQLM_G % ((uint64_t)1 << v->B)),
                              (unsigned long long)(i % SQ_AQLM_G), (h & 0x3ff) ? "NaN" : "infinite");
    }
    for (uint64_t r = 0; r < v->rows; r++) {
        uint16_t h = le16(v->scales + 2 * r);
        if ((h & 0x7c00) == 0x7c00)
            return sq_err_set(err, SQ_ECORRUPT, "%s: part scales: the scale of row %llu is %s", label, (unsigned long long)r,
                              (h & 0x3ff) ? "NaN" : "infinite");
    }
    return SQ_OK;
}

void sq_aqlm_decode_rows(const sq_aqlm_view *v, uint64_t r0, uint64_t r1, float *out) {
    const uint64_t G = sq_aqlm_groups(v->cols), K = (uint64_t)1 << v->B;
    for (uint64_t o = r0; o < r1; o++) {
        float s = sq_f16_to_f32(le16(v->scales + 2 * o));
        float *dst = out + (o - r0) * v->cols;
        for (uint64_t j = 0; j < G; j++) {
            float acc[SQ_AQLM_G] = {0}; /* set below (M >= 1); zeroed for -O3's flow analysis */
            for (uint32_t m = 0; m < v->M; m++) {
                uint64_t c = sq_aqlm_code_at(v->codes, (o * G + j) * v->M + m, v->B);
                const uint8_t *e = v->codebooks + ((m * K + c) * SQ_AQLM_G) * 2;
                for (int t = 0; t < SQ_AQLM_G; t++) {
                    float x = sq_f16_to_f32(le16(e + 2 * t));
                    acc[t] = m ? acc[t] + x : x;
                }
            }
            uint64_t n = v->cols - j * SQ_AQLM_G < SQ_AQLM_G ? v->cols - j * SQ_AQLM_G : SQ_AQLM_G; /* last group may be partial */
            for (uint64_t t = 0; t < n; t++) dst[j * SQ_AQLM_G + t] = s * acc[t];
        }
    }
}

/* ---------------- GEMV ----------------
 * No heap: the tables live on the stack in blocks of at most TAB_FLOATS
 * floats, the transposed codebooks too when they fit in CBT_FLOATS, and y
 * itself accumulates the rows' sums across blocks. Every path computes,
 * for each row, exactly
 *     d(j, m) = ((c_0 x_0 + c_1 x_1) + c_2 x_2) + ... + c_7 x_7   (c = C_m[code(o,j,m)], in float)
 *     acc = 0; acc += d(j, m) for j ascending, m ascending;  y = scale * acc
 * whether d comes from a table or is computed in place, so the path, the
 * ISA, the row range and the thread count never change the bits. */
#define TAB_FLOATS 8192 /* 32 KiB of tables per block */
#define CBT_FLOATS 4096 /* 16 KiB: M·2^B·8 floats, e.g. 2x8 */

/* x of group j, zero-padded past cols. */
static inline void group_x(const float *x, uint64_t cols, uint64_t j, float xs[SQ_AQLM_G]) {
    for (uint64_t t = 0; t < SQ_AQLM_G; t++) xs[t] = j * SQ_AQLM_G + t < cols ? x[j * SQ_AQLM_G + t] : 0.0f;
}

/* Table of one group from f32 transposed codebooks cbT[8][MK]. */
static void table_portable(const float *cbT, uint64_t MK, const float *xs, float *t) {
    for (uint64_t k = 0; k < MK; k++) t[k] = cbT[k] * xs[0];
    for (int q = 1; q < SQ_AQLM_G; q++) {
        const float *e = cbT + q * MK, xq = xs[q];
        for (uint64_t k = 0; k < MK; k++) t[k] += e[k] * xq;
    }
}

/* d for one codeword straight from the f16 codebooks. */
static inline float word_dot(const uint8_t *e, const float *xs) {
    float d = sq_f16_to_f32(le16(e)) * xs[0];
    for (int q = 1; q < SQ_AQLM_G; q++) d += sq_f16_to_f32(le16(e + 2 * q)) * xs[q];
    return d;
}

/* acc[o - r0] += Σ table lookups for groups [j0, j1) (T: their tables). */
static void lookup_rows(const sq_aqlm_view *v, const float *T, uint64_t MK, uint64_t j0, uint64_t j1, uint64_t r0,
                        uint64_t r1, float *acc) {
    const uint64_t G = sq_aqlm_groups(v->cols), K = (uint64_t)1 << v->B;
    const uint32_t M = v->M;
    uint64_t o = r0;
    if (v->B == 8) /* four rows at a time: independent add chains, each row's sum in the same order */
        for (; o + 4 <= r1; o += 4) {
            float a0 = acc[o - r0], a1 = acc[o - r0 + 1], a2 = acc[o - r0 + 2], a3 = acc[o - r0 + 3];
            const uint64_t rs = G * M; /* codes per row */
            const uint8_t *c = v->codes + (o * G + j0) * M;
            for (uint64_t j = j0; j < j1; j++, c += M) {
                const float *t = T + (j - j0) * MK;
                for (uint32_t m = 0; m < M; m++, t += K) {
                    a0 += t[c[m]];
                    a1 += t[c[rs + m]];
                    a2 += t[c[2 * rs + m]];
                    a3 += t[c[3 * rs + m]];
                }
            }
            acc[o - r0] = a0;
            acc[o - r0 + 1] = a1;
            acc[o - r0 + 2] = a2;
            acc[o - r0 + 3] = a3;
        }
    for (; o < r1; o++) {
        float a = acc[o - r0];
        uint64_t base = (o * G + j0) * M;
        for (uint64_t j = j0; j < j1; j++) {
            const float *t = T + (j - j0) * MK;
            for (uint32_t m = 0; m < M; m++, base++) a += t[m * K + sq_aqlm_code_at(v->codes, base, v->B)];
        }
        acc[o - r0] = a;
    }
}

void sq_aqlm_gemv_rows(int isa, const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1) {
    const uint64_t G = sq_aqlm_groups(v->cols), K = (uint64_t)1 << v->B, MK = v->M * K;
    for (uint64_t o = r0; o < r1; o++) y[o - r0] = 0;
    /* tables pay when the rows' lookups outnumber the table entries they need */
    if (MK <= TAB_FLOATS && (r1 - r0) * v->M * 2 >= MK) {
        float T[TAB_FLOATS], cbT[CBT_FLOATS];
        const int have_cbT = MK * SQ_AQLM_G <= CBT_FLOATS;
        if (have_cbT) /* codebooks transposed ([8][M·K]) so a table is 8 passes over contiguous rows */
            for (uint64_t k = 0; k < MK; k++)
                for (int q = 0; q < SQ_AQLM_G; q++)
                    cbT[q * MK + k] = sq_f16_to_f32(le16(v->codebooks + 2 * (k * SQ_AQLM_G + q)));
        const uint64_t gb = TAB_FLOATS / MK;
        for (uint64_t j0 = 0; j0 < G; j0 += gb) {
            uint64_t j1 = j0 + gb < G ? j0 + gb : G;
            for (uint64_t j = j0; j < j1; j++) {
                float xs[SQ_AQLM_G];
                group_x(x, v->cols, j, xs);
                float *t = T + (j - j0) * MK;
                if (!have_cbT) {
                    for (uint64_t k = 0; k < MK; k++) t[k] = word_dot(v->codebooks + 2 * k * SQ_AQLM_G, xs);
                    continue;
                }
#if defined(__x86_64__)
                if (isa >= SQ_ISA_AVX2 && sq_isa_supported(SQ_ISA_AVX2)) {
                    table_avx2(cbT, MK, xs, t);
                    continue;
                }
#endif
                (void)isa;
                table_portable(cbT, MK, xs, t);
            }
            lookup_rows(v, T, MK, j0, j1, r0, r1, y);
        }
    } else { /* few rows or huge codebooks (1x16): each codeword's dot in place */
        for (uint64_t o = r0; o < r1; o++) {
            float a = 0;
            uint64_t base = o * G * v->M;
            for (uint64_t j = 0; j < G; j++) {
                float xs[SQ_AQLM_G];
                group_x(x, v->cols, j, xs);
                for (uint32_t m = 0; m < v->M; m++, base++) {
                    uint64_t c = sq_aqlm_code_at(v->codes, base, v->B);
                    a += word_dot(v->codebooks + 2 * ((m * K + c) * SQ_AQLM_G), xs);
                }
            }
            y[o - r0] = a;
        }
    }
    for (uint64_t o = r0; o < r1; o++) y[o - r0] *= sq_f16_to_f32(le16(v->scales + 2 * o));
}

sq_status sq_aqlm_gemv(const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1, sq_err *err) {
    return sq_aqlm_gemv_isa((int)sq_isa_active(), v, x, y, r0, r1, err);
}

sq_status sq_aqlm_gemv_isa(int isa, const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1,
                           sq_err *err) {
    (void)err;
    sq_aqlm_gemv_rows(isa, v, x, y, r0, r1);
    return SQ_OK;
}
