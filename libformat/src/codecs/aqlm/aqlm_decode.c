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
    return (rows * (cols / SQ_AQLM_G) * M * B + 7) / 8;
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
    if (v->rows == 0 || v->cols == 0 || v->cols % SQ_AQLM_G)
        return sq_err_set(err, SQ_EUSAGE, "%s: shape %llu x %llu: columns must be a positive multiple of the group size %d",
                          label, (unsigned long long)v->rows, (unsigned long long)v->cols, SQ_AQLM_G);
    if (v->rows > ((uint64_t)1 << 40) / v->cols)
        return sq_err_set(err, SQ_EUSAGE, "%s: shape %llu x %llu is too large", label, (unsigned long long)v->rows,
                          (unsigned long long)v->cols);
    uint64_t cb = sq_aqlm_codes_bytes(v->rows, v->cols, v->M, v->B), kb = sq_aqlm_codebooks_bytes(v->M, v->B),
             sb = sq_aqlm_scales_bytes(v->rows);
    if (!v->codes || v->codes_bytes != cb)
        return sq_err_set(err, SQ_ECORRUPT, "%s: codes part has %llu bytes, %llu x %llu at %ux%u needs %llu", label,
                          (unsigned long long)v->codes_bytes, (unsigned long long)v->rows, (unsigned long long)v->cols,
                          v->M, v->B, (unsigned long long)cb);
    if (!v->codebooks || v->codebooks_bytes != kb)
        return sq_err_set(err, SQ_ECORRUPT,
                          "%s: codebooks part has %llu bytes, %u codebooks of 2^%u vectors of %d f16 need %llu", label,
                          (unsigned long long)v->codebooks_bytes, v->M, v->B, SQ_AQLM_G, (unsigned long long)kb);
    if (!v->scales || v->scales_bytes != sb)
        return sq_err_set(err, SQ_ECORRUPT, "%s: scales part has %llu bytes, %llu rows need %llu", label,
                          (unsigned long long)v->scales_bytes, (unsigned long long)v->rows, (unsigned long long)sb);
    uint64_t nbits = v->rows * (v->cols / SQ_AQLM_G) * v->M * v->B;
    if (nbits % 8 && (v->codes[cb - 1] >> (nbits % 8)))
        return sq_err_set(err, SQ_ECORRUPT, "%s: codes part has non-zero padding bits in its last byte", label);
    for (uint64_t i = 0; i < kb / 2; i++) {
        uint16_t h = le16(v->codebooks + 2 * i);
        if ((h & 0x7c00) == 0x7c00)
            return sq_err_set(err, SQ_ECORRUPT, "%s: codebook %llu, entry %llu, element %llu is %s", label,
                              (unsigned long long)(i / ((uint64_t)SQ_AQLM_G << v->B)),
                              (unsigned long long)(i / SQ_AQLM_G % ((uint64_t)1 << v->B)),
                              (unsigned long long)(i % SQ_AQLM_G), (h & 0x3ff) ? "NaN" : "infinite");
    }
    for (uint64_t r = 0; r < v->rows; r++) {
        uint16_t h = le16(v->scales + 2 * r);
        if ((h & 0x7c00) == 0x7c00)
            return sq_err_set(err, SQ_ECORRUPT, "%s: scale of row %llu is %s", label, (unsigned long long)r,
                              (h & 0x3ff) ? "NaN" : "infinite");
    }
    return SQ_OK;
}

void sq_aqlm_decode_rows(const sq_aqlm_view *v, uint64_t r0, uint64_t r1, float *out) {
    const uint64_t G = v->cols / SQ_AQLM_G, K = (uint64_t)1 << v->B;
    for (uint64_t o = r0; o < r1; o++) {
        float s = sq_f16_to_f32(le16(v->scales + 2 * o));
        float *dst = out + (o - r0) * v->cols;
        for (uint64_t j = 0; j < G; j++) {
            float acc[SQ_AQLM_G];
            for (uint32_t m = 0; m < v->M; m++) {
                uint64_t c = sq_aqlm_code_at(v->codes, (o * G + j) * v->M + m, v->B);
                const uint8_t *e = v->codebooks + ((m * K + c) * SQ_AQLM_G) * 2;
                for (int t = 0; t < SQ_AQLM_G; t++) {
                    float x = sq_f16_to_f32(le16(e + 2 * t));
                    acc[t] = m ? acc[t] + x : x;
                }
            }
            for (int t = 0; t < SQ_AQLM_G; t++) dst[j * SQ_AQLM_G + t] = s * acc[t];
        }
    }
}

/* Adds each row's lookups for groups [j0, j1) to acc (T: the groups' tables). */
static void gemv_rows(const sq_aqlm_view *v, const float *T, uint64_t MK, uint64_t j0, uint64_t j1, uint64_t r0,
                      uint64_t r1, float *acc) {
    const uint64_t G = v->cols / SQ_AQLM_G, K = (uint64_t)1 << v->B;
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
        if (v->B == 8) {
            const uint8_t *c = v->codes + base;
            for (uint64_t j = j0; j < j1; j++, c += M) {
                const float *t = T + (j - j0) * MK;
                for (uint32_t m = 0; m < M; m++) a += t[m * K + c[m]];
            }
        } else if (v->B == 16) {
            const uint8_t *c = v->codes + 2 * base;
            for (uint64_t j = j0; j < j1; j++, c += 2 * M) {
                const float *t = T + (j - j0) * MK;
                for (uint32_t m = 0; m < M; m++) a += t[m * K + le16(c + 2 * m)];
            }
        } else {
            for (uint64_t j = j0; j < j1; j++) {
                const float *t = T + (j - j0) * MK;
                for (uint32_t m = 0; m < M; m++, base++) a += t[m * K + sq_aqlm_code_at(v->codes, base, v->B)];
            }
        }
        acc[o - r0] = a;
    }
}

sq_status sq_aqlm_gemv(const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1, sq_err *err) {
    return sq_aqlm_gemv_isa((int)sq_isa_active(), v, x, y, r0, r1, err);
}

sq_status sq_aqlm_gemv_isa(int isa, const sq_aqlm_view *v, const float *x, float *y, uint64_t r0, uint64_t r1,
                           sq_err *err) {
    const uint64_t G = v->cols / SQ_AQLM_G, K = (uint64_t)1 << v->B, MK = v->M * K;
    /* groups per table block: about 64 Ki floats of table, at least one group */
    uint64_t gb = 65536 / MK;
    if (gb < 1) gb = 1;
    if (gb > G) gb = G;
    /* codebooks transposed ([8][M·K]) so a table is built by 8 passes over contiguous rows */
    float *cbT = malloc(MK * SQ_AQLM_G * sizeof(float)), *T = malloc(gb * MK * sizeof(float)),
          *acc = calloc(r1 > r0 ? r1 - r0 : 1, sizeof(float));
    if (!cbT || !T || !acc) {
        free(cbT);
        free(T);
        free(acc);
        return sq_err_set(err, SQ_ENOMEM, "out of memory for the AQLM lookup tables (%llu floats)",
                          (unsigned long long)(gb * MK + MK * SQ_AQLM_G));
    }
    for (uint64_t k = 0; k < MK; k++)
        for (int q = 0; q < SQ_AQLM_G; q++) cbT[q * MK + k] = sq_f16_to_f32(le16(v->codebooks + 2 * (k * SQ_AQLM_G + q)));
    for (uint64_t j0 = 0; j0 < G; j0 += gb) {
        uint64_t j1 = j0 + gb < G ? j0 + gb : G;
        for (uint64_t j = j0; j < j1; j++) {
            /* T[k] = ((e0 x0 + e1 x1) + e2 x2) + ... + e7 x7, in that order for every k */
            const float *xs = x + j * SQ_AQLM_G;
            float *t = T + (j - j0) * MK;
#if defined(__x86_64__)
            if (isa >= SQ_ISA_AVX2 && sq_isa_supported(SQ_ISA_AVX2)) {
                table_avx2(cbT, MK, xs, t);
                continue;
            }
#endif
            for (uint64_t k = 0; k < MK; k++) t[k] = cbT[k] * xs[0];
            for (int q = 1; q < SQ_AQLM_G; q++) {
                const float *e = cbT + q * MK, xq = xs[q];
                for (uint64_t k = 0; k < MK; k++) t[k] += e[k] * xq;
            }
        }
        gemv_rows(v, T, MK, j0, j1, r0, r1, acc);
    }
    for (uint64_t o = r0; o < r1; o++) y[o - r0] = sq_f16_to_f32(le16(v->scales + 2 * o)) * acc[o - r0];
    free(cbT);
    free(T);
    free(acc);
    return SQ_OK;
}
