/* Scalar float conversions: f16, bf16 and the OCP mini-floats.
 * All conversions round to nearest, ties to even, and are exact functions of
 * their input (no dependence on CPU path), so files are reproducible. */
#ifndef SQUISH_FP_H
#define SQUISH_FP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline uint32_t sq_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float sq_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float sq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) { /* zero or subnormal: m * 2^-24 */
        float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (e == 31) return sq_bits_f32(sign | 0x7f800000u | (m << 13));
    return sq_bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t sq_f32_to_f16(float f) {
    uint32_t x = sq_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to infinity */
    if (ax < 0x38800000u) {                      /* below 2^-14: subnormal */
        float a = sq_bits_f32(ax);
        return sign | (uint16_t)nearbyintf(a * 16777216.0f); /* exact scale, RNE */
    }
    uint32_t h = ((((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3ff));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return sign | (uint16_t)h;
}

static inline float sq_bf16_to_f32(uint16_t b) { return sq_bits_f32((uint32_t)b << 16); }

static inline uint16_t sq_f32_to_bf16(float f) {
    uint32_t x = sq_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* OCP mini-float element formats. */
typedef enum sq_minifloat {
    SQ_MF_E4M3 = 0, SQ_MF_E5M2, SQ_MF_E3M2, SQ_MF_E2M3, SQ_MF_E2M1, SQ_MF_COUNT
} sq_minifloat;

typedef struct sq_mf_info {
    const char *name;
    int bits, ebits, mbits, bias;
    float max_normal;
    int emax; /* unbiased exponent of max_normal (MX scale rule) */
} sq_mf_info;

const sq_mf_info *sq_mf(sq_minifloat f);
/* Saturating RNE encode of a finite value; a zero result is always +0. NaN in gives the
 * format's NaN code where it has one (E4M3 0x7f, E5M2 0x7e), else max normal. */
uint8_t sq_mf_encode(sq_minifloat f, float v);
/* Exact value of a code (NaN/Inf where the format defines them). */
float sq_mf_decode(sq_minifloat f, uint8_t code);
/* Decode lookup table of 2^bits entries (built once, thread-safe after sq_mf_init). */
const float *sq_mf_table(sq_minifloat f);
void sq_mf_init(void);

#ifdef __cplusplus
}
#endif
#endif
